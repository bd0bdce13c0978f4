"""The live progress of `lkdh run` and its summary table: redrawn in place on a terminal (a real
pty), plain lines anywhere else, waits shown as waits, and a table within 100 columns."""

from __future__ import annotations

import io
import logging
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

from harness.record import RunRecord, StepRecord
from harness.report.progress import CLEAR_LINE, LiveProgress
from harness.report.table import result_table

REPO_ROOT = Path(__file__).resolve().parents[1]
LKDH = str(Path(sys.executable).with_name("lkdh"))
WAITS = (
    "name: waits\nsteps:\n  - alloc: {name: a, size: 16}\n  - wait: 61\n  - create: {bugcheck_code: 0x1A2}\n"
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def record(name: str = "waits") -> RunRecord:
    return RunRecord(scenario=name, file=Path("s.yaml"), location="s.yaml:1:1", target="sim")


def test_plain_lines_when_not_a_terminal() -> None:
    out, clock = io.StringIO(), Clock()
    with LiveProgress(2, out, clock=clock) as progress:
        run = record()
        progress.scenario_started(run)
        wait = StepRecord(2, "wait", "wait 61 s", "s.yaml:4:5")
        progress.step_started(run, wait)
        logging.getLogger("harness.target.windows.machine").info(
            "vm1: waiting 45 s before the next scenario (one live dump per minute)"
        )
        run.outcome, run.seconds = "passed", 61.0
        progress.scenario_finished(run)
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text
    assert text.splitlines() == [
        "[1/2] waits on sim: started",
        "[1/2] waits: waiting: step 2/2 wait 61 s (scenario step)",
        "[1/2] vm1: waiting 45 s before the next scenario (one live dump per minute)",
        "[1/2] PASS  waits (61.0 s, 0 dumps)",
    ]
    assert logging.getLogger("harness").level == logging.NOTSET  # restored


def test_a_scenario_kept_from_the_journal_takes_its_place_in_the_count() -> None:
    """A resumed run shows its first re-run scenario as [2/2], not [1/2], after the kept one."""
    out, clock = io.StringIO(), Clock()
    with LiveProgress(2, out, clock=clock) as progress:
        kept = record("finished-before-the-kill")
        kept.outcome = "passed"
        progress.scenario_kept(kept)
        progress.scenario_started(record("cut-off"))
    assert out.getvalue().splitlines() == [
        "[1/2] finished-before-the-kill: passed, kept from the journal",
        "[2/2] cut-off on sim: started",
    ]


def test_status_line_counts_a_wait_as_it_goes() -> None:
    out, clock = io.StringIO(), Clock()
    with LiveProgress(3, out, live=True, clock=clock, interval=3600) as progress:
        progress.planned_steps = 5
        run = record()
        progress.scenario_started(run)
        clock.now += 12
        progress.step_started(run, StepRecord(4, "wait", "wait 61 s", "s.yaml:4:5"))
        clock.now += 5
        line = progress.status_line()
    assert line == "[1/3] waits 00:17 | waiting: step 4/5 wait 61 s (scenario step) 00:05 | total 00:17"
    assert out.getvalue().count(CLEAR_LINE) >= 2 and out.getvalue().endswith(CLEAR_LINE)


def test_live_display_in_a_real_terminal(tmp_path: Path) -> None:
    """Under a pty (a terminal) the status line is redrawn in place; the table still comes last."""
    (tmp_path / "waits.yaml").write_text(WAITS)
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [LKDH, "run", "waits.yaml", "--out", "out"],
        cwd=tmp_path,
        stdout=follower,
        stderr=follower,
        stdin=follower,
    )
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert process.wait(timeout=60) == 0
    os.close(leader)
    shown = b"".join(chunks).decode()
    assert CLEAR_LINE in shown and "[1/1] waits" in shown and "| total 00:0" in shown
    assert "[1/1] PASS  waits" in shown
    assert shown.rstrip().splitlines()[-1].startswith("run record:")


def test_no_progress_escape_codes_in_a_pipe(tmp_path: Path) -> None:
    (tmp_path / "waits.yaml").write_text(WAITS)
    result = subprocess.run(
        [LKDH, "run", "waits.yaml", "--out", "out"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert "\x1b" not in result.stderr + result.stdout and "\r" not in result.stderr
    assert "[1/1] waits: waiting: step 2/3 wait 61 s (scenario step)" in result.stderr
    assert result.stdout.splitlines()[0].startswith("RESULT")


def test_summary_table_fits_100_columns() -> None:
    long = record("a_scenario_name_far_longer_than_any_column_should_ever_have_to_hold_in_a_table")
    long.outcome = "failed"
    step = StepRecord(1, "create", "create bugcheck 0x1A2", "x.yaml:3:5", outcome="failed")
    step.failures = [
        "x.yaml:7:20: step 1 (create bugcheck 0x1A2): the dump does not contain " + "ring_a " * 20
    ]
    long.steps.append(step)
    long.profile = "dmf-bfac434-with-a-long-profile-name"
    table = result_table([long, record("short")])
    assert all(len(line) <= 100 for line in table.splitlines()), table
    assert "…" in table and "x.yaml:7:20" in table

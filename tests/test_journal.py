"""The run journal survives SIGKILL: `lkdh run --journal`, killed mid-scenario, then `--resume`.

The harness runs as a real process over the shipped scenarios on the simulator. The test freezes it
(SIGSTOP) whenever the journal grows, and kills it (SIGKILL, nothing flushed, nothing cleaned up)
at the first freeze where a scenario has started and not finished: a kill inside a scenario, not
between two. The resumed run must then skip what finished, re-run the scenario that was cut off,
and leave a run record equal to an uninterrupted run's (step by step, dump hashes included; only
wall-clock seconds and output paths differ).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from harness.report.journal import JournalError, RunJournal, read_journal, record_from_json

REPO_ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = REPO_ROOT / "scenarios"
LKDH = [sys.executable, "-m", "harness.cli"]
KILL_DEADLINE = 120.0


def lkdh(*args: str | Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*LKDH, "run", *map(str, args)],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def comparable(record_file: Path, out: Path) -> list[dict[str, Any]]:
    """The run record without what legitimately differs between two runs: time and output folder."""
    text = record_file.read_text().replace(str(out), "<out>")
    scenarios = json.loads(text)["scenarios"]
    for scenario in scenarios:
        scenario.pop("seconds")
    return scenarios


def steps_journalled(journal: Path, scenario: str) -> int:
    """How many `step` lines the journal holds for `scenario` (over every attempt at it)."""
    events = [json.loads(line) for line in journal.read_text().splitlines() if line.endswith("}")]
    return sum(1 for event in events if event["event"] == "step" and event["scenario"] == scenario)


def kill_inside_a_scenario(
    process: subprocess.Popen[bytes],
    journal: Path,
    *,
    finished: int = 2,
    steps: int = 0,
    deadline: float = KILL_DEADLINE,
    poll: float = 0.002,
) -> list[str]:
    """Freeze `process` each time the journal grows; SIGKILL it at the first freeze where `finished`
    scenarios are done and one has started with at least `steps` steps journalled. The scenarios cut
    off, as the journal names them."""
    until = time.monotonic() + deadline
    seen = 0
    while time.monotonic() < until:
        size = journal.stat().st_size if journal.exists() else 0
        if size != seen:
            process.send_signal(signal.SIGSTOP)
            seen = journal.stat().st_size
            state = read_journal(journal)
            inside = state.cut_off and all(steps_journalled(journal, name) >= steps for name in state.cut_off)
            if inside and len(state.finished) >= finished:
                process.send_signal(signal.SIGKILL)
                process.wait()
                return state.cut_off
            process.send_signal(signal.SIGCONT)
        if process.poll() is not None:
            pytest.fail("the run finished before it could be killed inside a scenario")
        time.sleep(poll)
    process.kill()
    pytest.fail(f"no kill point within {deadline:g} s")


def test_a_run_killed_mid_scenario_resumes_to_the_same_record(tmp_path: Path) -> None:
    whole_out, cut_out = tmp_path / "whole", tmp_path / "cut"
    assert lkdh(SCENARIOS, "--out", whole_out).wait() == 0
    journal = tmp_path / "run.journal"
    cut_off = kill_inside_a_scenario(lkdh(SCENARIOS, "--out", cut_out, "--journal", journal), journal)
    before = read_journal(journal)
    assert not (cut_out / "run-record.json").exists()  # killed: it never got to write one
    assert lkdh(SCENARIOS, "--out", cut_out, "--resume", journal).wait() == 0
    after = read_journal(journal)
    assert comparable(cut_out / "run-record.json", cut_out) == comparable(
        whole_out / "run-record.json", whole_out
    )
    assert after.cut_off == []
    rerun = [line for line in journal.read_text().splitlines() if '"scenario_started"' in line]
    started = [json.loads(line)["scenario"] for line in rerun]
    for name in before.finished:  # what finished before the kill did not run again
        assert started.count(name) == 1, name
    for name in cut_off:  # the scenario that was cut off ran again, from the start
        assert started.count(name) == 2, name


def test_every_event_is_on_disk_as_one_line_and_a_torn_last_line_is_dropped(tmp_path: Path) -> None:
    journal = tmp_path / "j"
    with RunJournal(journal) as writer:
        writer._append({"event": "scenario_started", "scenario": "a", "file": "f", "target": "sim"})
    with journal.open("ab") as torn:
        torn.write(b'{"event": "scenario_fin')  # a kill in the middle of a write
    state = read_journal(journal)
    assert state.cut_off == ["a"] and state.finished == {}


def test_a_damaged_journal_is_refused_with_its_line(tmp_path: Path) -> None:
    journal = tmp_path / "j"
    journal.write_text('{"event": "journal", "version": 1}\nnot json\n')
    with pytest.raises(JournalError, match=r"j:2: not a journal line"):
        read_journal(journal)


def test_a_record_read_back_from_the_journal_equals_the_original(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert lkdh(SCENARIOS, "--out", out, "--journal", tmp_path / "j").wait() == 0
    finished = read_journal(tmp_path / "j").finished
    assert len(finished) == len(json.loads((out / "run-record.json").read_text())["scenarios"])
    for document in finished.values():
        assert record_from_json(document).to_json() == document


def test_resume_and_journal_are_exclusive() -> None:
    result = subprocess.run(
        [*LKDH, "run", str(SCENARIOS), "--journal", "a", "--resume", "b"],
        cwd=REPO_ROOT,
        capture_output=True,
        env={**os.environ},
        check=False,
    )
    assert result.returncode == 2 and b"not allowed with argument" in result.stderr

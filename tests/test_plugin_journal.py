"""The pytest plugin's journal: `pytest --lkdh-journal FILE`, killed mid-scenario, `--lkdh-resume FILE`.

As tests/test_journal.py does for `lkdh run`: a real pytest process over the shipped scenarios is
frozen each time the journal grows and SIGKILLed at the first freeze inside a scenario, then
resumed. The resumed run's record must equal an uninterrupted run's, finished items must not run
again and the cut-off one must run again from the start. The Windows half: a dump the journal says
was collected before the kill is recognised on the guest by its name and SHA-256 and not pulled again.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from driver_package import BuiltPackage
from signing import SigningIdentity
from test_journal import comparable, kill_inside_a_scenario
from test_windows_machine import build_lab, machine_on

from harness.report.journal import RunJournal, read_journal
from harness.runner import run_scenario
from harness.scenario import load_scenario_file

REPO_ROOT = Path(__file__).resolve().parents[1]


def pytest_process(*args: str | Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "pytest", "scenarios", "--target", "sim", "-p", "no:cacheprovider"]
    return subprocess.Popen(
        [*command, "-p", "no:xdist", "-q", *map(str, args)],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_a_pytest_run_killed_mid_scenario_resumes_to_the_same_record(tmp_path: Path) -> None:
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert pytest_process("--lkdh-out", whole).wait() == 0
    journal = tmp_path / "run.journal"
    cut_off = kill_inside_a_scenario(pytest_process("--lkdh-out", cut, "--lkdh-journal", journal), journal)
    before = read_journal(journal)
    assert not (cut / "run-record.json").exists(), "killed: it never wrote its record"
    assert pytest_process("--lkdh-out", cut, "--lkdh-resume", journal).wait() == 0
    assert comparable(cut / "run-record.json", cut) == comparable(whole / "run-record.json", whole)
    started = [
        json.loads(line)["scenario"]
        for line in journal.read_text().splitlines()
        if '"scenario_started"' in line
    ]
    assert all("::" in name for name in started), "the plugin journals by item node id"
    for name in before.finished:
        assert started.count(name) == 1, name
    for name in cut_off:
        assert started.count(name) == 2, name
    assert read_journal(journal).cut_off == []


def test_journal_and_resume_are_exclusive(tmp_path: Path) -> None:
    process = subprocess.run(
        [sys.executable, "-m", "pytest", "scenarios", "--lkdh-journal", "a", "--lkdh-resume", "b"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=False,
    )
    assert process.returncode == 4 and b"--lkdh-journal and --lkdh-resume are exclusive" in process.stderr


SCENARIO = """\
name: one_live_dump
steps:
  - alloc: {name: a, size: 64, pattern: "0xA5"}
  - store: {buffer: a}
  - create: {bugcheck_code: 0x1A2}
    expect: {status: STATUS_SUCCESS, dump: {contains: [a]}}
"""


def test_a_dump_collected_before_the_kill_is_not_pulled_again_on_resume(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    packages: dict[str, BuiltPackage],
    identity: SigningIdentity,
) -> None:
    """The resumed run's machine is fresh: until its prepare() has listed the guest's dumps it knows
    none of them, and a prepare that fails early is followed by the runner's final collection
    (lose nothing), which would pull every dump on the guest again. The journal's dump lines name
    each collected dump by guest name and SHA-256 (hashed on the guest, before any transfer), so
    the resumed machine skips those."""
    lab = build_lab(tmp_path, monkeypatch, packages, identity)
    scenario_file = tmp_path / "one.yaml"
    scenario_file.write_text(SCENARIO, encoding="utf-8")
    (loaded,) = load_scenario_file(scenario_file)
    journal_file = tmp_path / "run.journal"
    with RunJournal(journal_file) as journal:
        record = run_scenario(loaded, lab.machine, [journal.keyed("one.yaml::one_live_dump[vm]")])
    assert record.outcome == "passed" and len(record.dumps) == 1
    lines = journal_file.read_text().splitlines(keepends=True)
    journal_file.write_text("".join(lines[:-1]))  # killed after the dump line, before the end
    state = read_journal(journal_file)
    assert state.cut_off == ["one.yaml::one_live_dump[vm]"] and len(state.dumps) == 1

    resumed = machine_on(lab, lab.machine.config, tmp_path)
    resumed.collected_before = {(d["remote_name"], d["sha256"]) for d in state.dumps}
    mark = len(lab.vm.calls)
    assert resumed.collect_dumps() == []
    assert "read-chunk" not in lab.calls_since(mark), "not pulled again"
    assert "file-hash" in lab.calls_since(mark), "recognised by the hash the guest computed"

    without_journal = machine_on(lab, lab.machine.config, tmp_path / "control")
    (again,) = without_journal.collect_dumps()  # the control: the same dump would be pulled twice
    assert again.sha256 == state.dumps[0]["sha256"]


def test_a_dump_the_re_run_writes_again_is_the_copy_kept_before_the_kill(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    packages: dict[str, BuiltPackage],
    identity: SigningIdentity,
) -> None:
    """The scenario cut off by the kill runs again from the revert and may write the very same dump
    (same guest name, same SHA-256) that its first attempt pulled to the same path: the resumed
    machine reports that kept copy (hashed again here) and pulls nothing; the record stays the
    uninterrupted run's. A different dump of that name goes beside the kept one, never over it."""
    lab = build_lab(tmp_path, monkeypatch, packages, identity)
    scenario_file = tmp_path / "one.yaml"
    scenario_file.write_text(SCENARIO, encoding="utf-8")
    (loaded,) = load_scenario_file(scenario_file)
    journal_file = tmp_path / "run.journal"
    with RunJournal(journal_file) as journal:
        (pulled,) = run_scenario(loaded, lab.machine, [journal]).dumps
    state = read_journal(journal_file)
    untouched = (pulled.path.stat().st_ino, pulled.path.stat().st_mtime_ns)

    resumed = machine_on(lab, lab.machine.config, tmp_path)
    resumed.output_dir = lab.machine.output_dir  # the same --out, as a resume is given
    resumed.collected_before, resumed.kept_copies = set(state.collected), state.kept_copies
    mark = len(lab.vm.calls)
    (again,) = resumed.collect_dumps()  # the guest's dump plays the one the re-run wrote again
    assert (again.path, again.sha256, again.remote_name) == (pulled.path, pulled.sha256, pulled.remote_name)
    assert "read-chunk" not in lab.calls_since(mark), "not pulled again"
    assert (pulled.path.stat().st_ino, pulled.path.stat().st_mtime_ns) == untouched

    other = machine_on(lab, lab.machine.config, tmp_path)
    other.output_dir = lab.machine.output_dir
    other.kept_copies = {pulled.path.absolute(): "0" * 64}  # what was kept there is another dump
    (beside,) = other.collect_dumps()
    assert beside.path == pulled.path.with_name(f"{pulled.path.stem}-2{pulled.path.suffix}")
    assert beside.sha256 == pulled.sha256 and beside.path.read_bytes() == pulled.path.read_bytes()
    assert (pulled.path.stat().st_ino, pulled.path.stat().st_mtime_ns) == untouched, "kept, not overwritten"

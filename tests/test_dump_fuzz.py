"""Hostile dumps (tests/dump_fuzz.py): a seeded, bounded hypothesis run over every reader.

The long run (100,000+ cases) is bench/fuzz_dumps.py; this one keeps to tens of seconds so the
suite stays fast, and is derandomised so a failure reproduces. Regression cases for what the fuzz
found live in tests/test_dump_hostile.py.
"""

from __future__ import annotations

import tracemalloc

import pytest
from conftest import shared_dir
from dump_fuzz import Case, CaseFile, Finding, build_seeds, cases, run_case
from hypothesis import HealthCheck, Phase, given, settings

MEMORY_LIMIT = 64 << 20  # the seeds are at most 1.5 MB; no reader may allocate anything near this


@pytest.fixture(scope="module")
def case_files(tmp_path_factory: pytest.TempPathFactory) -> CaseFile:
    folder = tmp_path_factory.mktemp("fuzz")
    fixtures = shared_dir() / "fixtures" / "dumps"
    return CaseFile(folder, build_seeds(folder, fixtures if fixtures.is_dir() else None))


def test_seeds_cover_every_reader(case_files: CaseFile) -> None:
    names = {seed.name for seed in case_files.seeds}
    assert {"sim-triage", "memory-type5", "memory-type6", "memory-type1"} <= names
    if (shared_dir() / "fixtures" / "dumps").is_dir():
        assert {"triage_x64.dmp", "triage_arm64.dmp", "calc.dmp"} <= names
    for index in range(len(case_files.seeds)):  # every seed reads cleanly before it is mutated
        assert run_case(case_files, Case(index, (), None)) is None


def test_hostile_dumps_raise_only_documented_errors(case_files: CaseFile) -> None:
    findings: list[Finding] = []

    @settings(
        max_examples=600,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(cases(case_files.seeds))
    def one(case: Case) -> None:
        finding = run_case(case_files, case, MEMORY_LIMIT)
        if finding is not None:
            findings.append(finding)

    tracemalloc.start()
    try:
        one()
    finally:
        tracemalloc.stop()
    assert not findings, "\n".join(str(f) for f in findings[:20])


@pytest.mark.parametrize("misbehaviour", ["exception", "hang", "swallowed-hang", "allocation"])
def test_the_harness_reports_each_kind_of_misbehaviour(
    case_files: CaseFile, monkeypatch: pytest.MonkeyPatch, misbehaviour: str
) -> None:
    """The check can fail: a reader that raises something undocumented, hangs, or allocates by an
    untrusted count is reported as a Finding naming the seed and the problem."""
    import time

    import dump_fuzz

    def broken(dump: object) -> str:
        if misbehaviour == "exception":
            raise IndexError("list index out of range")
        if misbehaviour == "hang":
            time.sleep(5)
        if misbehaviour == "swallowed-hang":  # as when the alarm lands in a GC callback
            try:
                time.sleep(5)
            except dump_fuzz.CaseTimeout:
                return "went on"
        return str(len(bytearray(MEMORY_LIMIT + (1 << 20))))

    monkeypatch.setattr(dump_fuzz, "describe", broken)
    # generous for the two that must finish (the machine may be loaded), short for the hang
    monkeypatch.setattr(dump_fuzz, "CASE_SECONDS", 0.5 if "hang" in misbehaviour else 60.0)
    tracemalloc.start()
    try:
        finding = run_case(case_files, Case(0, ((0xFB0, b"x"),), None), MEMORY_LIMIT)
    finally:
        tracemalloc.stop()
    assert finding is not None and finding.seed == case_files.seeds[0].name
    expected = {
        "exception": "IndexError: list index out of range",
        "hang": "hang: still running",
        "swallowed-hang": "hang: ",  # reported whether the re-armed alarm lands or the case ends
        "allocation": "allocated",
    }
    assert expected[misbehaviour] in finding.problem
    assert str(finding).startswith(f"{finding.seed}: [0xfb0=78]: ")

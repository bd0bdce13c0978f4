"""A known defect counts as reproduced only when the scenario fails the way the defect says.

Every defect in harness/target/defects.py declares a signature (bugcheck codes and parameters, a
status, or the expectation that fails); the runner matches the first failing step against it. A
scenario that fails some other way, at its first `alloc` say, is a plain failure that names what
the defect was expected to do, never an xfail.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from harness.runner import run_scenario
from harness.scenario import load_scenario_file, load_scenarios
from harness.scenario.check import check_paths
from harness.target.defects import ANY, KNOWN_DEFECTS, Bugcheck, Signature
from harness.target.ops import Crash
from harness.target.sim import SimSettings, SimulatedMachine
from harness.target.sim.livekerneldump import ModuleConfig
from harness.verify.known_defect import StepFailure, covers, defect_verdict, explains
from harness.verify.mismatch import Mismatch

REPO_ROOT = Path(__file__).resolve().parents[1]


def run_text(tmp_path: Path, text: str, settings: SimSettings | None = None):
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "scenario.yaml"
    path.write_text(text, encoding="utf-8")
    (loaded,) = load_scenario_file(path)
    return run_scenario(loaded, SimulatedMachine(tmp_path / "out", settings or SimSettings()))


WRONG_AT_FIRST_STEP = """\
name: wrong_defect_scenario
known_defect: {id: remove-null-context, reason: F13}
steps:
  - alloc: {name: a, size: 16}
    expect: STATUS_INVALID_PARAMETER
  - store: a
  - remove: a
  - create: {bugcheck_code: 1}
    expect: {dump: {excludes: [a]}}
"""


def test_a_scenario_failing_at_its_first_step_is_a_failure_not_a_reproduced_defect(tmp_path: Path) -> None:
    record = run_text(tmp_path, WRONG_AT_FIRST_STEP)
    assert record.defect_active
    assert record.outcome == "failed"
    assert record.steps[0].outcome == "failed"
    text = record.failure_text()
    assert (
        "known defect remove-null-context (F13, F33) was expected to show as bugcheck 0xD1 (P2=0x2, P3=0x0) "
        "or 0xD1 (P2=0x2, P3=0x1) or 0xA (P2=0x2, P3=0x0) or 0xA (P2=0x2, P3=0x1) or 0x7E (P1=0xC0000005) "
        "or 0x3B (P1=0xC0000005) at a remove step; instead step 1 (alloc) failed with a failing "
        "`expect.status` (status STATUS_SUCCESS (0x00000000))"
    ) in text
    assert text.startswith(f"{tmp_path / 'scenario.yaml'}:1:1: known defect")
    assert f"{tmp_path / 'scenario.yaml'}:5:13: step 1" in text  # the step's own evidence follows
    assert record.to_json()["defect_note"].startswith("known defect remove-null-context")


def test_the_same_scenario_without_the_wrong_step_reproduces_the_defect(tmp_path: Path) -> None:
    record = run_text(tmp_path, WRONG_AT_FIRST_STEP.replace("    expect: STATUS_INVALID_PARAMETER\n", ""))
    assert record.outcome == "xfailed", record.failure_text()
    assert record.defect_note is None
    assert record.failed_steps[0].operation == "remove"


def test_the_right_step_crashing_with_the_wrong_bugcheck_is_not_the_defect(tmp_path: Path) -> None:
    """Remove at DISPATCH_LEVEL under Verifier stops at the wait lock (F14/F38: 0xC4, or 0xD1 with
    P3 = 8 for the paged lock helper) before the NULL write (F33: a data access, P3 = 0 or 1)."""
    text = WRONG_AT_FIRST_STEP.replace("    expect: STATUS_INVALID_PARAMETER\n", "").replace(
        "  - remove: a\n", "  - remove: a\n    irql: DISPATCH_LEVEL\n"
    )
    record = run_text(tmp_path, text)
    assert record.outcome == "failed"
    crash = record.steps[2].crash
    assert crash is not None and (crash.bugcheck_code == 0xC4 or crash.parameters[2] == 8)
    assert (
        f"instead step 3 (remove) failed with bugcheck 0x{crash.bugcheck_code:X} (" in record.failure_text()
    )


def test_the_right_bugcheck_at_another_operation_is_not_the_defect(tmp_path: Path) -> None:
    """dispatch-wait-lock is about Add/Remove; Create at DISPATCH crashing with 0xC4 is another matter."""
    text = """\
name: create_is_not_store
known_defect: {id: dispatch-wait-lock, reason: F14}
requires: [verifier]
steps:
  - alloc: {name: a, size: 16}
  - store: a
  - create: {bugcheck_code: 1}
    irql: DISPATCH_LEVEL
"""
    record = run_text(tmp_path, text)
    assert record.outcome == "failed"
    assert (
        "at a store or remove or store_collection step; instead step 3 (create) failed with bugcheck 0x"
        in (record.failure_text())
    )


def test_every_mismatch_of_the_step_must_be_the_defects(tmp_path: Path) -> None:
    """F17 explains P2, not a buffer missing from the dump: both failing is a plain failure."""
    base = """\
name: nonbool
known_defect: {id: exclude-dmf-data-nonbool, reason: F17}
steps:
  - alloc: {name: never_stored, size: 16}
  - create: {bugcheck_code: 0x1A4, parameter: 1, exclude_dmf_data: 2}
    expect:
      dump:
        parameters: [1, 0, 0, 0]
"""
    assert run_text(tmp_path / "one", base).outcome == "xfailed"
    record = run_text(tmp_path / "two", base + "        contains: [never_stored]\n")
    assert record.outcome == "failed"
    assert "failed with a failing `expect.dump.parameters.1`, `expect.dump.contains.0`" in (
        record.failure_text()
    )


def test_a_status_signature_needs_the_defects_status(tmp_path: Path) -> None:
    """F21 returns STATUS_SUCCESS where the contract refuses; a scenario that gets another status
    (here the one-per-minute collision) did not show the defect."""
    settings = SimSettings(module=replace(ModuleConfig(), secondary_data_guid=uuid.UUID(int=0)))
    text = """\
name: null_guid
known_defect: {id: secondary-data-null-guid, reason: F21}
steps:
  - alloc: {name: telemetry, size: 32}
  - create: {bugcheck_code: 1, secondary_data: telemetry}
    expect: STATUS_INVALID_PARAMETER
"""
    reproduced = run_text(tmp_path / "one", text, settings)
    assert reproduced.outcome == "xfailed", reproduced.failure_text()
    contract = run_text(tmp_path / "two", text, replace(settings, profile="contract"))
    assert contract.outcome == "passed", contract.failure_text()
    collided = run_text(
        tmp_path / "three",
        text.replace(
            "  - create: {bugcheck_code: 1, secondary",
            "  - create: {bugcheck_code: 2}\n  - create: {bugcheck_code: 1, secondary",
        ),
        settings,
    )
    assert collided.outcome == "failed"
    assert "(status STATUS_OBJECT_NAME_COLLISION (0xC0000035))" in collided.failure_text()


def test_a_known_defect_scenario_that_passes_is_still_xpassed(tmp_path: Path) -> None:
    text = WRONG_AT_FIRST_STEP.replace("    expect: STATUS_INVALID_PARAMETER\n", "").replace(
        "  - remove: a\n", "  - remove: {buffer: a, length: 8}\n"
    )
    record = run_text(tmp_path, text.replace("excludes", "contains"))
    assert record.outcome == "xpassed"
    assert record.defect_note is None


def test_pytest_reports_the_wrong_defect_scenario_as_a_failure(pytester: pytest.Pytester) -> None:
    folder = pytester.mkdir("scenarios")
    (folder / "wrong.yaml").write_text(WRONG_AT_FIRST_STEP)
    result = pytester.runpytest("scenarios", "--target", "sim")
    result.assert_outcomes(failed=1, skipped=1)
    text = result.stdout.str()
    assert "was expected to show as bugcheck 0xD1" in text and "instead step 1 (alloc)" in text
    assert "reproduced" not in text


# -- the signatures themselves ------------------------------------------------------------------


def _failure(
    operation: str, *paths: tuple, status: int | None = 0, crash: Crash | None = None
) -> StepFailure:
    return StepFailure(1, operation, status, crash, tuple(Mismatch(path, "m") for path in paths))


def test_key_paths_cover_themselves_what_is_below_and_star_positions() -> None:
    path = ("expect", "dump", "secondary_data", 0, "size")
    assert covers("expect.dump.secondary_data", path)
    assert covers("expect.dump.secondary_data.0.size", path)
    assert covers("expect.dump.*.0", path)
    assert not covers("expect.dump.secondary_data.1", path)
    assert not covers("expect.dump.secondary_data.0.size.x", path)  # deeper than the mismatch
    assert not covers("expect.dump.parameters", path)


def test_bugcheck_parameters_pinned_or_any() -> None:
    pinned = Bugcheck(0xD1, p2=2, p3=ANY)
    assert pinned.matches(0xD1, (0x10, 2, 1, 0xFFFFF800))
    assert not pinned.matches(0xD1, (0x10, 0, 1, 0))
    assert not pinned.matches(0xA, (0x10, 2, 1, 0))
    assert Bugcheck(0x3B, p1=0xC0000005, p4=7).matches(0x3B, (0xC0000005, 1, 2, 7))
    assert not Bugcheck(0x3B, p1=0xC0000005, p4=7).matches(0x3B, (0xC0000005, 1, 2, 8))
    assert pinned.describe() == "0xD1 (P2=0x2)"


def test_a_crash_is_explained_only_by_a_bugcheck_of_the_signature() -> None:
    signature = Signature(bugchecks=(Bugcheck(0xD1),), expectations=("expect",), operations=("remove",))
    crash = Crash(0xD1, (0, 2, 1, 0), "r")
    assert explains(signature, _failure("remove", ("expect",), crash=crash))
    assert not explains(signature, _failure("store", ("expect",), crash=crash))
    other = Crash(0xC4, (0x20010, 0, 0, 0), "r")
    assert not explains(signature, _failure("remove", ("expect",), crash=other))


def test_a_status_alternative_explains_only_the_status_expectation() -> None:
    signature = Signature(statuses=(0,))
    assert explains(signature, _failure("create", ("expect", "status"), status=0))
    assert not explains(signature, _failure("create", ("expect", "status"), status=0xC0000035))
    assert not explains(signature, _failure("create", ("expect", "dump", "excludes", 0), status=0))
    assert not explains(signature, _failure("create", status=0))  # no mismatch at all


def test_no_failing_step_is_named_in_the_verdict() -> None:
    verdict = defect_verdict("remove-null-context", None)
    assert verdict is not None and verdict.endswith("but no step failed")


def test_signature_descriptions_name_every_alternative() -> None:
    text = KNOWN_DEFECTS["ioctl-unprobed-user-pointers"].signature.describe()
    assert text == (
        "bugcheck 0x3B (P1=0xC0000005) or 0x50; or status STATUS_SUCCESS or STATUS_BUFFER_TOO_SMALL or "
        "STATUS_INVALID_PARAMETER where "
        "another was expected; "
        "or failing `expect.dump.excludes` at a ioctl_create step"
    )
    assert Signature().describe() == "nothing a scenario can check"


def test_every_defect_cites_facts_and_its_signature_names_real_step_operations() -> None:
    from harness.scenario.model import STEP_KINDS

    for defect in KNOWN_DEFECTS.values():
        assert defect.facts and all(fact.startswith("F") for fact in defect.facts), defect.id
        assert set(defect.signature.operations) <= set(STEP_KINDS), defect.id
        for pattern in defect.signature.expectations:
            assert pattern.startswith("expect."), (defect.id, pattern)


def test_every_shipped_known_defect_scenario_fails_as_its_signature_says(tmp_path: Path) -> None:
    """On dmf-bfac434 each one's first failing step is explained by the defect's own signature."""
    shipped = [loaded for loaded in load_scenarios(REPO_ROOT / "scenarios") if loaded.scenario.known_defect]
    # Done means (issue 11): every known defect has a shipped scenario that reproduces it.
    assert {loaded.scenario.known_defect.id for loaded in shipped} == set(KNOWN_DEFECTS)
    for loaded in shipped:
        record = run_scenario(loaded, SimulatedMachine(tmp_path / loaded.scenario.name))
        assert record.outcome == "xfailed", record.failure_text()


def test_check_refuses_a_defect_no_scenario_can_show_or_one_without_its_operation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every shipped defect is observable now (F05 through `expect.dump.folder`): a defect with the
    # empty signature is made up here to keep the refusal tested.
    unobservable = replace(KNOWN_DEFECTS["report-type-truncated"], signature=Signature())
    monkeypatch.setitem(KNOWN_DEFECTS, "report-type-truncated", unobservable)
    steps = "steps:\n  - create: {bugcheck_code: 1}\n"
    (tmp_path / "a.yaml").write_text(
        f"name: a\nknown_defect: {{id: report-type-truncated, reason: F05}}\n{steps}"
    )
    (tmp_path / "b.yaml").write_text(
        f"name: b\nknown_defect: {{id: remove-null-context, reason: F13}}\n{steps}"
    )
    errors = [str(error) for error in check_paths(tmp_path).errors]
    assert errors == [
        f"{tmp_path / 'a.yaml'}:2:20: known_defect.id: known defect report-type-truncated shows in nothing a "
        "scenario can check (ReportType is cut to 11 characters (WCHAR[12] with ReportType[11] = 0), not the "
        "documented 15)",
        f"{tmp_path / 'b.yaml'}:2:20: known_defect.id: known defect remove-null-context shows at a remove "
        "step, and this scenario has none",
    ]

"""The runner on the simulator: shipped scenarios, failures with evidence, crashes, kept dumps."""

from __future__ import annotations

from pathlib import Path

import pytest
from scenario_runs import run_text

from harness.runner import run_scenario
from harness.scenario import load_scenario_file, load_scenarios
from harness.target.sim import SimSettings, SimulatedMachine

REPO_ROOT = Path(__file__).resolve().parents[1]

SHIPPED = load_scenarios(REPO_ROOT / "scenarios")


def test_shipped_suite_has_the_scenarios_the_spine_needs() -> None:
    names = {loaded.scenario.name for loaded in SHIPPED}
    for needed in (
        "store_then_create_contains_buffer",
        "remove_then_create_excludes_buffer",
        "exclude_dmf_data_leaves_only_client_structures",
        "client_structures_are_in_the_dump",
        "secondary_data_is_attached_by_guid",
        "collection_parameter_is_p2",
    ):
        assert needed in names


@pytest.mark.parametrize("loaded", SHIPPED, ids=lambda loaded: loaded.scenario.name)
def test_known_defect_scenarios_fail_on_bfac434_and_pass_on_contract(tmp_path: Path, loaded) -> None:
    """The suite proves its own predictions: a known-defect scenario fails as predicted on DMF as
    shipped and passes on the documented contract; every other scenario passes on both."""
    shipped = run_scenario(loaded, SimulatedMachine(tmp_path / "bfac434", SimSettings(profile="dmf-bfac434")))
    contract = run_scenario(loaded, SimulatedMachine(tmp_path / "contract", SimSettings(profile="contract")))
    if loaded.scenario.known_defect:
        assert shipped.outcome == "xfailed", shipped.failure_text()
        assert shipped.failed_steps, "a reproduced defect must show as a failing step"
    else:
        assert shipped.outcome == "passed", shipped.failure_text()
    assert contract.outcome == "passed", contract.failure_text()


ALLOC_STORE = """\
name: probe
steps:
  - alloc: {name: a, size: 32}
  - alloc: {name: b, size: 32}
  - store: a
"""


def test_false_expectation_fails_with_dump_evidence_and_yaml_position(tmp_path: Path) -> None:
    record = run_text(
        tmp_path,
        ALLOC_STORE
        + """\
  - create: {bugcheck_code: 0x1A2}
    expect:
      dump:
        contains: [b]
""",
    )
    assert record.outcome == "failed"
    text = record.failure_text()
    assert f"{tmp_path / 'scenario.yaml'}:9:" in text  # the `- b` item of `contains`
    assert "does not contain b" in text
    assert "nearest:" in text
    assert "dumps kept:" in text


def test_wrong_bytes_show_first_difference(tmp_path: Path) -> None:
    record = run_text(
        tmp_path,
        ALLOC_STORE
        + """\
  - create: {bugcheck_code: 0x1A2}
    expect:
      dump:
        contains: [{buffer: a, bytes: "61 7C 61 7C 00"}]
""",
    )
    text = record.failure_text()
    assert "bytes differ from offset +0x4" in text
    assert "expected: 00" in text and "found:    61" in text


def test_wrong_parameter_names_both_values(tmp_path: Path) -> None:
    record = run_text(
        tmp_path,
        ALLOC_STORE
        + "  - create: {bugcheck_code: 0x1A2, parameter: 5}\n    expect: {dump: {parameters: [6]}}\n",
    )
    assert "BugCheckParameter1 differs" in record.failure_text()
    assert "expected: 0x6" in record.failure_text() and "found:    0x5" in record.failure_text()


def test_unexpected_crash_skips_the_rest_and_keeps_the_crash_dump(tmp_path: Path) -> None:
    record = run_text(
        tmp_path,
        ALLOC_STORE + "  - remove: a\n  - create: {bugcheck_code: 1}\n",
    )
    assert record.outcome == "failed"
    assert [step.outcome for step in record.steps] == ["passed", "passed", "passed", "failed", "skipped"]
    assert "bugchecked unexpectedly" in record.failure_text()
    assert "0xD1" in record.failure_text()
    crash = [dump for dump in record.dumps if dump.kind == "crash"]
    assert len(crash) == 1 and crash[0].path.is_file()


def test_failed_status_expects_no_dump_file(tmp_path: Path) -> None:
    record = run_text(
        tmp_path,
        "name: t\nsteps:\n  - create: {bugcheck_code: 1}\n  - create: {bugcheck_code: 1}\n"
        "    expect: STATUS_OBJECT_NAME_COLLISION\n",
    )
    assert record.outcome == "passed", record.failure_text()
    assert len([d for d in record.dumps if d.kind == "live"]) == 1


def test_status_mismatch_names_both_statuses(tmp_path: Path) -> None:
    record = run_text(
        tmp_path, "name: t\nsteps:\n  - create: {bugcheck_code: 1}\n  - create: {bugcheck_code: 1}\n"
    )
    assert "STATUS_OBJECT_NAME_COLLISION (0xC0000035)" in record.failure_text()
    assert "STATUS_SUCCESS" in record.failure_text()


def test_reboot_forgets_buffers_and_the_collection_moves(tmp_path: Path) -> None:
    """After `reboot` stored buffers are gone from the dump and `collection` is the new handle."""
    record = run_text(
        tmp_path,
        """\
name: t
steps:
  - alloc: {name: before, size: 32}
  - store: before
  - reboot: true
  - alloc: {name: after, size: 32}
  - store: after
  - create: {bugcheck_code: 1, parameter: 4}
    expect:
      dump:
        parameters: [4, collection]
        contains: [after]
        block_count: 35
""",
    )
    assert record.outcome == "passed", record.failure_text()


def test_buffer_from_before_a_reboot_is_named_not_crashed_on(tmp_path: Path) -> None:
    record = run_text(
        tmp_path,
        "name: t\nsteps:\n  - alloc: {name: old, size: 8}\n  - reboot: true\n"
        "  - create: {bugcheck_code: 1}\n    expect: {dump: {excludes: [old]}}\n",
    )
    assert record.outcome == "failed"
    assert "buffer old does not exist on this boot" in record.failure_text()


def test_missing_feature_skips_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text("name: t\nrequires: [verifier]\nsteps:\n  - create: {bugcheck_code: 1}\n")
    (loaded,) = load_scenario_file(path)
    record = run_scenario(loaded, SimulatedMachine(tmp_path / "out", SimSettings(verifier=False)))
    assert record.outcome == "skipped"
    assert record.steps == []
    assert record.skip_reason is not None and "lacks verifier" in record.skip_reason


def test_simulator_offers_a_non_admin_caller_for_ioctls(tmp_path: Path) -> None:
    record = run_text(tmp_path, "name: t\nrequires: [non-admin-user, ioctl]\nsteps:\n  - wait: 1\n")
    assert record.outcome == "passed", record.skip_reason


UNEXPECTED_CRASH = """\
name: unexpected
steps:
  - alloc: {name: a, size: 16}
  - store: a
    irql: DISPATCH_LEVEL
  - create: {bugcheck_code: 1}
"""


def test_unexpected_crash_fails_with_the_crash_dump_summary_and_skips_the_rest(tmp_path: Path) -> None:
    record = run_text(tmp_path, UNEXPECTED_CRASH)
    assert record.outcome == "failed"
    crashed, skipped = record.steps[1], record.steps[2]
    assert crashed.outcome == "failed" and crashed.crash is not None
    text = "\n".join(crashed.failures)
    assert "bugchecked unexpectedly" in text
    # F38: the paged lock helper faults first at DISPATCH under Verifier: 0xD1 with P3 = 8
    assert "crash dump of the unexpected bugcheck" in text and "0xD1" in text.upper().replace("0X", "0x")
    assert skipped.outcome != "passed" and skipped.status is None
    assert any(d.kind == "crash" for d in record.dumps)


def test_expected_crash_checks_the_crash_dump_and_the_machine_recovers(tmp_path: Path) -> None:
    text = """\
name: expected
steps:
  - create: {bugcheck_code: 1}
    irql: DISPATCH_LEVEL
    expect: {bugcheck: [0xD1], bugcheck_parameters: [any, 2, 8, 0]}
  - wait: 61
  - create: {bugcheck_code: 2}
"""
    record = run_text(tmp_path, text)
    assert record.outcome == "failed"  # F38: P4 is the faulting instruction (= P1), not 0
    (failure,) = record.steps[0].failures
    assert "P4 of the crash dump differs" in failure and ":5:" in failure  # the expect line
    assert record.steps[2].outcome == "passed"  # the rebooted machine goes on


def test_next_scenario_runs_on_a_recovered_machine(tmp_path: Path) -> None:
    path = tmp_path / "two.yaml"
    path.write_text(UNEXPECTED_CRASH + "---\nname: after\nsteps:\n  - create: {bugcheck_code: 3}\n")
    first, second = load_scenario_file(path)
    sim = SimulatedMachine(tmp_path / "out")
    assert run_scenario(first, sim).outcome == "failed"
    after = run_scenario(second, sim)
    assert after.outcome == "passed", after.failure_text()
    assert sim.boot_number == 1  # prepare() reverted to the clean first boot


def test_repeat_names_the_failing_repetition(tmp_path: Path) -> None:
    text = "name: r\nsteps:\n  - create: {bugcheck_code: 1}\n    repeat: 2\n"
    record = run_text(tmp_path, text)
    (failure,) = record.steps[0].failures
    assert "repetition 2 of 2" in failure and "STATUS_OBJECT_NAME_COLLISION" in failure

"""Per-step `timeout` and per-scenario `machine:` settings, on the simulator and the Windows target.

The simulator keeps a deadline on its virtual clock (nothing in it blocks: a `wait` or a reboot is
what can outlast one) and applies `machine:` through SimSettings / ModuleConfig. The Windows target
gives the deadline to the remote command and tells a hang (same boot) from a crash (new boot); its
`machine:` settings are tested in test_machine_settings_vm.py (only `target_build` is skipped).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from driver_package import BuiltPackage
from signing import SigningIdentity
from test_windows_machine import Lab, build_lab

from harness.runner import run_scenario
from harness.scenario import LoadedScenario, load_scenario_file
from harness.target.base import OperationTimeout
from harness.target.machine_settings import MachineSettings
from harness.target.ops import Reboot, Wait
from harness.target.sim import SimSettings, SimulatedMachine
from harness.target.sim.machine import EPOCH, OP_SECONDS


def scenarios(tmp_path: Path, text: str) -> list[LoadedScenario]:
    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return load_scenario_file(path)


def test_a_wait_longer_than_its_timeout_fails_at_the_deadline_and_ends_the_scenario(tmp_path: Path) -> None:
    [loaded] = scenarios(
        tmp_path,
        """
        name: hangs
        steps:
          - alloc: {name: a, size: 8}
            timeout: 1
          - wait: 120
            timeout: 30
          - store: a
        """,
    )
    with SimulatedMachine(tmp_path / "out") as machine:
        record = run_scenario(loaded, machine)
        assert machine.now == pytest.approx(EPOCH + OP_SECONDS + 30)  # stopped at the deadline
    assert [step.outcome for step in record.steps] == ["passed", "failed", "skipped"]
    [failure] = record.steps[1].failures
    assert failure.startswith(f"{loaded.file}:6:14: step 2 (wait 120 s): did not finish within 30 s: ")
    assert "120.002 s of virtual time" in failure
    assert record.outcome == "failed"


def test_the_simulator_keeps_deadlines_on_its_virtual_clock(tmp_path: Path) -> None:
    with SimulatedMachine(tmp_path / "out") as machine:
        machine.execute(Wait(10), timeout=11)
        with pytest.raises(OperationTimeout) as caught:
            machine.execute(Reboot(), timeout=10)  # a boot takes 45 virtual seconds
        assert caught.value.seconds == 10 and "Reboot" in caught.value.detail
        assert machine.boot_number == 1, "an operation stopped at its deadline is not carried out"


def test_machine_settings_apply_on_the_simulator_and_end_with_the_scenario(tmp_path: Path) -> None:
    no_verifier, plain = scenarios(
        tmp_path,
        """
        name: verifier_off_short_report_type
        machine:
          verifier: false
          report_type: LkdhShortType
          guid_secondary_data: 00000000-0000-0000-0000-000000000000
          include_dmf_data_in_bugcheck_dump: true
        steps:
          - alloc: {name: a, size: 8}
          - store: a
            irql: DISPATCH_LEVEL
          - create: {bugcheck_code: 0x1A2, secondary_data: a}
            expect:
              dump:
                contains: [a]
                secondary_data: [{absent: true}]
        ---
        name: verifier_on_again
        steps:
          - alloc: {name: a, size: 8}
          - store: a
            irql: DISPATCH_LEVEL
            expect: {bugcheck: [0xC4, 0x10D, 0xA, 0xD1]}
        """,
    )
    with SimulatedMachine(tmp_path / "out") as machine:
        record = run_scenario(no_verifier, machine)
        assert record.outcome == "passed", record.failure_text()
        [dump] = [d for d in record.dumps if d.kind == "live"]
        assert dump.remote_name.startswith("LiveKernelReports/LkdhShortTy/")  # F05: 11 characters
        assert machine.module.config.include_dmf_data_in_bugcheck_dump
        again = run_scenario(plain, machine)  # the same target: the settings were the scenario's only
        assert again.outcome == "passed", again.failure_text()
        assert not machine.module.config.include_dmf_data_in_bugcheck_dump


def test_zero_device_interface_and_a_pre_rs3_build_on_the_simulator(tmp_path: Path) -> None:
    no_interface, old_build = scenarios(
        tmp_path,
        """
        name: no_device_interface
        machine: {guid_device_interface: 00000000-0000-0000-0000-000000000000}
        steps:
          - ioctl_create: {bugcheck_code: 0x1B0}
            expect: STATUS_OBJECT_NAME_NOT_FOUND
        ---
        name: built_for_rs2
        machine: {target_build: 15063}
        steps:
          - create: {bugcheck_code: 0x1A2}
            expect: {status: STATUS_SUCCESS, dump_written: false}
        """,
    )
    for loaded in (no_interface, old_build):
        with SimulatedMachine(tmp_path / loaded.folder_name) as machine:
            record = run_scenario(loaded, machine)
            assert record.outcome == "passed", record.failure_text()


def test_a_setting_that_removes_a_required_feature_skips_with_the_reason(tmp_path: Path) -> None:
    [loaded] = scenarios(
        tmp_path, "name: n\nrequires: [verifier]\nmachine: {verifier: false}\nsteps: [reboot: true]\n"
    )
    with SimulatedMachine(tmp_path / "out", SimSettings()) as machine:
        record = run_scenario(loaded, machine)
    assert record.outcome == "skipped" and "lacks verifier" in (record.skip_reason or "")


def test_the_windows_target_skips_only_target_build_with_its_reason(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    packages: dict[str, BuiltPackage],
    identity: SigningIdentity,
) -> None:
    lab = build_lab(tmp_path, monkeypatch, packages, identity)
    [loaded] = scenarios(tmp_path, "name: n\nmachine: {target_build: 15063}\nsteps: [reboot: true]\n")
    record = run_scenario(loaded, lab.machine)
    assert record.outcome == "skipped"
    assert record.skip_reason is not None and record.skip_reason.startswith(
        "machine: target_build=15063 is fixed when the driver is compiled (NTDDI_VERSION, F04/F44)"
    )
    assert "build a second driver package for that target" in record.skip_reason
    assert [call.name for call in lab.vm.calls] == ["list-dumps"], "only the dumps were looked for"
    assert lab.machine.configure(MachineSettings()) is None


@pytest.fixture
def lab(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    packages: dict[str, BuiltPackage],
    identity: SigningIdentity,
) -> Lab:
    lab = build_lab(tmp_path, monkeypatch, packages, identity)
    lab.machine.prepare()
    return lab


def test_a_hung_ioctl_on_the_vm_fails_at_the_step_deadline(lab: Lab, tmp_path: Path) -> None:
    [loaded] = scenarios(
        tmp_path,
        """
        name: hung_store
        steps:
          - alloc: {name: a, size: 8}
          - store: a
            timeout: 5
          - create: {bugcheck_code: 0x1A2}
        """,
    )
    mark = len(lab.vm.deadlines)
    lab.vm.hang_lkdctl_in = 3  # driver_info, the alloc, then the store never returns
    record = run_scenario(loaded, lab.machine, prepare=False)
    assert [step.outcome for step in record.steps] == ["passed", "failed", "skipped"]
    [failure] = record.steps[1].failures
    assert failure.startswith(f"{loaded.file}:5:14: step 2 (store a): did not finish within 5 s: ")
    assert "the machine still answers on the same boot, so the call hangs" in failure
    assert "no answer within the 5 s deadline" in failure
    deadlines = [deadline for name, deadline in lab.vm.deadlines[mark:] if name == "run-lkdctl"]
    assert deadlines == [90, 90, 5], "only the step with a timeout gets its deadline"
    assert record.outcome == "failed"


def test_a_wait_on_the_vm_sleeps_only_until_its_deadline(lab: Lab) -> None:
    with pytest.raises(OperationTimeout):
        lab.machine.execute(Wait(600), timeout=20)
    assert lab.sleeps[-1] == 20


def test_the_schema_knows_timeout_and_machine() -> None:
    import jsonschema  # a dev dependency (pyproject.toml)

    from harness.scenario import scenario_json_schema

    schema = scenario_json_schema()
    machine = schema["$defs"]["MachineSpec"]["properties"]
    assert "F05" in machine["report_type"]["description"] and "F04" in machine["target_build"]["description"]
    validator = jsonschema.Draft202012Validator(schema)
    document = {
        "name": "n",
        "machine": {"verifier": False, "report_type": "LkdhShortType", "target_build": 15063},
        "steps": [{"wait": 5, "timeout": 10}],
    }
    assert [error.message for error in validator.iter_errors(document)] == []
    assert not validator.is_valid({**document, "machine": {"report_type": "sixteen-chars-xx"}})
    assert not validator.is_valid({**document, "machine": {"verfier": False}})
    assert not validator.is_valid({"name": "n", "steps": [{"wait": 5, "timeout": 0}]})

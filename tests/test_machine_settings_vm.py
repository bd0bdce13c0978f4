"""A scenario's `machine:` on the Windows target, against the Windows double: the test driver's
registry parameters written through the guest session, the device restarted, the driver's INFO
checked, the VM's own values put back (harness/target/windows/machine_setup.py, module_config.py).

The double follows the documented Windows behaviour named in tests/windows_double_parameters.py:
values reach the driver only when the device restarts; `pnputil /restart-device` exits 0 or 3010
(reboot required). The driver's reading of the values is Config.c's, itself compiled and run in
tests/test_driver_config.py.
"""

from __future__ import annotations

import re
import textwrap
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from driver_package import BuiltPackage
from signing import SigningIdentity
from test_windows_machine import Lab, build_lab

from harness.runner import run_scenario
from harness.scenario import LoadedScenario, load_scenario_file
from harness.target.machine_settings import MachineSettings
from harness.target.sim import SimulatedMachine
from harness.target.windows import module_config
from harness.target.windows import protocol as P
from harness.target.windows.config import LibvirtSettings
from harness.target.windows.powershell import ScriptError

REPO = Path(__file__).resolve().parents[1]
ZERO = "00000000-0000-0000-0000-000000000000"


def scenarios(tmp_path: Path, text: str, name: str = "s.yaml") -> list[LoadedScenario]:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return load_scenario_file(path)


def shipped_with_machine(tmp_path: Path) -> list[LoadedScenario]:
    """Every shipped scenario and README example that sets `machine:` (README blocks by `# file:`)."""
    found = [
        loaded
        for path in sorted((REPO / "scenarios").glob("*.yaml"))
        for loaded in load_scenario_file(path)
        if loaded.scenario.machine is not None
    ]
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for block in re.findall(r"```yaml\n(# file: (\S+)[^\n]*\n.*?)```", readme, flags=re.DOTALL):
        text, file_name = block
        if "\nmachine:" in text and "broken" not in file_name:
            found += [s for s in scenarios(tmp_path, text, file_name) if s.scenario.machine is not None]
    return found


@pytest.fixture
def lab(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    packages: dict[str, BuiltPackage],
    identity: SigningIdentity,
) -> Lab:
    return build_lab(tmp_path, monkeypatch, packages, identity)


def info(lab: Lab) -> P.InfoReply:
    return lab.machine._control(P.pack_info(), info=True)


def test_shipped_machine_scenarios_run_on_the_vm_as_on_the_simulator(lab: Lab, tmp_path: Path) -> None:
    """Not skipped any more: each runs on the double's VM and ends as it ends on the simulator."""
    loaded = shipped_with_machine(tmp_path)
    assert len(loaded) >= 2, "the README's machine: examples at least"
    settings_seen: set[str] = set()
    for scenario in loaded:
        if scenario.scenario.machine.target_build is not None:  # compile-time: skipped on a VM, saying why
            record = run_scenario(scenario, lab.machine)
            assert record.outcome == "skipped" and "target_build=" in (record.skip_reason or "")
            continue
        if scenario.scenario.machine.report_type == "":  # the driver refuses it from the registry
            record = run_scenario(scenario, lab.machine)
            assert record.outcome == "skipped" and "report_type=''" in (record.skip_reason or "")
            continue
        with SimulatedMachine(tmp_path / "sim" / scenario.folder_name) as sim:
            expected = run_scenario(scenario, sim).outcome
        record = run_scenario(scenario, lab.machine)
        assert record.outcome == expected, (scenario.run_name, record.error, record.failure_text())
        assert record.outcome in ("passed", "xfailed"), scenario.run_name
        settings_seen |= set(
            MachineSettings(**scenario.scenario.machine.model_dump(exclude_none=True)).chosen()
        )
    assert {"verifier", "report_type", "guid_secondary_data"} <= settings_seen
    assert lab.vm.parameters.restarts, "the device was restarted to apply the parameters"


def test_each_module_setting_is_written_restarted_and_verified(lab: Lab, tmp_path: Path) -> None:
    [loaded] = scenarios(
        tmp_path,
        f"""
        name: all_module_settings
        machine:
          report_type: LkdhShortType
          guid_secondary_data: 6b1f5a0e-8c1d-4c35-9a57-4c4b444800aa
          guid_device_interface: {ZERO}
          include_dmf_data_in_bugcheck_dump: true
        steps:
          - ioctl_create: {{bugcheck_code: 0x1B0}}
            expect: STATUS_OBJECT_NAME_NOT_FOUND
          - create: {{bugcheck_code: 0x1A2}}
        """,
    )
    record = run_scenario(loaded, lab.machine)
    assert record.outcome == "passed", (record.error, record.failure_text())
    assert lab.vm.parameters.values == {
        "ReportType": {"type": "String", "data": "LkdhShortType"},
        "GuidSecondaryData": {"type": "String", "data": "{6b1f5a0e-8c1d-4c35-9a57-4c4b444800aa}"},
        "GuidDeviceInterface": {"type": "String", "data": "{" + ZERO + "}"},
        "IncludeDmfDataInBugCheckTriageDump": {"type": "DWord", "data": 1},
    }
    reply = info(lab)
    assert reply.config is not None and reply.config.rejected == 0
    assert reply.config.requested_report_type == "LkdhShortType" and reply.report_type == "LkdhShortTy"  # F05
    assert reply.secondary_data_guid == uuid.UUID("6b1f5a0e-8c1d-4c35-9a57-4c4b444800aa")
    live = [dump.remote_name for dump in record.dumps if dump.kind == "live"]
    assert len(live) == 1 and live[0].startswith("LiveKernelReports/LkdhShortTy/"), live


def test_parameters_reach_the_driver_only_when_the_device_restarts(lab: Lab) -> None:
    lab.machine.prepare()
    written = {"ReportType": {"type": "String", "data": "LkdhLater"}}
    lab.machine.guest.script(
        "device-parameters",
        {"hardware_id": "Root\\LkdhTestDriver", "action": "apply", "values": written, "restart": False},
    )
    before = info(lab)
    assert before.config is not None and before.config.requested_report_type == "LkdhTestDriver"
    assert before.config.from_registry == 0, "the running driver read its parameters at its own start"
    answer = lab.machine.guest.script(
        "device-parameters",
        {"hardware_id": "Root\\LkdhTestDriver", "action": "apply", "values": {}, "restart": True},
    )
    assert (answer["restart_exit_code"], answer["reboot_required"]) == (0, False)
    after = info(lab)
    assert after.config is not None and after.config.requested_report_type == "LkdhLater"
    assert after.config.from_registry == P.CONFIG_REPORT_TYPE


def test_a_setting_the_driver_did_not_take_fails_the_scenario_saying_which(lab: Lab, tmp_path: Path) -> None:
    """A driver build that does not read ReportType (an old build): the write alone proves nothing."""
    lab.vm.parameters.ignored = {"ReportType"}
    [loaded] = scenarios(
        tmp_path,
        "name: short_report\nmachine: {report_type: LkdhShortType}\n"
        "steps: [{create: {bugcheck_code: 0x1A2}}]\n",
    )
    record = run_scenario(loaded, lab.machine)
    assert record.outcome == "error"
    assert record.error is not None
    assert "the test driver did not take the scenario's machine settings" in record.error
    assert (
        "report_type=LkdhShortType: the driver did not read registry value ReportType"
        " (hardware key status 0x00000000), it runs with its built-in value"
    ) in record.error
    assert record.steps == [], "no step ran against a machine set up otherwise than asked"


def test_a_value_the_driver_refuses_is_named(lab: Lab) -> None:
    """The harness's own checks would not send this; a hand-set or stale value could be there."""
    lab.machine.prepare()
    settings = MachineSettings(report_type="LkdhShortType")
    lab.machine.guest.script(
        "device-parameters",
        {
            "hardware_id": "Root\\LkdhTestDriver",
            "action": "apply",
            "values": {"ReportType": {"type": "DWord", "data": 5}},
            "restart": True,
        },
    )
    problems = module_config.unmet(settings, info(lab))
    assert problems == ["report_type=LkdhShortType: the driver refused registry value ReportType"]


def test_a_restart_that_needs_a_reboot_reboots_then_verifies(lab: Lab, tmp_path: Path) -> None:
    lab.machine.prepare()
    restarts = lab.vm.restarts
    lab.vm.parameters.restart_needs_reboot = True
    [loaded] = scenarios(
        tmp_path, "name: n\nmachine: {report_type: LkdhRebooted}\nsteps: [{create: {bugcheck_code: 0x1A2}}]\n"
    )
    record = run_scenario(loaded, lab.machine)
    assert record.outcome == "passed", (record.error, record.failure_text())
    assert lab.vm.restarts > restarts, "pnputil exit 3010: the VM was rebooted"
    reply = info(lab)
    assert reply.config is not None and reply.config.requested_report_type == "LkdhRebooted"


def test_the_vm_s_own_values_come_back_after_the_scenario(lab: Lab, tmp_path: Path) -> None:
    lab.vm.parameters.values["GuidSecondaryData"] = {
        "type": "String",
        "data": "{" + str(P.SECONDARY_DATA_GUID) + "}",
    }
    lab.vm.parameters.key_exists = True
    with_settings, plain = scenarios(
        tmp_path,
        f"""
        name: zero_guid
        machine: {{guid_secondary_data: {ZERO}, report_type: LkdhShortType}}
        steps: [{{create: {{bugcheck_code: 0x1A2}}}}]
        ---
        name: plain
        steps: [{{create: {{bugcheck_code: 0x1A2}}}}]
        """,
    )
    assert run_scenario(with_settings, lab.machine).outcome == "passed"
    assert lab.vm.parameters.values["ReportType"] == {"type": "String", "data": "LkdhShortType"}
    record = run_scenario(plain, lab.machine)
    assert record.outcome == "passed", (record.error, record.failure_text())
    assert lab.vm.parameters.values == {
        "GuidSecondaryData": {"type": "String", "data": "{" + str(P.SECONDARY_DATA_GUID) + "}"}
    }, "the VM's own value is back and the scenario's ReportType is gone"
    reply = info(lab)
    assert reply.config is not None and reply.config.requested_report_type == "LkdhTestDriver"
    lab.vm.parameters.values["ReportType"] = {"type": "String", "data": "Stray"}  # not lkdh's: left alone
    calls = len(lab.vm.calls)
    lab.machine.close()
    assert [call.name for call in lab.vm.calls[calls:]] == [], "close() had nothing of its own to restore"


def test_close_restores_what_the_last_scenario_set(lab: Lab, tmp_path: Path) -> None:
    [loaded] = scenarios(
        tmp_path,
        "name: n\nmachine: {report_type: LkdhShortType}\nsteps: [{create: {bugcheck_code: 0x1A2}}]\n",
    )
    assert run_scenario(loaded, lab.machine).outcome == "passed"
    lab.machine.close()
    assert lab.vm.parameters.values == {}
    assert lab.vm.parameters.in_effect().from_registry == 0, "the device restarted with its defaults"


def test_verifier_off_for_a_scenario_then_back_on(lab: Lab, tmp_path: Path) -> None:
    """The lab's config enables Verifier; `verifier: false` resets it and reboots, the next
    scenario gets it back (provisioning re-enables it), and INFO is the judge both times."""
    off, on = scenarios(
        tmp_path,
        """
        name: off
        machine: {verifier: false}
        steps:
          - alloc: {name: a, size: 8}
          - store: a
            irql: DISPATCH_LEVEL
        ---
        name: on
        requires: [verifier]
        steps: [{alloc: {name: a, size: 8}}]
        """,
    )
    record = run_scenario(off, lab.machine)
    assert record.outcome == "passed", (record.error, record.failure_text())
    assert not info(lab).verifier and lab.vm.verifier_drivers == ()
    record = run_scenario(on, lab.machine)
    assert record.outcome == "passed", (record.error, record.failure_text())
    assert info(lab).verifier


def test_a_driver_without_configuration_reporting_is_named_with_its_protocol(lab: Lab) -> None:
    lab.machine.prepare()
    old_driver = replace(info(lab), protocol_version=1, config=None)  # what a protocol-1 build answers
    [problem] = module_config.unmet(MachineSettings(report_type="LkdhShortType"), old_driver)
    assert problem.startswith("the driver speaks protocol 1 and reports no module configuration")
    assert module_config.unmet(MachineSettings(), old_driver) == [], "nothing asked, nothing to prove"


def test_the_template_refuses_what_the_registry_cannot_hold(lab: Lab) -> None:
    lab.machine.prepare()

    def apply(values: dict, hardware_id: str = "Root\\LkdhTestDriver") -> None:
        params = {"hardware_id": hardware_id, "action": "apply", "values": values, "restart": False}
        lab.machine.guest.script("device-parameters", params)

    with pytest.raises(ScriptError, match="type must be String or DWord, not 'Binary'"):
        apply({"ReportType": {"type": "Binary", "data": "AA=="}})
    with pytest.raises(ScriptError, match="'Report Type' is not a parameter name"):
        apply({"Report Type": {"type": "String", "data": "x"}})
    with pytest.raises(ScriptError, match="no device with hardware id 'Root\\\\Other'"):
        apply({}, hardware_id="Root\\Other")
    assert lab.vm.parameters.values == {}


class CheckpointRevert:
    """A hypervisor for the double: its checkpoint holds the device parameters as they were when it
    was taken (a revert restores the disk, registry included) and the VM boots from it."""

    def __init__(self, vm) -> None:
        self.vm = vm
        self.values = dict(vm.parameters.values)
        self.reverts = 0

    def describe(self) -> str:
        return "the double's checkpoint"

    def check(self) -> str:
        return "ok"

    def revert(self) -> None:
        self.reverts += 1
        self.vm.parameters.values = dict(self.values)
        self.vm.parameters._stage()  # the registry as the checkpoint holds it, read at the next boot
        self.vm._restart_computer({"delay_seconds": 0})
        self.vm.restarts -= 1  # a revert, not a restart the harness asked for


def test_after_a_revert_settings_are_written_again_and_defaults_cost_nothing(
    lab: Lab, tmp_path: Path
) -> None:
    lab.machine.prepare()  # provisioned: the state the checkpoint was taken in
    hypervisor = CheckpointRevert(lab.vm)
    config = lab.machine.config.model_copy(
        update={
            "hypervisor": LibvirtSettings(
                kind="libvirt",
                ssh={"host": "kvm.test", "user": "lab", "key_file": tmp_path / "key"},
                domain="win-double",
                snapshot="clean",
            )
        }
    )
    lab.machine.config = lab.machine._setup.config = config
    lab.machine.hypervisor = hypervisor
    short, again, plain = scenarios(
        tmp_path,
        """
        name: short
        machine: {report_type: LkdhShortType}
        steps: [{create: {bugcheck_code: 0x1A2}}]
        ---
        name: again
        machine: {report_type: LkdhShortType}
        steps: [{create: {bugcheck_code: 0x1A2}}]
        ---
        name: plain
        steps: [{create: {bugcheck_code: 0x1A2}}]
        """,
    )
    for loaded in (short, again):
        record = run_scenario(loaded, lab.machine)
        assert record.outcome == "passed", (record.error, record.failure_text())
        assert info(lab).config.requested_report_type == "LkdhShortType"  # type: ignore[union-attr]
    mark = len(lab.vm.calls)
    record = run_scenario(plain, lab.machine)
    assert record.outcome == "passed", (record.error, record.failure_text())
    applied = [call for call in lab.vm.calls[mark:] if call.name == "device-parameters"]
    assert applied == [], "the revert already gave the checkpoint's parameters back"
    assert info(lab).config.requested_report_type == "LkdhTestDriver"  # type: ignore[union-attr]
    assert hypervisor.reverts == 3

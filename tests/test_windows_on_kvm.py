"""`WindowsMachine` end to end on a real VM: the Windows test double inside a KVM test guest.

The double (tests/windows_double.py) runs inside the cached Debian guest (kvm_image.py) as a daemon
behind the login shell of the harness's account (windows_guest_double.py, windows_guest_shell.py), and
the harness reaches it exactly as it reaches a Windows VM: the bootstrap command line and its stdin
over a real SSH connection through QEMU user networking (restrict=on, a loopback forward), dumps
pulled over the guest's real SFTP server and checked against the guest's SHA-256, the hypervisor
given by the target config (`kind: qemu`, attached to the VM's second QMP socket). What is real here
and modelled in tests/test_windows_machine.py: the network, the reboot provisioning asks for
(restart-computer reboots the kernel), the crash (the simulator's bugcheck writes the crash dump to
the guest's disk, syncs, and panics the kernel with sysrq 'c': pvpanic reports GUEST_PANICKED on
QMP, the guest reboots itself), the boot identity (counted from the kernel's boot_id), the revert
(`snapshot-load` of the provisioned machine).

Provisioning runs once, on the fresh machine (test signing and Driver Verifier need one real reboot),
and the provisioned machine becomes the snapshot `driver-ready` every scenario reverts to, as a lab's
`clean-driver-ready` checkpoint is used. Each scenario's step outcomes, statuses, bugchecks and dumps
must equal a direct simulator run's. The config says `commands: ssh`: no WinRM server runs on Linux
(windows_guest.py). Skipped, with the reason, where the guest cannot boot (kvm_guest.py).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from driver_package import BuiltPackage
from signing import SigningIdentity
from test_windows_machine import _dump_facts, _step_facts
from windows_kvm_lab import (
    PANIC_TEXT,
    PROFILE,
    SCENARIOS,
    SNAPSHOT,
    WindowsLab,
    lab_missing_reason,
    provisioned_lab,
)

from harness.record import RunRecord
from harness.report.run_log import RunLog
from harness.runner import run_scenario
from harness.scenario import load_scenarios
from harness.target.ops import CONSOLE_LOG
from harness.target.sim import SimSettings, SimulatedMachine
from harness.target.windows.machine import WindowsMachine
from harness.target.windows.qemu_hypervisor import AttachedQemu, QemuHypervisor
from harness.target.windows.stage_check import ConfiguredSessions

KVM_MISSING = lab_missing_reason()
pytestmark = pytest.mark.skipif(KVM_MISSING is not None, reason=KVM_MISSING or "")

REPO_ROOT = Path(__file__).resolve().parents[1]
CRASHING = "create_at_dispatch_bugchecks_under_verifier"
PVPANIC_SEEN = "; the hypervisor saw the panic too: QEMU (VM 'harness') reported GUEST_PANICKED (action run)"
"""What the machine adds to the crash's reason: the harness's QMP socket is harness.qmp, so the VM is
'harness' to it; a Linux guest without kdump sends PVPANIC_PANICKED, and -action panic=none runs on."""


@pytest.fixture(scope="module")
def windows_lab(
    tmp_path_factory: pytest.TempPathFactory,
    packages: dict[str, BuiltPackage],
    identity: SigningIdentity,
) -> Iterator[WindowsLab]:
    with provisioned_lab(tmp_path_factory.mktemp("windows-on-kvm"), packages["1.2.3.4"], identity) as lab:
        yield lab


def _reference(name: str, folder: Path) -> RunRecord:
    (loaded,) = [item for item in load_scenarios(REPO_ROOT / "scenarios") if item.scenario.name == name]
    return run_scenario(loaded, SimulatedMachine(folder / "sim" / name, SimSettings(profile=PROFILE)))


def test_shipped_scenarios_on_the_guest_give_the_simulators_outcomes(windows_lab: WindowsLab) -> None:
    """Each scenario runs on the WindowsMachine the config describes, from a revert of the provisioned
    snapshot, and ends as on a fresh simulator with the very same step outcomes and dumps; the crash
    is a real panic, which the machine itself records: QEMU's GUEST_PANICKED in the crash's reason
    and run.log, the panic text in the console it kept in the scenario's folder; and the machine
    after it is clean again."""
    lab = windows_lab
    machine = WindowsMachine(lab.folder / "runs", lab.config, ConfiguredSessions())
    assert isinstance(machine.hypervisor, QemuHypervisor), "kind: qemu in the config"
    assert SNAPSHOT in machine.hypervisor.check()
    loaded_by_name = {item.scenario.name: item for item in load_scenarios(REPO_ROOT / "scenarios")}
    seconds = {"provisioning (one real reboot)": round(lab.provision_seconds, 1)}
    try:
        for name in SCENARIOS:
            reference = _reference(name, lab.folder)
            machine.output_dir = lab.folder / "runs" / name
            started = time.monotonic()
            record = run_scenario(loaded_by_name[name], machine, [RunLog(machine.output_dir)])
            cites_defect = loaded_by_name[name].scenario.known_defect is not None
            expected = "xpassed" if cites_defect and reference.outcome == "passed" else reference.outcome
            assert (record.outcome, record.error) == (expected, None), f"{name}: {record.failure_text()}"
            assert _step_facts(record) == _step_facts(reference), name
            assert _dump_facts(record) == _dump_facts(reference), name
            for dump in record.dumps:
                assert hashlib.sha256(dump.path.read_bytes()).hexdigest() == dump.sha256
            seconds[name] = round(time.monotonic() - started, 1)
            panics = machine.hypervisor.panics(since=started)
            console = (machine.output_dir / CONSOLE_LOG).read_text(errors="replace")  # the machine kept it
            if name == CRASHING:
                assert panics, "the bugcheck panicked the guest's kernel: pvpanic told QEMU"
                assert "crash" in [dump.kind for dump in record.dumps], "the crash dump was pulled"
                (crash,) = [step.crash for step in record.steps if step.crash is not None]
                assert crash.reason.endswith(PVPANIC_SEEN), crash.reason  # the machine asked QEMU
                assert f"{PVPANIC_SEEN}\n" in (machine.output_dir / "run.log").read_text()
                assert PANIC_TEXT in console
            else:
                assert panics == [], f"{name}: no panic"
                assert PANIC_TEXT not in console
        # The revert before the last scenario took the crash dump away with the rest of that boot.
        listed = machine.guest.script("list-dumps", {})["dumps"]
        assert [dump["kind"] for dump in listed if dump["kind"] == "crash"] == []
        print(f"\nWindows double on the {lab.guest.accel} guest, seconds (a record, not a test): {seconds}")
    finally:
        machine.close()
    assert isinstance(machine.hypervisor.vm, AttachedQemu)
    assert machine.hypervisor.vm._monitor is None, "closing the machine closed its QMP monitor"

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
must equal a direct simulator run's. Commands go over SSH, not WinRM: no WinRM server runs on Linux
(windows_guest.py). Skipped, with the reason, where the guest cannot boot (kvm_guest.py).
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import kvm_image
import pytest
from driver_package import BuiltPackage
from kvm_guest import CONNECT_TIMEOUT, KvmGuest, kvm_missing_reason
from signing import SigningIdentity
from test_windows_machine import _dump_facts, _step_facts, _write_build
from windows_guest import ADMIN, SshCommandSessions, build_bundle, install_double

from harness.record import RunRecord
from harness.runner import run_scenario
from harness.scenario import load_scenarios
from harness.target.sim import SimSettings, SimulatedMachine
from harness.target.windows.config import TargetConfig
from harness.target.windows.machine import WindowsMachine
from harness.target.windows.qemu_hypervisor import AttachedQemu, QemuHypervisor
from harness.target_config import load_target_config

GUEST_PYTHON = (3, 11)
"""Debian bookworm's Python, in the guest: the bundle carries this interpreter's compiled packages."""
KVM_MISSING = kvm_missing_reason()
if KVM_MISSING is None and sys.version_info[:2] != GUEST_PYTHON:
    KVM_MISSING = (
        f"the guest runs Python {GUEST_PYTHON[0]}.{GUEST_PYTHON[1]} (bookworm) and the double's bundle"
        f" carries this interpreter's compiled wheels, built for {sys.version_info[0]}.{sys.version_info[1]}"
    )
pytestmark = pytest.mark.skipif(KVM_MISSING is not None, reason=KVM_MISSING or "")

REPO_ROOT = Path(__file__).resolve().parents[1]
PROFILE = "dmf-bfac434"
SNAPSHOT = "driver-ready"
SCENARIOS = (
    "store_then_create_contains_buffer",
    "create_at_dispatch_bugchecks_under_verifier",
    "ioctl_create_as_standard_user_is_denied",
)
"""A live dump pulled and compared; a bugcheck (a real kernel panic and reboot); then, from the
revert after the crash, a standard-user IOCTL through the scheduled-task path."""
CRASHING = "create_at_dispatch_bugchecks_under_verifier"
ADMIN_PASSWORD, USER, USER_PASSWORD = "Adm1n-pw-for-the-guest-7d2a", "lkdh-user", "Std-user-pw-guest-41c9"
PANIC_TEXT = "Kernel panic - not syncing: sysrq triggered crash"

CONFIG = """\
name: kvm-windows-double
host: 127.0.0.1
winrm:
  username: {admin}
  password: {{env: LKDH_GUEST_ADMIN_PASSWORD}}
ssh:
  port: {port}
  user: {admin}
  key_file: {key}
  known_hosts: {known_hosts}
  connect_timeout: {connect_timeout}
hypervisor: {hypervisor}
driver:
  package: build/LkdhTestDriver
  certificate: build/LkdhTest.cer
  hardware_id: Root\\LkdhTestDriver
  service_name: LkdhTestDriver
  lkdctl: build/lkdctl.exe
verifier: {{enabled: true, flags: standard}}
live_dumps: {{report_type: LkdhTestDriver, minimum_spacing_seconds: 60}}
non_admin_user: {{username: {user}, password: {{env: LKDH_GUEST_USER_PASSWORD}}}}
timeouts: {{command: 600, boot: 900, transfer: 600}}
"""
"""Deadlines for TCG: under emulation one key exchange took 11 s and a boot to sshd minutes."""


@dataclass
class WindowsLab:
    guest: KvmGuest
    owner: QemuHypervisor
    """The test's own hypervisor on the VM's first monitor (it took the snapshot)."""
    config: TargetConfig
    folder: Path
    provision_seconds: float


def _config(folder: Path, guest: KvmGuest, hypervisor: str, name: str) -> TargetConfig:
    text = CONFIG.format(
        admin=ADMIN,
        user=USER,
        port=guest.ssh_port,
        key=guest.image.client_key,
        known_hosts=guest.known_hosts,
        connect_timeout=CONNECT_TIMEOUT[guest.accel],
        hypervisor=hypervisor,
    )
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return load_target_config(path)


@pytest.fixture(scope="module")
def windows_lab(
    tmp_path_factory: pytest.TempPathFactory,
    packages: dict[str, BuiltPackage],
    identity: SigningIdentity,
) -> Iterator[WindowsLab]:
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("LKDH_GUEST_ADMIN_PASSWORD", ADMIN_PASSWORD)
    monkeypatch.setenv("LKDH_GUEST_USER_PASSWORD", USER_PASSWORD)
    folder = tmp_path_factory.mktemp("windows-on-kvm")
    _write_build(folder / "build", packages["1.2.3.4"], identity)
    image = kvm_image.ensure_image(folder / "build.log")
    socket_dir = Path(tempfile.mkdtemp(prefix="lkdh-harness-qmp-"))  # unix socket paths are short
    harness_qmp = socket_dir / "harness.qmp"
    guest = KvmGuest(image, folder / "guest", memory_mib=512, extra_qmp=(harness_qmp,))
    guest.vm.start()
    try:
        with guest.wait_for_ssh() as root:
            setup = {
                "host": "127.0.0.1",
                "admin": ADMIN,
                "accounts": {ADMIN: ADMIN_PASSWORD, USER: USER_PASSWORD},
                "profile": PROFILE,
            }
            install_double(root, build_bundle(folder / "bundle.tar.gz"), setup, timeout=900)
        # The fresh machine, provisioned once without a hypervisor: it reboots for test signing and
        # Verifier for real. That machine is the snapshot every scenario starts from.
        fresh = _config(folder, guest, "{kind: none}", "fresh.yaml")
        first = WindowsMachine(folder / "provision", fresh, SshCommandSessions("127.0.0.1", fresh.ssh))
        started = time.monotonic()
        first.prepare()
        provision_seconds = time.monotonic() - started
        first.close()
        owner = QemuHypervisor(guest.vm, snapshot=SNAPSHOT)
        owner.take_snapshot()
        hypervisor = (
            f"{{kind: qemu, qmp_socket: {harness_qmp}, snapshot: {SNAPSHOT},"
            f" console_log: {guest.vm.spec.console_log}}}"
        )
        config = _config(folder, guest, hypervisor, "kvm.yaml")
        yield WindowsLab(guest, owner, config, folder, provision_seconds)
    finally:
        guest.vm.stop()
        shutil.rmtree(socket_dir, ignore_errors=True)
        monkeypatch.undo()


def _reference(name: str, folder: Path) -> RunRecord:
    (loaded,) = [item for item in load_scenarios(REPO_ROOT / "scenarios") if item.scenario.name == name]
    return run_scenario(loaded, SimulatedMachine(folder / "sim" / name, SimSettings(profile=PROFILE)))


def test_shipped_scenarios_on_the_guest_give_the_simulators_outcomes(windows_lab: WindowsLab) -> None:
    """Each scenario runs on the WindowsMachine the config describes, from a revert of the provisioned
    snapshot, and ends as on a fresh simulator with the very same step outcomes and dumps; the crash
    is a real panic (GUEST_PANICKED, the panic text in the console kept for the run) and the
    machine after it is clean again."""
    lab = windows_lab
    sessions = SshCommandSessions("127.0.0.1", lab.config.ssh)
    machine = WindowsMachine(lab.folder / "runs", lab.config, sessions)
    assert isinstance(machine.hypervisor, QemuHypervisor), "kind: qemu in the config"
    assert SNAPSHOT in machine.hypervisor.check()
    loaded_by_name = {item.scenario.name: item for item in load_scenarios(REPO_ROOT / "scenarios")}
    seconds = {"provisioning (one real reboot)": round(lab.provision_seconds, 1)}
    try:
        for name in SCENARIOS:
            reference = _reference(name, lab.folder)
            machine.output_dir = lab.folder / "runs" / name
            started = time.monotonic()
            record = run_scenario(loaded_by_name[name], machine)
            cites_defect = loaded_by_name[name].scenario.known_defect is not None
            expected = "xpassed" if cites_defect and reference.outcome == "passed" else reference.outcome
            assert (record.outcome, record.error) == (expected, None), f"{name}: {record.failure_text()}"
            assert _step_facts(record) == _step_facts(reference), name
            assert _dump_facts(record) == _dump_facts(reference), name
            for dump in record.dumps:
                assert hashlib.sha256(dump.path.read_bytes()).hexdigest() == dump.sha256
            seconds[name] = round(time.monotonic() - started, 1)
            panics = machine.hypervisor.panics(since=started)
            if name == CRASHING:
                assert panics, "the bugcheck panicked the guest's kernel: pvpanic told QEMU"
                assert "crash" in [dump.kind for dump in record.dumps], "the crash dump was pulled"
                console = machine.hypervisor.keep_console(machine.output_dir / "console.log")
                assert PANIC_TEXT in console
                assert PANIC_TEXT in (machine.output_dir / "console.log").read_text(errors="replace")
            else:
                assert panics == [], f"{name}: no panic"
        # The revert before the last scenario took the crash dump away with the rest of that boot.
        listed = machine.guest.script("list-dumps", {})["dumps"]
        assert [dump["kind"] for dump in listed if dump["kind"] == "crash"] == []
        print(f"\nWindows double on the {lab.guest.accel} guest, seconds (a record, not a test): {seconds}")
    finally:
        machine.close()
        assert isinstance(machine.hypervisor.vm, AttachedQemu)
        machine.hypervisor.vm.close()

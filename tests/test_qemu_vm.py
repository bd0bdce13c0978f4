"""The QEMU command line and the QEMU hypervisor's shape, checked without starting a VM.

What a VM is allowed to reach is decided here, so it is asserted on the argv QEMU is given: user
networking with `restrict=on` (the guest reaches nothing outside) and host forwards bound to
127.0.0.1 only; pvpanic with `-action panic=none` (QEMU reports the panic, the guest reboots itself);
`-S`, so the monitor is connected before the first instruction runs.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.target.windows.config import QemuSettings
from harness.target.windows.crash_witness import witness_of
from harness.target.windows.hypervisor import Hypervisor, HypervisorError, hypervisor_from_config
from harness.target.windows.qemu_hypervisor import AttachedQemu, QemuHypervisor
from harness.target.windows.qemu_vm import HostForward, QemuVm, QemuVmError, QemuVmSpec
from harness.target.windows.stage_check import ConfiguredSessions
from harness.target_config import TargetConfigErrors, load_target_config

needs_qemu = pytest.mark.skipif(
    shutil.which("qemu-system-x86_64") is None or shutil.which("qemu-img") is None,
    reason="qemu-system-x86 / qemu-utils not installed (.ci/run installs them)",
)


def test_the_guest_reaches_nothing_but_its_loopback_forwards() -> None:
    spec = QemuVmSpec("vm", Path("d.qcow2"), Path("s"), forwards=(HostForward(2222, 22),))
    argv = spec.argv(Path("/tmp/q.sock"))
    netdev = argv[argv.index("-netdev") + 1].split(",")
    assert netdev[0] == "user" and "restrict=on" in netdev
    assert [o for o in netdev if o.startswith("hostfwd=")] == ["hostfwd=tcp:127.0.0.1:2222-:22"]
    assert argv.count("-netdev") == 1 and "-nodefaults" in argv  # no default NIC beside it


def test_panics_are_reported_and_the_monitor_comes_first() -> None:
    argv = QemuVmSpec("vm", Path("d.qcow2"), Path("s")).argv(Path("/tmp/q.sock"))
    assert "pvpanic" in argv and argv[argv.index("-action") + 1] == "panic=none"
    assert "-S" in argv
    assert argv[argv.index("-qmp") + 1] == "unix:/tmp/q.sock,server=on,wait=off"
    console = argv[argv.index("-chardev") + 1]
    assert console.startswith("file,") and console.endswith("append=on")


def test_without_kvm_the_cpu_is_emulated() -> None:
    argv = QemuVmSpec("vm", Path("d.qcow2"), Path("s"), accel="tcg").argv(Path("/tmp/q.sock"))
    assert "q35,accel=tcg" in argv and argv[argv.index("-cpu") + 1] == "max"


def test_the_qemu_hypervisor_meets_the_hypervisor_interface_and_refuses_a_stopped_vm() -> None:
    vm = QemuVm(QemuVmSpec("vm", Path("/nonexistent/disk.qcow2"), Path("/nonexistent")))
    hypervisor: Hypervisor = QemuHypervisor(vm, snapshot="clean")
    assert "VM 'vm'" in hypervisor.describe() and "snapshot 'clean'" in hypervisor.describe()
    with pytest.raises(HypervisorError, match="VM vm is not running"):
        hypervisor.revert()


@needs_qemu
def test_a_qemu_that_cannot_start_says_why(tmp_path: Path) -> None:
    vm = QemuVm(QemuVmSpec("vm", tmp_path / "missing.qcow2", tmp_path, accel="tcg"))
    with pytest.raises(QemuVmError, match="exited at start") as failed:
        vm.start()
    assert "missing.qcow2" in str(failed.value)  # QEMU's own reason, from its log
    assert not vm.running


@pytest.fixture
def bare_vm(tmp_path: Path) -> Iterator[QemuVm]:
    """A VM with an empty disk and no kernel: its firmware finds nothing to boot and waits, which is
    all the snapshot jobs, the reset and the power cycle need (the guest-level proof is in
    test_kvm_guest.py). TCG, 64 MiB: it starts in a second anywhere QEMU is installed."""
    disk = tmp_path / "empty.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "64M"], check=True)
    vm = QemuVm(QemuVmSpec("bare", disk, tmp_path / "state", memory_mib=64, accel="tcg"))
    vm.start()
    try:
        yield vm
    finally:
        vm.stop()


@needs_qemu
def test_snapshot_jobs_reset_and_power_cycle_on_a_real_qemu(bare_vm: QemuVm) -> None:
    hypervisor = QemuHypervisor(bare_vm, snapshot="clean")
    assert hypervisor.snapshots() == []
    with pytest.raises(HypervisorError, match="no snapshot 'clean'"):
        hypervisor.check()
    hypervisor.take_snapshot()
    assert hypervisor.snapshots() == ["clean"]
    assert "VM is running, snapshot exists" in hypervisor.check()
    hypervisor.revert()
    assert bare_vm.qmp().execute("query-status")["status"] == "running"
    since = time.monotonic()
    hypervisor.reset()
    reset = bare_vm.qmp().wait_for("RESET", since=since, timeout=30)
    assert reset is not None and reset.data.get("guest") is False  # pressed by the host, not the guest
    first = bare_vm.process.pid if bare_vm.process else None
    hypervisor.power_cycle()
    assert bare_vm.running and bare_vm.process is not None and bare_vm.process.pid != first
    assert hypervisor.snapshots() == ["clean"]  # kept in the qcow2 file across the cycle
    hypervisor.revert()


@needs_qemu
def test_pvpanic_reports_are_the_crash_witness_panics(bare_vm: QemuVm) -> None:
    """pvpanic's port (ISA, 0x505) written as a guest's driver writes it, through HMP's `o` (I/O port
    write): bit 0 is PVPANIC_PANICKED (a Linux guest without kdump, Windows without a dump), bit 1
    PVPANIC_CRASH_LOADED (virtio-win's pvpanic.sys when Windows writes a crash dump). Real QEMU
    reports GUEST_PANICKED and GUEST_CRASHLOADED; both are panics to the witness, other events not."""
    hypervisor = QemuHypervisor(bare_vm)
    assert witness_of(hypervisor) is hypervisor
    since = time.monotonic()
    hypervisor.reset()
    assert bare_vm.qmp().wait_for("RESET", since=since, timeout=30) is not None
    assert hypervisor.panics(since) == [], "a reset is no panic"
    for value in (1, 2):
        bare_vm.qmp().execute("human-monitor-command", {"command-line": f"o /b 0x505 {value}"})
    first = hypervisor.wait_for_panic(since=since, timeout=30)
    assert bare_vm.qmp().wait_for("GUEST_CRASHLOADED", since=since, timeout=30) is not None
    panics = hypervisor.panics(since)
    assert [(p.event, dict(p.details)) for p in panics] == [
        ("GUEST_PANICKED", {"action": "run"}),  # -action panic=none: the guest keeps running
        ("GUEST_CRASHLOADED", {"action": "run"}),
    ]
    assert first == panics[0] and since <= panics[0].received <= panics[1].received <= time.monotonic()
    assert panics[0].describe() == "QEMU (VM 'bare') reported GUEST_PANICKED (action run)"
    assert hypervisor.panics(time.monotonic()) == []
    hypervisor.close()  # the QemuVm is the test's: its monitor stays open
    assert bare_vm.qmp().execute("query-status")["status"] == "running"


@needs_qemu
def test_a_snapshot_job_that_qemu_refuses_is_a_hypervisor_error(bare_vm: QemuVm) -> None:
    with pytest.raises(HypervisorError, match="bare"):
        QemuHypervisor(bare_vm, snapshot="x")._job(
            "snapshot-load", {"tag": "x", "vmstate": "nope", "devices": []}
        )


QEMU_TARGET = """\
name: lab
host: 127.0.0.1
winrm:
  username: admin
  password: {env: LKDH_WINRM_PASSWORD}
driver:
  package: pkg
  hardware_id: Root\\\\LkdhTestDriver
  lkdctl: lkdctl.exe
hypervisor:
  kind: qemu
  qmp_socket: QMP
  snapshot: SNAPSHOT
  console_log: logs/console.log
"""


def _qemu_config(tmp_path: Path, qmp: str = "run/win11.qmp", snapshot: str = "clean") -> Path:
    path = tmp_path / "vm" / "target.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(QEMU_TARGET.replace("QMP", qmp).replace("SNAPSHOT", snapshot), encoding="utf-8")
    return path


def test_kind_qemu_in_a_target_config_names_the_monitor_and_the_snapshot(tmp_path: Path) -> None:
    path = _qemu_config(tmp_path)
    settings = load_target_config(path).hypervisor
    assert isinstance(settings, QemuSettings)
    assert settings.qmp_socket == path.parent / "run" / "win11.qmp"  # relative to the config's folder
    assert settings.console_log == path.parent / "logs" / "console.log"
    assert (settings.snapshot, settings.disk_node, settings.timeout) == ("clean", "disk0", 600)
    hypervisor = hypervisor_from_config(settings, ConfiguredSessions())
    assert isinstance(hypervisor, QemuHypervisor)
    assert f"QMP {settings.qmp_socket}" in hypervisor.describe()
    with pytest.raises(HypervisorError, match=r"QMP .*win11\.qmp"):
        hypervisor.check()  # nothing listens there: the error names the socket


@pytest.mark.parametrize(
    ("snapshot", "qmp", "expected"),
    [
        ("'a b'", "q.sock", "13:13: hypervisor.snapshot: 'a b' is not a QEMU name"),
        ("clean", "{}", "12:15: hypervisor.qmp_socket: "),
    ],
)
def test_kind_qemu_errors_point_at_the_value(tmp_path: Path, snapshot: str, qmp: str, expected: str) -> None:
    path = _qemu_config(tmp_path, qmp=qmp, snapshot=snapshot)
    with pytest.raises(TargetConfigErrors) as caught:
        load_target_config(path)
    (line,) = str(caught.value).splitlines()
    assert line.removeprefix(f"{path}:").startswith(expected), line


@needs_qemu
def test_an_attached_qemu_reverts_through_its_own_qmp_socket(tmp_path: Path) -> None:
    """`kind: qemu`: the harness attaches to a QEMU it did not start, through a second QMP socket, sees
    the owner's snapshot, reverts to it and hears its events; a power cycle is refused with the reason."""
    disk = tmp_path / "empty.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "64M"], check=True)
    socket_dir = Path(tempfile.mkdtemp(prefix="lkdh-attach-"))
    spec = QemuVmSpec(
        "owned", disk, tmp_path / "state", memory_mib=64, accel="tcg", extra_qmp=(socket_dir / "h.qmp",)
    )
    owner = QemuVm(spec)
    owner.start()
    attached: QemuHypervisor | None = None
    try:
        QemuHypervisor(owner, snapshot="clean").take_snapshot()
        settings = load_target_config(_qemu_config(tmp_path, qmp=str(socket_dir / "h.qmp"))).hypervisor
        assert isinstance(settings, QemuSettings)
        attached = QemuHypervisor.from_settings(settings)
        assert "VM is running, snapshot exists" in attached.check()
        since = time.monotonic()
        attached.revert()
        assert owner.qmp().execute("query-status")["status"] == "running"
        attached.reset()
        assert attached.vm.qmp().wait_for("RESET", since=since, timeout=30) is not None
        assert owner.qmp().wait_for("RESET", since=since, timeout=30) is not None, "both clients hear it"
        with pytest.raises(HypervisorError, match="started outside the harness"):
            attached.power_cycle()
        assert attached.keep_console(tmp_path / "kept.log") == ""  # no console file was written
        attached.close()  # the harness's monitor on the second socket goes; QEMU and its owner stay
        assert isinstance(attached.vm, AttachedQemu) and attached.vm._monitor is None
        assert owner.qmp().execute("query-status")["status"] == "running"
        assert "VM is running" in attached.check(), "a closed attachment reconnects on next use"
    finally:
        if attached is not None:
            attached.close()
        owner.stop()
        shutil.rmtree(socket_dir, ignore_errors=True)

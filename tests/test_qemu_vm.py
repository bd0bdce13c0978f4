"""The QEMU command line and the QEMU hypervisor's shape, checked without starting a VM.

What a VM is allowed to reach is decided here, so it is asserted on the argv QEMU is given: user
networking with `restrict=on` (the guest reaches nothing outside) and host forwards bound to
127.0.0.1 only; pvpanic with `-action panic=none` (QEMU reports the panic, the guest reboots itself);
`-S`, so the monitor is connected before the first instruction runs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.target.windows.hypervisor import Hypervisor, HypervisorError
from harness.target.windows.qemu_hypervisor import QemuHypervisor
from harness.target.windows.qemu_vm import HostForward, QemuVm, QemuVmError, QemuVmSpec


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


@pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="qemu-system-x86 not installed")
def test_a_qemu_that_cannot_start_says_why(tmp_path: Path) -> None:
    vm = QemuVm(QemuVmSpec("vm", tmp_path / "missing.qcow2", tmp_path, accel="tcg"))
    with pytest.raises(QemuVmError, match="exited at start") as failed:
        vm.start()
    assert "missing.qcow2" in str(failed.value)  # QEMU's own reason, from its log
    assert not vm.running

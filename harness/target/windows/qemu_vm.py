"""One QEMU/KVM virtual machine as a process the harness owns: its command line, start, stop, cold cycle.

The habits are labgrid's QEMUDriver's: QEMU starts paused (`-S`), the monitor is connected before the
CPU runs so no event and no console byte is missed, then `cont` starts it; `stop()` asks QEMU to
`quit` and waits for its exit code; a power cycle is stop-then-start (RAM gone, disk kept), not a
reset. Unlike labgrid, QMP is a unix socket (not stdio), so the monitor can be reached by a second
tool while a test holds the VM, and the serial console goes to a file QEMU appends to (`append=on`):
the whole console history of the VM, across cycles and reverts, survives the harness.

The guest's only network is QEMU user networking with `restrict=on` (the guest reaches nothing
outside, https://www.qemu.org/docs/master/system/invocation.html, `-netdev user`), plus host
forwards bound to 127.0.0.1 only. Disks are `-blockdev` nodes with names of ours, so the snapshot
jobs (`snapshot-save`/`snapshot-load`) can name them. pvpanic (ISA, ACPI id QEMU0001) reports a
guest panic as the QMP event GUEST_PANICKED; `-action panic=none` then lets the guest reboot itself,
as Windows does after a bugcheck, instead of QEMU stopping or quitting.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.target.windows.qmp_monitor import QmpError, QmpMonitor

DISK_NODE = "disk0"
QUIT_GRACE = 10.0
SOCKET_WAIT = 10.0


@dataclass(frozen=True)
class HostForward:
    """A TCP port on the host's loopback forwarded to a port of the guest."""

    host_port: int
    guest_port: int

    def option(self) -> str:
        return f"hostfwd=tcp:127.0.0.1:{self.host_port}-:{self.guest_port}"


@dataclass(frozen=True)
class QemuVmSpec:
    """Everything QEMU's command line needs for one VM."""

    name: str
    disk: Path
    """qcow2: internal snapshots (VM state and disk together) need it."""
    state_dir: Path
    """Console log and QEMU's own log live here, kept after the VM stops."""
    forwards: tuple[HostForward, ...] = ()
    memory_mib: int = 512
    cpus: int = 1
    kernel: Path | None = None
    initrd: Path | None = None
    kernel_args: str = ""
    on_panic: str = "none"
    """QEMU's `-action panic=`: none (the guest reboots itself), pause (hold it for inspection), ..."""
    extra_qmp: tuple[Path, ...] = ()
    """More QMP server sockets, for a second client (a harness attached by `kind: qemu`) while the
    owner keeps its own monitor: QEMU serves one client per socket, each gets every event."""
    qemu: str = "qemu-system-x86_64"
    accel: str = "kvm"
    cpu: str = "host,-arch-capabilities"
    """The host's CPU without IA32_ARCH_CAPABILITIES (MSR 0x10a): under nested KVM (a CI runner that
    is itself a VM) QEMU 7.2 aborts setting that MSR ("failed to set MSR 0x10a"); the guest loses
    nothing the tests need, and the setting is harmless on bare metal."""

    @property
    def console_log(self) -> Path:
        return self.state_dir / "console.log"

    @property
    def qemu_log(self) -> Path:
        return self.state_dir / "qemu.log"

    def argv(self, qmp_socket: Path) -> list[str]:
        cpu = self.cpu if self.accel == "kvm" else "max"
        argv = [self.qemu, "-name", self.name, "-nodefaults", "-no-user-config", "-display", "none"]
        argv += ["-machine", f"q35,accel={self.accel}", "-cpu", cpu]
        argv += ["-m", str(self.memory_mib), "-smp", str(self.cpus)]
        argv += ["-S", "-qmp", f"unix:{qmp_socket},server=on,wait=off"]
        for extra in self.extra_qmp:
            argv += ["-qmp", f"unix:{extra},server=on,wait=off"]
        argv += [
            "-chardev",
            f"file,id=console,path={self.console_log},append=on",
            "-serial",
            "chardev:console",
        ]
        argv += ["-blockdev", f"driver=file,filename={self.disk},node-name={DISK_NODE}-file"]
        argv += ["-blockdev", f"driver=qcow2,file={DISK_NODE}-file,node-name={DISK_NODE}"]
        argv += ["-device", f"virtio-blk-pci,drive={DISK_NODE},id=vda"]
        netdev = ",".join(["user", "id=net0", "restrict=on", *(f.option() for f in self.forwards)])
        argv += ["-netdev", netdev, "-device", "virtio-net-pci,netdev=net0"]
        argv += ["-device", "pvpanic", "-action", f"panic={self.on_panic}"]
        if self.kernel is not None:
            argv += ["-kernel", str(self.kernel)]
            if self.initrd is not None:
                argv += ["-initrd", str(self.initrd)]
            if self.kernel_args:
                argv += ["-append", self.kernel_args]
        return argv


class QemuVmError(QmpError):
    """QEMU would not start or stop; QEMU's own log is attached."""


@dataclass
class QemuVm:
    """A running (or stopped) QEMU process for one spec, with its monitor."""

    spec: QemuVmSpec
    process: subprocess.Popen[bytes] | None = None
    monitor: QmpMonitor | None = None
    _socket_dir: Path | None = field(default=None, repr=False)

    disk_node: str = DISK_NODE

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def console_log(self) -> Path:
        return self.spec.console_log

    def where(self) -> str:
        return f"disk {self.spec.disk}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start QEMU paused, connect the monitor, then let the CPU run."""
        if self.running:
            return
        self.spec.state_dir.mkdir(parents=True, exist_ok=True)
        # A unix socket path is limited to 108 bytes; test folders can be longer, /tmp is not.
        self._socket_dir = Path(tempfile.mkdtemp(prefix="lkdh-qmp-"))
        socket = self._socket_dir / "qmp.sock"
        with self.spec.qemu_log.open("ab") as log:
            self.process = subprocess.Popen(
                self.spec.argv(socket), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            self._wait_for_socket(socket)
            self.monitor = QmpMonitor(socket, name=self.spec.name)
            self.monitor.execute("cont")
        except QmpError as error:
            exited = self._exits_within(2.0)
            self.stop()
            if exited:  # the socket came up, then QEMU gave up on its command line: say why
                raise QemuVmError(f"QEMU for {self.spec.name} exited at start: {self._log_tail()}") from None
            raise error
        except BaseException:
            self.stop()
            raise

    def _wait_for_socket(self, socket: Path) -> None:
        deadline = time.monotonic() + SOCKET_WAIT
        while not socket.exists():
            if self.process is None or self.process.poll() is not None:
                raise QemuVmError(f"QEMU for {self.spec.name} exited at start: {self._log_tail()}")
            if time.monotonic() > deadline:
                raise QemuVmError(f"QEMU for {self.spec.name} made no QMP socket in {SOCKET_WAIT:g} s")
            time.sleep(0.05)

    def _exits_within(self, seconds: float) -> bool:
        try:
            return self.process is not None and self.process.wait(seconds) is not None
        except subprocess.TimeoutExpired:
            return False

    def _log_tail(self) -> str:
        try:
            return self.spec.qemu_log.read_text(errors="replace")[-1500:].strip() or "no output"
        except OSError:
            return "no log"

    def stop(self) -> None:
        """`quit` through the monitor, then wait; kill QEMU if it does not go in QUIT_GRACE s."""
        if self.monitor is not None:
            with contextlib.suppress(QmpError):
                self.monitor.execute("quit", timeout=5.0)
            self.monitor.close()
            self.monitor = None
        if self.process is not None:
            try:
                self.process.wait(QUIT_GRACE)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None

    def power_cycle(self) -> None:
        """Off and on again: a cold boot from the disk as it is now."""
        self.stop()
        self.start()

    def qmp(self) -> QmpMonitor:
        if self.monitor is None or not self.running:
            raise QemuVmError(f"VM {self.spec.name} is not running (QEMU log: {self._log_tail()})")
        return self.monitor

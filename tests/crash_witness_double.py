"""A QEMU that watches the Windows double (tests/windows_double.py), for the real `QemuHypervisor`.

`QemuHypervisor` (harness/target/windows/qemu_hypervisor.py) asks a `QemuMachine` for its monitor's
events and its console file. `PvpanicQemu` is that machine for the double: when the double's
simulated kernel bugchecks, its monitor receives what QEMU's pvpanic device sends, stamped with the
host's monotonic time as QmpMonitor stamps events:
- GUEST_CRASHLOADED by default: what virtio-win's pvpanic.sys writes when Windows writes a crash dump
  (kvm-guest-drivers-windows pvpanic/pvpanic/bugcheck.c, PVPanicOnDumpBugCheck), which QEMU reports
  with action "run" (softmmu/runstate.c, qemu_system_guest_crashloaded);
- GUEST_PANICKED with action "run" when `event` says so: QEMU with `-action panic=none`
  (qemu_system_guest_panicked; test_kvm_guest.py sees exactly this on a real QEMU).
QMP delivers an event only to a client connected when it happens (qemu-qmp-ref, "QMP events"):
`connected = False` models a harness that attached after the panic. The console is a real file the
test writes to as the guest's serial port would; the harness copies it with its own code.

What it cannot show: that Windows sends either event (no Windows guest here), or what Windows writes
to a serial console (with EMS on, its bugcheck text; here the test writes its own line).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from windows_double import WindowsVmDouble

from harness.target.ops import Crash
from harness.target.windows.hypervisor import HypervisorError
from harness.target.windows.qmp_monitor import QmpEvent


class MonitorDouble:
    """QmpMonitor's event side (events, wait_for), fed by `PvpanicQemu`; it runs no commands."""

    def __init__(self) -> None:
        self.received: list[QmpEvent] = []
        self.closed = False

    def events(self, since: float = 0.0, name: str | None = None) -> list[QmpEvent]:
        return [e for e in self.received if e.received >= since and name in (None, e.name)]

    def wait_for(
        self, name: str | tuple[str, ...], *, since: float, timeout: float, **_: Any
    ) -> QmpEvent | None:
        names = (name,) if isinstance(name, str) else name
        return next((e for e in self.received if e.received >= since and e.name in names), None)

    def execute(self, command: str, arguments: dict[str, Any] | None = None, **_: Any) -> Any:
        raise AssertionError(f"test double: QMP {command} is not modelled")

    def close(self) -> None:
        self.closed = True


class PvpanicQemu:
    """A `QemuMachine` whose guest is the Windows double, with pvpanic and a console file."""

    disk_node = "disk0"

    def __init__(self, vm: WindowsVmDouble, console_log: Path, *, event: str = "GUEST_CRASHLOADED") -> None:
        self.name = "win-double"
        self.console_log = console_log
        self.event = event
        self.connected = True
        self.monitor = MonitorDouble()
        self.console_lines_at_crash: list[str] = []
        """Lines the serial port gets at each bugcheck (a test sets them; Windows' text is unknown here)."""
        console_log.parent.mkdir(parents=True, exist_ok=True)
        console_log.touch()
        vm.crash_listeners.append(self._bugchecked)

    def where(self) -> str:
        return "the Windows double"

    def qmp(self) -> MonitorDouble:
        return self.monitor

    def power_cycle(self) -> None:
        raise HypervisorError("test double: no power cycle")

    def panic_now(self) -> None:
        """pvpanic written without a bugcheck the double knows of (a report the guest outran)."""
        if self.connected:
            self.monitor.received.append(QmpEvent(self.event, {"action": "run"}, time.monotonic()))

    def write_console(self, text: str) -> None:
        with self.console_log.open("a", encoding="utf-8") as console:
            console.write(text)

    def _bugchecked(self, crash: Crash) -> None:
        for line in self.console_lines_at_crash:
            self.write_console(line + "\n")
        self.panic_now()

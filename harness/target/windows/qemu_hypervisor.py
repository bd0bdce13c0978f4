"""QEMU/KVM as the hypervisor that resets the test machine, beside Hyper-V and libvirt (hypervisor.py).

It meets the same `Hypervisor` interface (describe, check, revert) and adds what only a hypervisor the
harness drives itself can give:
- internal snapshots: `snapshot-save`/`snapshot-load` are QMP jobs (QEMU >= 6.0) that store or load
  the VM's RAM and device state *and* every disk's state in the qcow2 file, under one tag; the
  harness waits for the job's JOB_STATUS_CHANGE to `concluded`, reads its error from `query-jobs` and
  dismisses it (https://qemu-project.gitlab.io/qemu/interop/qemu-qmp-ref.html, "snapshot-save");
- a power cycle (QEMU process off and on, a cold boot) and a reset (`system_reset`, the reset line);
- crashes as QEMU sees them: pvpanic's GUEST_PANICKED or GUEST_CRASHLOADED event, with the host
  time it arrived, so a caller can tell a panic from an ordinary reboot without asking the guest;
- the serial console, which QEMU appends to a file, copied into the run's log folder piece by piece
  (`keep_console`), so the console around a crash is kept even when the run fails after it.
The last two make it a crash witness (crash_witness.py), which WindowsMachine asks by itself.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from harness.target.windows.config import QemuSettings
from harness.target.windows.crash_witness import ConsoleFile, GuestPanic
from harness.target.windows.hypervisor import HypervisorError
from harness.target.windows.qmp_monitor import QmpError, QmpEvent, QmpMonitor

log = logging.getLogger(__name__)

JOB_DEADLINE = 120.0
"""A snapshot of a 512 MiB guest takes a few seconds; a job still running after this is stuck."""

PANIC_EVENTS = ("GUEST_PANICKED", "GUEST_CRASHLOADED")
"""pvpanic's two reports: a panic, and a panic the guest handles itself by writing a dump (what
virtio-win's Windows driver sends when a crash dump is written; crash_witness.py)."""

_job_numbers = itertools.count(1)


@contextlib.contextmanager
def _as_hypervisor_error() -> Iterator[None]:
    """Callers of a `Hypervisor` catch HypervisorError; QEMU's and QMP's own errors become one."""
    try:
        yield
    except QmpError as error:
        raise HypervisorError(str(error)) from None


class QemuMachine(Protocol):
    """What the hypervisor needs of a QEMU: a `QemuVm` the harness started, or an `AttachedQemu`."""

    name: str
    disk_node: str
    console_log: Path | None

    def where(self) -> str:
        """Where the VM's disk or monitor is, for messages."""

    def qmp(self) -> QmpMonitor: ...

    def power_cycle(self) -> None: ...


class AttachedQemu:
    """A QEMU someone else started, reached through its QMP socket (`kind: qemu` in a target config).

    The monitor is connected on first use and kept: QMP sends events only to connected clients, so a
    panic is seen from then on (a panic before it is still caught by the boot identity). QEMU's
    process is not the harness's, so a power cycle (off, then on from the same command line) cannot
    be done from here: it is refused with the reason, and `reset()` (the reset line) is what remains.
    """

    def __init__(self, settings: QemuSettings) -> None:
        self.settings = settings
        self.name = settings.qmp_socket.stem
        self.disk_node = settings.disk_node
        self.console_log = settings.console_log
        self._monitor: QmpMonitor | None = None

    def where(self) -> str:
        return f"QMP {self.settings.qmp_socket}"

    def qmp(self) -> QmpMonitor:
        if self._monitor is None:
            self._monitor = QmpMonitor(self.settings.qmp_socket, name=self.name)
        return self._monitor

    def power_cycle(self) -> None:
        raise HypervisorError(
            f"VM '{self.name}' ({self.where()}) was started outside the harness: it cannot be powered"
            " off and on from here; use reset, or start QEMU from the harness (QemuVm)"
        )

    def close(self) -> None:
        if self._monitor is not None:
            self._monitor.close()
            self._monitor = None


class QemuHypervisor:
    """Reverts, cycles and watches one QEMU VM (a `QemuVm` or an `AttachedQemu`)."""

    def __init__(self, vm: QemuMachine, snapshot: str = "clean") -> None:
        self.vm = vm
        self.snapshot = snapshot
        self._console = ConsoleFile(vm.console_log)

    @classmethod
    def from_settings(cls, settings: QemuSettings) -> QemuHypervisor:
        """The hypervisor a `kind: qemu` target config names."""
        return cls(AttachedQemu(settings), snapshot=settings.snapshot)

    def describe(self) -> str:
        return f"QEMU/KVM VM '{self.vm.name}' on this host ({self.vm.where()}), snapshot '{self.snapshot}'"

    @_as_hypervisor_error()
    def check(self) -> str:
        status = self.vm.qmp().execute("query-status")
        if self.snapshot not in self.snapshots():
            where = self.vm.where()
            raise HypervisorError(f"VM '{self.vm.name}' has no snapshot '{self.snapshot}' ({where})")
        return f"{self.describe()}; VM is {status['status']}, snapshot exists"

    @_as_hypervisor_error()
    def snapshots(self) -> list[str]:
        """Names of the internal snapshots on the VM's disk (`query-block`)."""
        for device in self.vm.qmp().execute("query-block"):
            inserted = device.get("inserted") or {}
            if inserted.get("node-name") == self.vm.disk_node:
                return [s["name"] for s in inserted.get("image", {}).get("snapshots", [])]
        raise HypervisorError(f"VM '{self.vm.name}' has no disk node '{self.vm.disk_node}'")

    @_as_hypervisor_error()
    def take_snapshot(self) -> None:
        """Store the running VM (RAM, devices, disk) as the snapshot `revert()` returns to."""
        node = self.vm.disk_node
        self._job("snapshot-save", {"tag": self.snapshot, "vmstate": node, "devices": [node]})

    @_as_hypervisor_error()
    def revert(self) -> None:
        if self.snapshot not in self.snapshots():
            raise HypervisorError(
                f"cannot revert VM '{self.vm.name}': no snapshot '{self.snapshot}' ({self.vm.where()})"
            )
        node = self.vm.disk_node
        self._job("snapshot-load", {"tag": self.snapshot, "vmstate": node, "devices": [node]})
        monitor = self.vm.qmp()
        if monitor.execute("query-status")["status"] != "running":
            monitor.execute("cont")
        status = monitor.execute("query-status")["status"]
        if status != "running":
            raise HypervisorError(
                f"VM '{self.vm.name}' is {status!r}, not running, after loading snapshot '{self.snapshot}'"
            )

    def _job(self, command: str, arguments: dict[str, object]) -> None:
        monitor = self.vm.qmp()
        job_id = f"lkdh-{command}-{next(_job_numbers)}"
        started = time.monotonic()
        try:
            monitor.execute(command, {"job-id": job_id, **arguments})
        except QmpError as error:
            raise HypervisorError(f"VM '{self.vm.name}': {error}") from None
        done = monitor.wait_for(
            "JOB_STATUS_CHANGE",
            since=started,
            timeout=JOB_DEADLINE,
            match=lambda e: e.data.get("id") == job_id and e.data.get("status") == "concluded",
        )
        if done is None:
            raise HypervisorError(
                f"VM '{self.vm.name}': {command} '{self.snapshot}' not done after {JOB_DEADLINE:g} s"
            )
        job = next((j for j in monitor.execute("query-jobs") if j["id"] == job_id), {})
        monitor.execute("job-dismiss", {"id": job_id})
        if job.get("error"):
            raise HypervisorError(f"VM '{self.vm.name}': {command} '{self.snapshot}' failed: {job['error']}")
        log.info(
            "qemu: %s '%s' on %s took %.1f s",
            command,
            self.snapshot,
            self.vm.name,
            time.monotonic() - started,
        )

    @_as_hypervisor_error()
    def power_cycle(self) -> None:
        """Power off and on: a cold boot from the disk as it is (RAM and device state gone)."""
        self.vm.power_cycle()

    @_as_hypervisor_error()
    def reset(self) -> None:
        """Press the reset line (`system_reset`): the guest reboots without shutting down."""
        self.vm.qmp().execute("system_reset")

    def panics(self, since: float = 0.0) -> list[GuestPanic]:
        """pvpanic's reports (GUEST_PANICKED, GUEST_CRASHLOADED) received since `since` (host
        monotonic time), as the crash witness reports them (crash_witness.py)."""
        with _as_hypervisor_error():
            events = self.vm.qmp().events(since)
        return [self._panic(event) for event in events if event.name in PANIC_EVENTS]

    def wait_for_panic(self, *, since: float, timeout: float) -> GuestPanic | None:
        """The first panic report since `since`; None after `timeout` s."""
        with _as_hypervisor_error():
            found = self.vm.qmp().wait_for(PANIC_EVENTS, since=since, timeout=timeout)
        return None if found is None else self._panic(found)

    def _panic(self, event: QmpEvent) -> GuestPanic:
        details: dict[str, object] = {}
        if "action" in event.data:
            details["action"] = event.data["action"]
        info = event.data.get("info")
        if isinstance(info, dict):
            details["info"] = _panic_information(info)
        return GuestPanic(event.received, event.name, details, f"QEMU (VM '{self.vm.name}')")

    def keep_console(self, destination: Path) -> str:
        """Append the console output not yet kept to `destination` (the run's console log); returns it."""
        return self._console.keep(destination)

    def close(self) -> None:
        """Close the monitor of an attached QEMU (the harness opened it); a `QemuVm` is its owner's,
        who stops it."""
        if isinstance(self.vm, AttachedQemu):
            self.vm.close()


def _panic_information(info: dict[str, object]) -> str:
    """QEMU's GuestPanicInformation in one line. With Hyper-V enlightenments (`hv-crash`) Windows
    hands the bugcheck code and its four parameters to the hypervisor, and QEMU reports them as
    arg1..arg5 (qapi/run-state.json, GuestPanicInformationHyperV)."""
    if info.get("type") == "hyper-v":
        args = [info.get(f"arg{n}") for n in range(1, 6)]
        numbers = [arg for arg in args if isinstance(arg, int)]
        if len(numbers) == 5:
            shown = ", ".join(f"0x{p:X}" for p in numbers[1:])
            return f"hyper-v bugcheck 0x{numbers[0]:X} ({shown})"
    return ", ".join(f"{key} {value}" for key, value in info.items())

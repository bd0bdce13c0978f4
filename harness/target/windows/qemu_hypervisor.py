"""QEMU/KVM as the hypervisor that resets the test machine, beside Hyper-V and libvirt (hypervisor.py).

It meets the same `Hypervisor` interface (describe, check, revert) and adds what only a hypervisor the
harness drives itself can give:
- internal snapshots: `snapshot-save`/`snapshot-load` are QMP jobs (QEMU >= 6.0) that store or load
  the VM's RAM and device state *and* every disk's state in the qcow2 file, under one tag; the
  harness waits for the job's JOB_STATUS_CHANGE to `concluded`, reads its error from `query-jobs` and
  dismisses it (https://qemu-project.gitlab.io/qemu/interop/qemu-qmp-ref.html, "snapshot-save");
- a power cycle (QEMU process off and on, a cold boot) and a reset (`system_reset`, the reset line);
- crashes as QEMU sees them: pvpanic's GUEST_PANICKED event, with the host time it arrived, so a
  caller can tell a panic from an ordinary reboot without asking the guest;
- the serial console, which QEMU appends to a file, copied into the run's log folder piece by piece
  (`keep_console`), so the console around a crash is kept even when the run fails after it.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import time
from collections.abc import Iterator
from pathlib import Path

from harness.target.windows.hypervisor import HypervisorError
from harness.target.windows.qemu_vm import DISK_NODE, QemuVm
from harness.target.windows.qmp_monitor import QmpError, QmpEvent

log = logging.getLogger(__name__)

JOB_DEADLINE = 120.0
"""A snapshot of a 512 MiB guest takes a few seconds; a job still running after this is stuck."""

_job_numbers = itertools.count(1)


@contextlib.contextmanager
def _as_hypervisor_error() -> Iterator[None]:
    """Callers of a `Hypervisor` catch HypervisorError; QEMU's and QMP's own errors become one."""
    try:
        yield
    except QmpError as error:
        raise HypervisorError(str(error)) from None


class QemuHypervisor:
    """Reverts, cycles and watches one `QemuVm` (started by the caller, or by `power_on`)."""

    def __init__(self, vm: QemuVm, snapshot: str = "clean") -> None:
        self.vm = vm
        self.snapshot = snapshot
        self._console_kept = 0

    def describe(self) -> str:
        spec = self.vm.spec
        return f"QEMU/KVM VM '{spec.name}' on this host: disk {spec.disk}, snapshot '{self.snapshot}'"

    @_as_hypervisor_error()
    def check(self) -> str:
        status = self.vm.qmp().execute("query-status")
        if self.snapshot not in self.snapshots():
            raise HypervisorError(
                f"VM '{self.vm.spec.name}' has no snapshot '{self.snapshot}' in {self.vm.spec.disk}"
            )
        return f"{self.describe()}; VM is {status['status']}, snapshot exists"

    @_as_hypervisor_error()
    def snapshots(self) -> list[str]:
        """Names of the internal snapshots on the VM's disk (`query-block`)."""
        for device in self.vm.qmp().execute("query-block"):
            inserted = device.get("inserted") or {}
            if inserted.get("node-name") == DISK_NODE:
                return [s["name"] for s in inserted.get("image", {}).get("snapshots", [])]
        raise HypervisorError(f"VM '{self.vm.spec.name}' has no disk node '{DISK_NODE}'")

    @_as_hypervisor_error()
    def take_snapshot(self) -> None:
        """Store the running VM (RAM, devices, disk) as the snapshot `revert()` returns to."""
        self._job("snapshot-save", {"tag": self.snapshot, "vmstate": DISK_NODE, "devices": [DISK_NODE]})

    @_as_hypervisor_error()
    def revert(self) -> None:
        if self.snapshot not in self.snapshots():
            raise HypervisorError(
                f"cannot revert VM '{self.vm.spec.name}': no snapshot '{self.snapshot}'"
                f" in {self.vm.spec.disk}"
            )
        self._job("snapshot-load", {"tag": self.snapshot, "vmstate": DISK_NODE, "devices": [DISK_NODE]})
        monitor = self.vm.qmp()
        if monitor.execute("query-status")["status"] != "running":
            monitor.execute("cont")
        status = monitor.execute("query-status")["status"]
        if status != "running":
            raise HypervisorError(
                f"VM '{self.vm.spec.name}' is {status!r}, not running,"
                f" after loading snapshot '{self.snapshot}'"
            )

    def _job(self, command: str, arguments: dict[str, object]) -> None:
        monitor = self.vm.qmp()
        job_id = f"lkdh-{command}-{next(_job_numbers)}"
        started = time.monotonic()
        try:
            monitor.execute(command, {"job-id": job_id, **arguments})
        except QmpError as error:
            raise HypervisorError(f"VM '{self.vm.spec.name}': {error}") from None
        done = monitor.wait_for(
            "JOB_STATUS_CHANGE",
            since=started,
            timeout=JOB_DEADLINE,
            match=lambda e: e.data.get("id") == job_id and e.data.get("status") == "concluded",
        )
        if done is None:
            raise HypervisorError(
                f"VM '{self.vm.spec.name}': {command} '{self.snapshot}' not done after {JOB_DEADLINE:g} s"
            )
        job = next((j for j in monitor.execute("query-jobs") if j["id"] == job_id), {})
        monitor.execute("job-dismiss", {"id": job_id})
        if job.get("error"):
            raise HypervisorError(
                f"VM '{self.vm.spec.name}': {command} '{self.snapshot}' failed: {job['error']}"
            )
        log.info(
            "qemu: %s '%s' on %s took %.1f s",
            command,
            self.snapshot,
            self.vm.spec.name,
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

    def panics(self, since: float = 0.0) -> list[QmpEvent]:
        """GUEST_PANICKED events (pvpanic) received since `since` (host monotonic time)."""
        return self.vm.qmp().events(since, "GUEST_PANICKED")

    def wait_for_panic(self, *, since: float, timeout: float) -> QmpEvent | None:
        return self.vm.qmp().wait_for("GUEST_PANICKED", since=since, timeout=timeout)

    def keep_console(self, destination: Path) -> str:
        """Append the console output not yet kept to `destination` (the run's console log); returns it."""
        try:
            with self.vm.spec.console_log.open("rb") as console:
                console.seek(self._console_kept)
                chunk = console.read()
        except FileNotFoundError:
            return ""
        self._console_kept += len(chunk)
        destination.parent.mkdir(parents=True, exist_ok=True)
        with destination.open("ab") as kept:
            kept.write(chunk)
        return chunk.decode("utf-8", "replace")

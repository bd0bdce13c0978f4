"""The hypervisor as a witness of crashes: what it saw of the guest, beside what the guest says.

The Windows target notices a bugcheck through the guest itself: a command lost with its connection,
then an answer from a later boot (guest.BootIdentity). A hypervisor that watches the VM can add two
things the guest cannot give once it is down: the panic as the hypervisor heard it, with the host
time it arrived, and the serial console around it. A hypervisor offers this optionally, beside the
`Hypervisor` protocol (hypervisor.py):
- QEMU (qemu_hypervisor.py): pvpanic's GUEST_PANICKED and GUEST_CRASHLOADED events on QMP, and the
  console file QEMU appends to;
- libvirt through libvirt-python (libvirt_api.py): VIR_DOMAIN_EVENT_CRASHED (detail PANICKED or
  CRASHLOADED), and the file a `<serial type='file'>` of the domain writes, on this host only;
- Hyper-V, libvirt through virsh over SSH, no hypervisor: no witness; the machine works unchanged.

A Windows guest and pvpanic: virtio-win's pvpanic driver (pvpanic.sys for ACPI\\QEMU0001, in the
virtio-win guest drivers) writes PVPANIC_CRASHLOADED from a KbCallbackDumpIo bugcheck-reason callback,
just before the crash dump is written, and PVPANIC_PANICKED from its bugcheck callback only when no
dump is being written (kvm-guest-drivers-windows, pvpanic/pvpanic/bugcheck.c). QEMU reports the first
as GUEST_CRASHLOADED, the second as GUEST_PANICKED (softmmu/runstate.c). A Windows VM that writes
crash dumps, as the harness needs, therefore reports GUEST_CRASHLOADED: both count as a panic here.
A Linux guest without kdump reports GUEST_PANICKED.

The boot identity stays the primary signal. QMP sends events only to clients connected when they
happen, libvirt to connections registered then: a witness that connected late has missed the event,
and a guest without the pvpanic driver never sends one. `CrashWatch` below is the machine's side:
it asks the witness, says which of the two saw what, and never fails a run because the witness could
not answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from harness.target.base import TargetError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GuestPanic:
    """One panic as the hypervisor reported it: when the host received it, and what it said."""

    received: float
    """Host monotonic time (time.monotonic()) the report arrived."""
    event: str
    """The hypervisor's own name for it: GUEST_PANICKED, GUEST_CRASHLOADED, VIR_DOMAIN_EVENT_CRASHED."""
    details: Mapping[str, Any] = field(default_factory=dict)
    """What came with it, in the hypervisor's terms (QEMU's action and panic information, libvirt's
    detail)."""
    reporter: str = "the hypervisor"

    def describe(self) -> str:
        shown = ", ".join(f"{key} {value}" for key, value in self.details.items())
        return f"{self.reporter} reported {self.event}" + (f" ({shown})" if shown else "")


@runtime_checkable
class CrashWitness(Protocol):
    """What a hypervisor that watches the VM can tell about crashes, beside `Hypervisor`."""

    def panics(self, since: float) -> list[GuestPanic]:
        """Panics reported at or after `since` (host monotonic time), oldest first."""

    def keep_console(self, destination: Path) -> str:
        """Append the serial console output not kept yet to `destination`; return that output."""


def witness_of(hypervisor: object) -> CrashWitness | None:
    """The hypervisor itself when it is a crash witness, else None."""
    return hypervisor if isinstance(hypervisor, CrashWitness) else None


class ConsoleFile:
    """A console file another process appends to (QEMU's `-chardev file`), copied on in pieces.

    Copying starts where the file stood when this object was made: QEMU appends to the file across
    restarts (`append=on`), so what was there before belongs to earlier runs and stays in the file.
    A file that shrank was rewritten (a QEMU started without append): copying starts again at 0."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._kept = self._size()

    def _size(self) -> int:
        try:
            return self.path.stat().st_size if self.path is not None else 0
        except OSError:
            return 0

    def keep(self, destination: Path) -> str:
        if self.path is None:
            return ""
        try:
            with self.path.open("rb") as console:
                if console.seek(0, 2) < self._kept:
                    self._kept = 0
                console.seek(self._kept)
                chunk = console.read()
        except FileNotFoundError:
            return ""
        self._kept += len(chunk)
        destination.parent.mkdir(parents=True, exist_ok=True)
        with destination.open("ab") as kept:
            kept.write(chunk)
        return chunk.decode("utf-8", "replace")


class CrashWatch:
    """The Windows machine's use of its hypervisor's witness (harness/target/windows/machine.py).

    `hypervisor` is read at each call: a caller may replace the machine's hypervisor after it is
    built. Panics are asked for since the boot was last confirmed (`boot_confirmed`), not since the
    operation started: a bugcheck during a Wait step is only noticed by the next command.
    """

    def __init__(
        self,
        name: str,
        hypervisor: Callable[[], object],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._hypervisor = hypervisor
        self._clock = clock
        self._since = clock()
        self._complained: set[str] = set()

    @property
    def witness(self) -> CrashWitness | None:
        return witness_of(self._hypervisor())

    def now(self) -> float:
        """The witness's clock (host monotonic): operation start times are taken with it."""
        return self._clock()

    def boot_confirmed(self) -> None:
        """The machine answered from the boot the harness now trusts: panics before it are old."""
        self._since = self._clock()

    def keep_console(self, output_dir: Path, console_name: str) -> None:
        """Keep the console so far into the scenario's folder; a failure is logged, never raised:
        losing the console must not lose the run."""
        witness = self.witness
        if witness is None:
            return
        try:
            witness.keep_console(output_dir / console_name)
        except (OSError, TargetError) as error:
            self._warn_once("console", f"{self.name}: the serial console could not be kept: {error}")

    def panics(self) -> list[GuestPanic] | None:
        """Panics since the boot was confirmed; None without a witness (or when it cannot answer)."""
        witness = self.witness
        if witness is None:
            return None
        try:
            return witness.panics(self._since)
        except TargetError as error:
            self._warn_once(
                "panics", f"{self.name}: the hypervisor could not say whether it saw a panic: {error}"
            )
            return None

    def log_crash(self, booted: str | None, panics: list[GuestPanic] | None, started: float) -> None:
        """Which of the two saw the crash, in the log: the boot identity (`booted`: old -> new boot,
        None when no new boot came) and the hypervisor, with the host time of its report against
        the operation's start (`started`, on `now()`'s clock)."""
        if booted is not None:
            only = "" if panics else " only" if panics is not None else ""
            silent = ": the hypervisor reported no panic" if panics == [] else ""
            log.warning("%s: crash seen by the boot identity%s (%s)%s", self.name, only, booted, silent)
        for panic in panics or []:
            log.warning(
                "%s: crash seen by the hypervisor: %s, %.1f s after the operation started%s",
                self.name,
                panic.describe(),
                panic.received - started,
                "" if booted is not None else "; the machine has not come back on a new boot",
            )

    def _warn_once(self, what: str, message: str) -> None:
        if what not in self._complained:
            self._complained.add(what)
            log.warning("%s", message)


def crash_note(panics: list[GuestPanic] | None) -> str:
    """What the witness adds to a crash the boot identity found (Crash.reason, the run log).

    Deterministic text (no times): a resumed run's record must equal an uninterrupted one's."""
    if panics is None:
        return ""
    if not panics:
        return (
            "; the hypervisor reported no panic (the new boot alone shows the crash: no pvpanic driver"
            " in the guest, or the hypervisor connected after the event)"
        )
    more = f" and {len(panics) - 1} more" if len(panics) > 1 else ""
    return f"; the hypervisor saw the panic too: {panics[0].describe()}{more}"


def not_back_note(panics: list[GuestPanic] | None) -> str:
    """What the witness adds when the machine did not answer from a new boot after a lost command."""
    if not panics:
        return ""
    return (
        f"; yet the hypervisor saw a panic ({panics[0].describe()}): the machine crashed and has not"
        " come back from it"
    )


def no_dump_note(panics: list[GuestPanic] | None) -> str:
    """What the witness adds when the machine came back on a new boot without a crash dump."""
    if panics is None:
        return ""
    if panics:
        return f"; the hypervisor saw a panic ({panics[0].describe()})"
    return "; the hypervisor reported no panic either (a reboot, not a crash?)"

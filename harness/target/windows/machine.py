"""The real Windows VM as a Target: the same operations as the simulator, carried out by the test
driver through lkdctl.exe, with crashes detected by reboot and the dumps pulled back hash-verified.

Each operation becomes one IOCTL: the harness packs the bytes (protocol.py, lkdctl.py), the `run-lkdctl`
PowerShell template runs lkdctl.exe with the bytes as data, and the reply's DMF status is the step's
status. A command that dies with the connection may mean the machine bugchecked: the boot identity
decides (guest.BootIdentity, never the wall clock). If the machine answers from another boot, the new
crash dump is pulled, its header gives the bugcheck, and the operation's result carries a Crash; if
it answers from the same boot, the transport failed and that is a TargetError at once.

A hypervisor that is a crash witness (crash_witness.py: QEMU, libvirt-python) is asked too: whether it
saw a panic (its report goes into the Crash's reason, so into run.log and the run record), and for
the serial console, kept in the scenario's folder (console.log) after a lost command, a reboot, at
each collect_dumps and at close, so it is there even when the scenario fails. The boot identity stays
the primary signal; a panic reported while the machine still answers from the old boot means it has
not come back yet, so the wait for the new boot then tolerates old-boot answers until its deadline.

Before anything touches the VM the package is checked (package_check.py: INF, PE machine and KMDF
import, signatures, catalog coverage, version stamp); the run record names the version and SHA-256
of the build that was tested.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path, PureWindowsPath
from typing import Any

from harness.dump import DumpFormatError, open_dump
from harness.target.base import OperationTimeout, Target, TargetError
from harness.target.lkd_ioctl import IOCTL_LIVEKERNELDUMP_CREATE
from harness.target.machine_settings import MachineSettings
from harness.target.ops import (
    CONSOLE_LOG,
    Alloc,
    BufferRef,
    CollectedDump,
    Crash,
    Create,
    DriverInfo,
    Free,
    IoctlCreate,
    Op,
    OpResult,
    QueryDmfDataSize,
    Reboot,
    Remove,
    SecondaryData,
    Store,
    StoreCollection,
    UserBuffer,
    Wait,
    buffer_not_found,
)
from harness.target.status import STATUS_NOT_FOUND, STATUS_OBJECT_NAME_NOT_FOUND, STATUS_SUCCESS
from harness.target.windows import lkdctl, module_config, protocol
from harness.target.windows.config import TargetConfig
from harness.target.windows.crash_witness import CrashWatch, crash_note, no_dump_note, not_back_note
from harness.target.windows.driver_build import DriverBuild, declared_build, reported_build
from harness.target.windows.guest import NO_BOOT, BootIdentity, Guest
from harness.target.windows.hypervisor import Hypervisor, SessionOpener, hypervisor_from_config
from harness.target.windows.machine_setup import MachineSetup, cannot_apply
from harness.target.windows.package_check import PackageFacts, check_package
from harness.target.windows.powershell import ScriptError
from harness.target.windows.provision import lkdctl_guest_path, provision, restart
from harness.target.windows.session import CommandTimeout, SessionError

log = logging.getLogger(__name__)

LKDCTL_SECONDS = 60.0
"""Deadline of one IOCTL round trip; a hang past it is treated like a lost connection."""
ARCHITECTURES = {"AMD64": "amd64", "ARM64": "arm64"}
"""host-info's os_architecture (PROCESSOR_ARCHITECTURE) → the INF decoration / PE machine name."""

DumpKey = tuple[str, int, int]
"""A dump as the collector knows it: path, size and last write time. MEMORY.DMP and a minidump
name reused after a revert are overwritten in place, so the path alone would miss the new dump."""


class WindowsMachine(Target):
    """A real Windows VM with the test driver, reached over WinRM (and SFTP)."""

    name = "vm"

    def __init__(
        self,
        output_dir: Path,
        config: TargetConfig,
        sessions: SessionOpener,
        *,
        guest: Guest | None = None,
        hypervisor: Hypervisor | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(output_dir)
        self.config = config
        self.guest = guest or Guest(config, sessions, sleep=sleep, clock=clock)
        self.hypervisor = hypervisor or hypervisor_from_config(config.hypervisor, sessions)
        self._sleep, self._clock, self._wall_clock = sleep, clock, wall_clock
        self._slots: dict[str, int] = {}
        self._addresses: dict[str, int] = {}
        self._pending: list[CollectedDump] = []
        self._next_slot = 1
        self._known_dumps: set[DumpKey] = set()
        self._pulled: set[Path] = set()
        self.collected_before: set[tuple[str, str]] = set()
        """(remote name, SHA-256) of dumps a resumed run's journal says were collected before the
        kill (harness/report/journal.py): seen again on the guest, they are not pulled twice."""
        self.kept_copies: dict[Path, str] = {}
        """Absolute local path -> SHA-256 of the copies that journal says were pulled before the kill.
        The scenario the kill cut off runs again from the revert and may write the very same dump
        (same guest name, same SHA-256) to the very path its first run pulled it to: that kept
        copy is then the dump (its bytes hashed here), so it is neither pulled twice nor
        overwritten; a different dump of that name goes beside it (`_free_name`)."""
        self._last_create: float | None = None
        self._boot: BootIdentity | None = None
        self._prepared = False
        self._declared: DriverBuild | None = None
        self._declared_read = False
        self.package: PackageFacts | None = None
        self._deadline: float | None = None  # the running step's timeout, for the lkdctl call
        self._settings = MachineSettings()  # the scenario's `machine:`, applied at prepare()
        self._setup = MachineSetup(self.guest, config)
        self.watch = CrashWatch(config.name, lambda: self.hypervisor)
        """The hypervisor as a crash witness, when it is one (crash_witness.py)."""

    # -- Target -------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Check the declared DMF build against the package's stamp and the package itself (once,
        before the VM is touched), revert to the checkpoint (or, without a hypervisor, reboot after
        the first scenario so no driver state carries over), make sure the package's build runs,
        and note the dumps already there."""
        self._read_declared_build()
        if self.package is None:
            self.package = self._preflight()
        if self.config.hypervisor.kind != "none":
            self.hypervisor.revert()
            self.guest.close()
            self._boot = self.guest.wait_for_new_boot(NO_BOOT)
            self._setup.forget_written()  # the checkpoint holds its own parameters again
        elif self._prepared:
            self._boot = restart(self.guest)
        report = provision(self.guest, self.config, self.package)
        for action in report.actions + self._setup.apply(self._settings):
            log.info("%s: %s", self.config.name, action)
        self._check_settings_took()
        self._boot = self.guest.boot_identity()
        self.watch.boot_confirmed()
        self._forget_boot()
        self._known_dumps = {_dump_key(dump) for dump in self._list_dumps()}
        self._prepared = True
        self._honour_report_spacing()  # last: the revert, boot and provisioning count towards it

    def health_check(self) -> str:
        """The VM answers (host-info, read-only) and so does its hypervisor (`check`, read-only)."""
        info = self.guest.script("host-info", {})
        found = f"{self.config.name}: {info.get('computer_name')} answers as {info.get('user')}"
        if self.config.hypervisor.kind != "none":
            found += f"; {self.hypervisor.check()}"
        return found

    def configure(self, settings: MachineSettings) -> str | None:
        """A scenario's `machine:`, applied at the next prepare() (machine_setup.py): module settings
        as the driver's registry parameters and a device restart, Verifier with a reboot; each call
        replaces the last, so settings a scenario leaves out go back to what the VM had."""
        reason = cannot_apply(settings, self.package.os_build_floor if self.package else None)
        if reason is None:
            self._settings = settings
        return reason

    def _check_settings_took(self) -> None:
        """The driver's INFO, not the harness's writes, decides whether the settings are in force."""
        if self._settings.is_empty():
            return
        info = self._control(protocol.pack_info(), info=True)
        problems = module_config.unmet(self._settings, info)
        if self._settings.verifier is not None and info.verifier != self._settings.verifier:
            running = "runs" if info.verifier else "does not run"
            problems.append(f"verifier={self._settings.verifier}: the driver {running} under Driver Verifier")
        if problems:
            raise module_config.ModuleConfigNotTaken(self.config.name, problems)

    def _preflight(self) -> PackageFacts:
        """The package checked against the VM's architecture, asked read-only before any change."""
        reported = str(self.guest.script("host-info", {}).get("os_architecture") or "").upper()
        if reported not in ARCHITECTURES:
            raise TargetError(f"{self.config.name}: unsupported machine architecture {reported or '(none)'}")
        facts = check_package(
            self.config.driver.package,
            architecture=ARCHITECTURES[reported],
            trusted=self.config.driver.certificate,
        )
        log.info(
            "%s: package %s, driver %s (SHA-256 %s), DMF %s",
            self.config.name,
            self.config.driver.package,
            facts.driver_version,
            facts.sys_sha256,
            facts.dmf_commit,
        )
        return facts

    def execute(self, op: Op, *, timeout: float | None = None) -> OpResult:
        """Run one operation. A step's `timeout` bounds it: a wait sleeps at most that long, a
        reboot waits that long for the new boot, and an IOCTL's remote command gets it as its
        deadline. A command cut at the deadline while the machine still answers on the same boot
        hangs (OperationTimeout); one during which the machine rebooted crashed it."""
        match op:
            case Wait(seconds):
                if timeout is not None and seconds > timeout:
                    self._sleep(timeout)
                    raise OperationTimeout(timeout, f"a wait of {seconds:g} s")
                self._sleep(seconds)
                return OpResult(STATUS_SUCCESS)
            case Reboot():
                self._boot = self._restart(timeout)
                self.watch.boot_confirmed()
                self.watch.keep_console(self.output_dir, CONSOLE_LOG)
                self._forget_boot()
                return OpResult(STATUS_SUCCESS)
        self._deadline = timeout
        started = self.watch.now()
        try:
            return self._driver_op(op)
        except ScriptError:
            raise  # the machine answered with an error: nothing was lost, nothing to wait for
        except SessionError as error:
            if timeout is not None and isinstance(error, CommandTimeout) and self._still_on_this_boot():
                detail = f"the machine still answers on the same boot, so the call hangs ({error})"
                raise OperationTimeout(timeout, detail) from error
            return self._after_lost_command(error, started)
        finally:
            self._deadline = None

    def _still_on_this_boot(self) -> bool:
        """The machine answers from the boot the step started on (BootIdentity, not the clock)."""
        if self._boot is None:
            return False
        try:
            return not self.guest.boot_identity().is_later_boot_than(self._boot)
        except SessionError:
            return False  # down: a crash in progress, which _after_lost_command waits out

    def _restart(self, timeout: float | None) -> BootIdentity:
        if timeout is None:
            return restart(self.guest)
        before = self.guest.boot_identity()
        self.guest.script("restart-computer", {"delay_seconds": 2})
        try:
            return self.guest.wait_for_new_boot(before, timeout=timeout)
        except SessionError as error:
            raise OperationTimeout(timeout, f"the reboot had not completed ({error.detail})") from error

    def collect_dumps(self) -> list[CollectedDump]:
        """Pull every dump written since the last call; each copy is proven by the guest's SHA-256.
        Nothing on the guest is deleted: the known-set keeps a dump from being collected twice.
        The console so far is kept first: the runner calls this even when the scenario failed."""
        self.watch.keep_console(self.output_dir, CONSOLE_LOG)
        collected, self._pending = self._pending, []
        try:
            listed = self._list_dumps()
        except SessionError as error:  # down after the last command: the witness may know why
            note = not_back_note(self.watch.panics())
            if note:
                raise TargetError(f"the dumps could not be listed ({error}){note}") from error
            raise
        fresh = [d for d in listed if _dump_key(d) not in self._known_dumps]
        if not fresh:
            return collected
        hashes = self.guest.file_hashes([d["path"] for d in fresh])
        for dump in fresh:
            sha256 = hashes[dump["path"]]["sha256"]
            relative = PureWindowsPath(dump["relative_name"])
            local = self._free_name(self.output_dir / "dumps" / Path(*relative.parts), sha256)
            if _kept_copy_matches(self.kept_copies, local, sha256):
                log.info("%s: %s was pulled before the resume to %s: kept", self.config.name, relative, local)
            elif (relative.as_posix(), sha256) in self.collected_before:
                log.info(
                    "%s: %s was collected before the resume (SHA-256 %s)", self.config.name, relative, sha256
                )
                self._known_dumps.add(_dump_key(dump))
                continue
            else:
                self.guest.download(dump["path"], local, size=int(dump["size"]), sha256=sha256)
            self._known_dumps.add(_dump_key(dump))
            self._pulled.add(local)
            collected.append(CollectedDump(local, dump["kind"], sha256, str(relative.as_posix())))
        return collected

    def _free_name(self, local: Path, sha256: str) -> Path:
        """Where a pulled dump goes: MEMORY.DMP is overwritten by every bugcheck on the guest
        (windows-driver-docs, debugger/kernel-memory-dump.md), so a second pull of the same name in
        this run goes beside the first (`MEMORY-2.DMP`, ...) and the earlier kernel dump is kept;
        so does a dump other than the copy kept there from before a resume."""
        chosen, copy = local, 1
        while chosen in self._pulled or self.kept_copies.get(chosen.absolute(), sha256) != sha256:
            copy += 1
            chosen = local.with_name(f"{local.stem}-{copy}{local.suffix}")
        return chosen

    def driver_info(self) -> DriverInfo:
        reply = self._control(protocol.pack_info(), info=True)
        assert isinstance(reply, protocol.InfoReply)
        features = {"test-driver", "admin", "live-dump", "ioctl"}
        if reply.verifier:
            features.add("verifier")
        if self.config.non_admin_user is not None:
            features.add("non-admin-user")
        build = self._read_declared_build() or reported_build(reply.dmf_commit)
        build.check_reported(reply.dmf_commit)
        return DriverInfo(
            collection_handle=reply.dmf_collection,
            report_type=reply.report_type,
            secondary_data_guid=reply.secondary_data_guid,
            known_defects=build.defects,
            features=frozenset(features),
            facts={
                "machine": self.config.name,
                "driver_version": ".".join(str(part) for part in reply.driver_version),
                "dmf_commit": reply.dmf_commit,
                "dmf_build": build.label,
                "dmf_build_source": build.source,
                "driver_sha256": self.package.sys_sha256 if self.package else "",
                "package_version": self.package.driver_version if self.package else "",
                "verifier": "on" if reply.verifier else "off",
            },
        )

    def _read_declared_build(self) -> DriverBuild | None:
        """What the config and the package stamp declare (read once; DriverBuildError if they disagree)."""
        if not self._declared_read:
            self._declared = declared_build(self.config.driver)
            self._declared_read = True
        return self._declared

    def close(self) -> None:
        """Put back the parameters and Verifier state lkdh changed, keep the last of the console,
        then disconnect from the guest and the hypervisor."""
        try:
            for action in self._setup.restore():
                log.info("%s: restored: %s", self.config.name, action)
        except (SessionError, TargetError) as error:
            log.warning("%s: could not restore the VM's own machine settings: %s", self.config.name, error)
        finally:
            try:
                self.watch.keep_console(self.output_dir, CONSOLE_LOG)
                self.guest.close()
            finally:
                self.hypervisor.close()

    # -- operations ---------------------------------------------------------------------------
    def _driver_op(self, op: Op) -> OpResult:
        match op:
            case Alloc(name, size, pattern, pool):
                slot = self._slots.setdefault(name, self._take_slot())
                reply = self._reply(protocol.pack_alloc(slot, size, pattern, pool))
                self._addresses[name] = reply.value
                return OpResult(reply.dmf_status, address=reply.value)
            case Free(name):
                if name not in self._slots:
                    return OpResult(STATUS_NOT_FOUND, detail=f"no buffer named {name!r} on this boot")
                self._addresses.pop(name, None)  # a freed name is unknown to every op, IOCTLs too
                reply = self._reply(protocol.pack_free(self._slots.pop(name)))
                return OpResult(reply.dmf_status)
            case Store(buffer, length, offset, irql) | Remove(buffer, length, offset, irql):
                piece = self._slice(buffer, length, offset)
                if piece is None:
                    return buffer_not_found(buffer)
                pack = protocol.pack_store if isinstance(op, Store) else protocol.pack_remove
                return OpResult(self._reply(pack(piece, irql)).dmf_status)
            case StoreCollection(value, irql):
                return OpResult(self._reply(protocol.pack_store_collection(value, irql)).dmf_status)
            case QueryDmfDataSize():
                reply = self._reply(protocol.pack_query_dmf_data_size())
                return OpResult(reply.dmf_status, value=reply.value)
            case Create():
                return self._create(op)
            case IoctlCreate():
                return self._ioctl_create(op)
        raise TypeError(f"the Windows target does not know operation {op!r}")

    def _create(self, op: Create) -> OpResult:
        structures = []
        for structure in op.client_structures:
            piece = self._slice(structure.buffer, structure.length, structure.offset)
            if piece is None:
                return buffer_not_found(structure.buffer)
            structures.append(piece)
        secondary = None
        if op.secondary_data is not None:
            secondary = self._slice(
                op.secondary_data.buffer, op.secondary_data.length, op.secondary_data.offset
            )
            if secondary is None:
                return buffer_not_found(op.secondary_data.buffer)
        request = protocol.pack_create(
            op.bugcheck_code, op.parameter, op.exclude_dmf_data, tuple(structures), secondary, op.irql
        )
        status = self._reply(request).dmf_status
        self._last_create = self._clock()
        if status != STATUS_SUCCESS:
            self._log_live_dump_events()
        return OpResult(status)

    def _log_live_dump_events(self) -> None:
        """A failed Create: what the kernel's LiveDump log says about it goes into the run log."""
        since = int(self._wall_clock()) - 120
        answer = self.guest.script("live-dump-events", {"since_unix": since, "max_events": 20})
        events = answer.get("events") or []
        log.warning(
            "%s: Create failed (no dump in LiveKernelReports\\%s); %s has %d event(s) since then%s",
            self.config.name,
            self.config.live_dumps.folder_name,
            answer.get("log"),
            len(events),
            f" ({answer.get('note')})" if answer.get("note") else "",
        )
        for event in events:
            log.warning(
                "  %s id %s %s: %s",
                event.get("time_utc"),
                event.get("id"),
                event.get("level"),
                event.get("message"),
            )

    def _ioctl_create(self, op: IoctlCreate) -> OpResult:
        """The module's own IOCTL, sent by lkdctl as an application would (F23-F27)."""
        if op.raw is not None:
            data: bytes | lkdctl.UserMemoryInput = op.raw
        else:
            structures = []
            for structure in op.client_structures:
                address = self._address_of(structure.buffer, structure.offset)
                if address is None:
                    return buffer_not_found(structure.buffer)
                structures.append((address, structure.length))
            secondary: bytes | tuple[int, int] | None = None
            match op.secondary_data:
                case UserBuffer(bytes_):
                    secondary = bytes_
                case SecondaryData(buffer, length, offset):
                    address = self._address_of(buffer, offset)
                    if address is None:
                        return buffer_not_found(buffer)
                    secondary = (address, length)
            data = _with_overrides(
                lkdctl.livekerneldump_create_in_user_memory(
                    op.bugcheck_code, op.parameter, op.exclude_dmf_data, structures, secondary
                ),
                op,
            )
        call = lkdctl.lkdctl_call(
            lkdctl_guest_path(self.config),
            IOCTL_LIVEKERNELDUMP_CREATE,
            data,
            guid=protocol.CONTROL_INTERFACE_GUID
            if op.device == "control-interface"
            else protocol.MODULE_INTERFACE_GUID,  # F37: the module's IOCTL is served on either
            read_only=not op.write_access,
        )
        try:
            reply = self._run_lkdctl(call, as_user=not op.elevated)
        except lkdctl.LkdctlError as error:
            if error.kind != "no_device_interface":
                raise
            # GuidDeviceInterface all zeros (F23): the module registered no interface, so an
            # application cannot open one; the simulator answers the same status.
            return OpResult(STATUS_OBJECT_NAME_NOT_FOUND, detail=f"no device interface to open ({error})")
        self._last_create = self._clock()
        return OpResult(reply.ntstatus)

    # -- lkdctl ---------------------------------------------------------------------------------
    def _reply(self, request: protocol.ControlRequest) -> protocol.ControlReply:
        reply = self._control(request)
        assert isinstance(reply, protocol.ControlReply)
        return reply

    def _control(self, request: protocol.ControlRequest, *, info: bool = False) -> Any:
        call = lkdctl.control_call(lkdctl_guest_path(self.config), request)
        reply = self._run_lkdctl(call)
        if info:
            return protocol.info_reply(reply)
        return protocol.control_reply(request.operation, reply)

    def _run_lkdctl(self, call: lkdctl.LkdctlCall, *, as_user: bool = False) -> lkdctl.LkdctlReply:
        arguments = _without_stdin_input(call.argv[1:])
        params: dict[str, Any] = {
            "exe_path": call.argv[0],
            "arguments": arguments,
            "input_base64": base64.b64encode(call.stdin).decode(),
            "timeout_seconds": math.ceil(self._deadline or LKDCTL_SECONDS),
        }
        if as_user:
            user = self.config.non_admin_user
            if user is None:
                raise TargetError("a standard-user IOCTL needs `non_admin_user` in the target config")
            params["run_as_user"] = user.username
            params["password"] = user.password.resolve().get_secret_value()
        deadline = LKDCTL_SECONDS + 30 if self._deadline is None else self._deadline  # a step's is exact
        result = self.guest.script("run-lkdctl", params, timeout=deadline)
        return lkdctl.parse_lkdctl_output(result["stdout"], result["exit_code"])

    # -- crashes, reboots, dumps ------------------------------------------------------------------
    def _after_lost_command(self, error: SessionError, started: float) -> OpResult:
        """The command died with its connection: a bugcheck if the machine rebooted, else a TargetError.
        The witness's panics (if it is one) are reported beside what the boot identity says."""
        if self._boot is None:
            raise error
        before = self._boot
        known = self.watch.panics()
        # A panic already reported: an answer from the old boot cannot mean "no crash" (it has not
        # gone down yet, or a stale answer): wait for the new boot to the deadline.
        grace = self.config.timeouts.boot if known else 0.0
        try:
            self._boot = self.guest.wait_for_new_boot(self._boot, same_boot_grace=grace)
        except SessionError as waited:  # its detail says whether it was down or up on the old boot
            self.watch.keep_console(self.output_dir, CONSOLE_LOG)
            panics = self.watch.panics()
            self.watch.log_crash(None, panics, started)
            lost = f"the connection was lost during an operation ({error})"
            raise TargetError(f"{lost}: {waited.detail}{not_back_note(panics)}") from error
        panics = self.watch.panics()
        self.watch.boot_confirmed()
        self.watch.keep_console(self.output_dir, CONSOLE_LOG)
        self.watch.log_crash(f"{before.describe()} -> {self._boot.describe()}", panics, started)
        self._forget_boot()
        collected = self.collect_dumps()
        crash_dumps = [d for d in collected if d.kind == "crash"]
        if not crash_dumps:
            raise TargetError(
                "the machine rebooted during an operation but wrote no crash dump "
                f"(check CrashControl): {error}{no_dump_note(panics)}"
            )
        newest = crash_dumps[-1]
        try:
            with open_dump(newest.path) as dump:
                header = dump.header
                code = header.bugcheck_code or 0
                p1, p2, p3, p4 = header.bugcheck_parameters
        except DumpFormatError as bad:
            raise TargetError(f"the machine crashed but its crash dump is unreadable: {bad}") from bad
        self._pending = collected  # the runner's next collect_dumps() reports them, live ones too
        reason = f"the machine bugchecked and rebooted ({error.detail}){crash_note(panics)}"
        return OpResult(STATUS_SUCCESS, crash=Crash(code, (p1, p2, p3, p4), reason, newest.path))

    def _list_dumps(self) -> list[dict[str, Any]]:
        return list(self.guest.script("list-dumps", {})["dumps"])

    def _forget_boot(self) -> None:
        self._slots.clear()
        self._addresses.clear()
        self._next_slot = 1

    def _honour_report_spacing(self) -> None:
        """F06: one live report per minute per machine. Scenarios that test the rule create twice in
        a row on purpose, so spacing is enforced only between scenarios, here. The minute counts
        from the last Create and runs while the machine is reverted, booted and provisioned: only
        what is left of it once the machine is ready is waited, at the end of prepare()."""
        if self._last_create is None:
            return
        wait = self.config.live_dumps.minimum_spacing_seconds - (self._clock() - self._last_create)
        if wait > 0:
            log.info(
                "%s: waiting %.0f s before the next scenario (one live dump per minute)",
                self.config.name,
                wait,
            )
            self._sleep(wait)

    # -- buffers --------------------------------------------------------------------------------
    def _take_slot(self) -> int:
        slot, self._next_slot = self._next_slot, self._next_slot + 1
        return slot

    def _slice(self, buffer: BufferRef, length: int, offset: int) -> protocol.BufferSlice | None:
        if isinstance(buffer, int):
            return protocol.BufferSlice.at_address(buffer, length, offset)
        slot = self._slots.get(buffer)
        return None if slot is None else protocol.BufferSlice.in_slot(slot, length, offset)

    def _address_of(self, buffer: BufferRef, offset: int) -> int | None:
        """A named buffer's kernel address (for IOCTL inputs that pass kernel pointers, F27)."""
        if isinstance(buffer, int):
            return buffer + offset
        address = self._addresses.get(buffer)
        return None if address is None else address + offset


def _kept_copy_matches(kept: dict[Path, str], local: Path, sha256: str) -> bool:
    """`local` is a copy a resumed run's journal kept, and its bytes still hash to `sha256`."""
    if kept.get(local.absolute()) != sha256 or not local.is_file():
        return False
    with local.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest() == sha256


def _dump_key(dump: dict[str, Any]) -> DumpKey:
    return (str(dump["path"]).lower(), int(dump["size"]), int(dump["last_write_unix"]))


def _without_stdin_input(arguments: tuple[str, ...]) -> list[str]:
    """lkdctl's argv minus `--in-file -`: run-lkdctl writes the input to a file and names it."""
    out: list[str] = []
    skip = False
    for index, argument in enumerate(arguments):
        if skip:
            skip = False
            continue
        if argument == "--in-file" and index + 1 < len(arguments) and arguments[index + 1] == "-":
            skip = True
            continue
        out.append(argument)
    return out


def _with_overrides(user: lkdctl.UserMemoryInput, op: IoctlCreate) -> lkdctl.UserMemoryInput:
    """Apply the op's overrides to the packed input; an overridden pointer is no longer patched."""
    layout = protocol.LIVEKERNELDUMP_CREATE_INPUT
    values = layout.unpack(user.input)
    pointers = list(user.pointers)
    overrides = {
        "NumberOfClientStructures": op.client_structure_count_override,
        "ArrayOfClientStructures": op.client_structure_array_override,
        "SizeOfSecondaryData": op.secondary_size_override,
        "SecondaryDataBuffer": op.secondary_address_override,
    }
    for field_name, value in overrides.items():
        if value is None:
            continue
        values[field_name] = value
        offset = layout.offset(field_name)
        pointers = [p for p in pointers if p.input_offset != offset]
    return lkdctl.UserMemoryInput(layout.pack(values), user.user_data, tuple(pointers))

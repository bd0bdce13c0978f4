"""The simulated Windows machine: the embedded default target (DESIGN.md, "The simulated machine").

It owns a virtual clock, the kernel memory of the current boot, the test driver with its
DMF_LiveKernelDump module, and a folder standing for the machine's disk, where live dumps land in
`Windows/LiveKernelReports/<ReportType>/` and crash dumps in `Windows/Minidump/`. A bugcheck writes
a crash dump and reboots: the driver's state and stored buffers are gone and allocations move.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.target.base import OperationTimeout, Target, TargetError
from harness.target.lkd_ioctl import LiveKernelDumpCreateInput, pack_client_structures
from harness.target.machine_settings import MachineSettings
from harness.target.ops import (
    Alloc,
    BufferRef,
    ClientStructure,
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
from harness.target.sim.driver_image import KI_BUGCHECK_CONTEXT_RIP, TEST_DRIVER
from harness.target.sim.framework import build_framework_data
from harness.target.sim.ioctl import IoctlCaller, LiveKernelDumpIoctlHandler
from harness.target.sim.kernel_dump import CRASH_DUMP_KINDS, LIVE_DUMP_KINDS, MEMORY_DUMP_NAME
from harness.target.sim.livekerneldump import (
    ZERO_GUID,
    Bugcheck,
    LiveKernelDumpModule,
    ModuleConfig,
)
from harness.target.sim.lkmdtel import LiveDumpService
from harness.target.sim.memory import USER_MODE, KernelMemory
from harness.target.sim.module_tree import WINDOWS_10_RS3_BUILD, lkdh_driver_modules
from harness.target.sim.profiles import DEFAULT_PROFILE, SimProfile, profile_named
from harness.target.sim.verifier import DriverVerifier
from harness.target.status import (
    STATUS_INVALID_DEVICE_STATE,
    STATUS_NOT_FOUND,
    STATUS_OBJECT_NAME_NOT_FOUND,
    STATUS_SUCCESS,
)

BOOT_SECONDS = 45.0
"""Virtual time a reboot takes."""

OP_SECONDS = 0.002
"""Virtual time every operation takes, so events have distinct, ordered times."""

EPOCH = 1_767_225_600.0
"""The virtual clock starts at 2026-01-01T00:00:00Z."""

CONTROL_IOCTL_OPS = (Store, Remove, StoreCollection, Create, QueryDmfDataSize)
"""Operations the test driver runs inside one control IOCTL (Control.c): a system call each."""


@dataclass(frozen=True)
class SimSettings:
    """How the simulated machine is set up (the sim part of a target config)."""

    profile: str = DEFAULT_PROFILE
    verifier: bool = True
    seed: int = 1
    wer_allows_dumps: bool = True
    """F09: WER policy can refuse live dumps (LkmdTelCreateReport returns NULL)."""
    module: ModuleConfig = field(default_factory=ModuleConfig)
    second_crash_dump_module: bool = False
    """F22: another DMF_CrashDump instance in the driver; with IncludeDmfDataInBugCheckTriageDump
    the module's own child is the second, fails to open, and the driver does not start."""
    device_instances: int = 1
    """F41: how many devices the driver serves; DMF_CrashDump's singleton is a global of the image,
    so with the CrashDump child a second device's DeviceAdd fails."""
    checked_dmf: bool = False
    """F43: the driver is built against a debug (checked) DMF, whose DmfAssert is live."""
    live_kernel_dump_feature: bool = True
    """F42: False = the driver never calls DMF_DmfDeviceInitSetLiveKernelDumpConfig, so the feature
    module handle is NULL; the test driver then refuses every DMF operation (Control.c)."""
    crash_dump: str = "triage"
    """"kernel": a bugcheck writes %SystemRoot%\\MEMORY.DMP (a kernel memory dump) beside the
    minidump; "triage": the minidump only (kernel_dump.py)."""
    live_dump: str = "triage"
    """"kernel": a Create writes a full live dump (kernel memory, DumpType 6) instead of the triage
    report LkmdTelCreateReport writes (F01); for exercising the kernel-dump path (kernel_dump.py)."""

    def __post_init__(self) -> None:
        for name, allowed in (("crash_dump", CRASH_DUMP_KINDS), ("live_dump", LIVE_DUMP_KINDS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"SimSettings.{name} = {getattr(self, name)!r}: one of {', '.join(allowed)}")


class SimulatedMachine(Target):
    """A Windows machine with the test driver loaded, simulated in-process."""

    name = "sim"

    def __init__(self, output_dir: Path, settings: SimSettings | None = None) -> None:
        super().__init__(output_dir)
        self.base_settings = settings or SimSettings()
        self.settings = self.base_settings
        self.profile: SimProfile = profile_named(self.settings.profile)
        self.disk = output_dir / "machine"
        self.now = EPOCH
        self.boot_number = 0
        self.crashes: list[Crash] = []
        self._collected: set[tuple[Path, int]] = set()
        self._boot()

    # -- Target -------------------------------------------------------------------------------
    def prepare(self) -> None:
        """A fresh machine: clean disk, first boot, the driver started (a snapshot revert)."""
        if self.disk.exists():
            shutil.rmtree(self.disk)
        self.now, self.boot_number, self._collected = EPOCH, 0, set()
        self.crashes = []
        self._boot()

    def configure(self, settings: MachineSettings) -> str | None:
        """Apply a scenario's `machine:` through SimSettings and ModuleConfig, from the next
        `prepare()` on; settings left out keep this machine's own (its target config's)."""
        base = self.base_settings
        module = base.module
        chosen = settings.chosen()
        module_fields = {
            "report_type": "report_type",
            "guid_device_interface": "device_interface_guid",
            "guid_secondary_data": "secondary_data_guid",
            "include_dmf_data_in_bugcheck_dump": "include_dmf_data_in_bugcheck_dump",
            "target_build": "target_build",
        }
        module = replace(module, **{module_fields[k]: v for k, v in chosen.items() if k in module_fields})
        verifier = base.verifier if settings.verifier is None else settings.verifier
        self.settings = replace(base, verifier=verifier, module=module)
        return None

    def execute(self, op: Op, *, timeout: float | None = None) -> OpResult:
        """Run `op` on the virtual clock. Nothing here blocks (one thread, no contended lock: the
        module's wait lock is always free), so an operation hangs only by taking longer than its
        deadline: a `wait` or a reboot's boot time. One that would is stopped at the deadline, the
        clock moved there, and the operation not carried out."""
        duration = OP_SECONDS + _virtual_duration(op)
        if timeout is not None and duration > timeout:
            self.now += timeout
            raise OperationTimeout(
                timeout, f"the simulated {type(op).__name__} takes {duration:g} s of virtual time"
            )
        self.now += OP_SECONDS
        self.service.caller = "lkdh_app.exe" if isinstance(op, IoctlCreate) else "lkdctl.exe"
        try:
            result = self._dispatch(op)
            violation = self.verifier.system_call_exit()  # F38: checked when the IOCTL returns
            if violation is not None:
                raise Bugcheck.from_violation(violation)
            return result
        except Bugcheck as bugcheck:
            return OpResult(status=STATUS_SUCCESS, crash=self._crash(bugcheck))

    def collect_dumps(self) -> list[CollectedDump]:
        """Copy each dump written since the last call into output_dir/dumps, verified by SHA-256."""
        found = sorted(self.windows_dir.glob("LiveKernelReports/**/*.dmp")) + sorted(
            self.windows_dir.glob("Minidump/*.dmp")
        )
        memory_dump = self.windows_dir / MEMORY_DUMP_NAME
        found += [memory_dump] if memory_dump.is_file() else []
        collected = []
        for source in found:
            key = (source, len(self.crashes) if source == memory_dump else 0)  # rewritten per bugcheck
            if key in self._collected:
                continue
            copy = 1 + sum(1 for path, _ in self._collected if path == source)
            collected.append(_copy_verified(source, self.output_dir / "dumps", self.windows_dir, copy))
            self._collected.add(key)
        return collected

    def driver_info(self) -> DriverInfo:
        return DriverInfo(
            collection_handle=self.framework.collection_handle,
            report_type=self.module.report_type,
            secondary_data_guid=self.settings.module.secondary_data_guid,
            known_defects=self.profile.defects,
            features=self._features(),
            facts={
                "profile": self.profile.name,
                "verifier": "on" if self.settings.verifier else "off",
                "boot": str(self.boot_number),
            },
        )

    def _features(self) -> frozenset[str]:
        """The test driver runs ops as an elevated admin; IOCTLs can also come from a standard user
        (the simulator models the token check, F26); Verifier as configured."""
        features = {"test-driver", "admin", "non-admin-user", "live-dump", "ioctl"}
        if self.settings.verifier:
            features.add("verifier")
        return frozenset(features)

    # -- machine ------------------------------------------------------------------------------
    @property
    def windows_dir(self) -> Path:
        return self.disk / "Windows"

    def clock(self) -> float:
        return self.now

    def _boot(self) -> None:
        """Start Windows and the driver: new memory layout, framework data stored (F16, F18)."""
        self.boot_number += 1
        self.memory = KernelMemory(self.boot_number, self.settings.seed)
        self.buffers: dict[str, tuple[int, int]] = {}
        self.service = LiveDumpService(
            self.windows_dir,
            self.memory,
            self.clock,
            wer_allows_dumps=self.settings.wer_allows_dumps,
            boot=self.boot_number,
            verifier=self.settings.verifier,
            crash_dump=self.settings.crash_dump,
            live_dump=self.settings.live_dump,
        )
        self.verifier = DriverVerifier(TEST_DRIVER, enabled=self.settings.verifier)
        self._start_driver()

    def restart_driver(self) -> None:
        """A device restart on the same boot (pnputil /restart-device): the driver's DeviceAdd runs
        again with the current `settings.module`, so its module, ring and framework data are new;
        memory, the clock, the OS's live-dump service and Verifier (read at boot) stay."""
        self._start_driver()

    def _start_driver(self) -> None:
        """EvtDriverDeviceAdd: the DMF modules with this config, framework data stored (F16, F18)."""
        config = self.settings.module
        if config.has_crash_dump_child and (
            self.settings.second_crash_dump_module or self.settings.device_instances > 1
        ):
            raise TargetError(
                "the test driver failed to start: a second DMF_CrashDump instance fails to open with "
                "STATUS_INVALID_PARAMETER (F22/F41: one per driver image, a global singleton)"
            )
        self.module = LiveKernelDumpModule(self.profile, self.service, config, TEST_DRIVER, self.verifier)
        self.ioctl = LiveKernelDumpIoctlHandler(
            self.module, self.memory, checked_dmf=self.settings.checked_dmf
        )
        modules = lkdh_driver_modules(config.target_build, config.include_dmf_data_in_bugcheck_dump)
        self.framework = build_framework_data(self.memory, modules)
        # F35/F18: the collection and the handle array first, then P2 is recorded, then per module.
        for block in self.framework.blocks:
            self.module.ring.add(block.address, block.size)
            self.module.count_dmf_data(block.size)
        self.module.collection_parameter = self.framework.collection_handle

    def _crash(self, bugcheck: Bugcheck) -> Crash:
        """KeBugCheckEx: write the crash dump, reboot, report what happened."""
        day = time.strftime("%m%d%y", time.gmtime(self.now))  # Windows names them MMDDYY-NNNNN-01.dmp
        minidump = self.windows_dir / "Minidump" / f"{day}-{len(self.crashes) + 1:05d}-01.dmp"
        blocks = (*bugcheck.evidence, *self.module.crash_dump_blocks())
        self.service.write_crash_dump(
            minidump, bugcheck.code, bugcheck.parameters, blocks, _stop_rip(bugcheck)
        )
        crash = Crash(bugcheck.code, bugcheck.parameters, bugcheck.reason, minidump)
        self.crashes.append(crash)
        self._reboot()
        return crash

    def _reboot(self) -> None:
        """Restart: boot time passes, then a fresh boot; the per-minute rule is the OS's and spans boots."""
        self.now += BOOT_SECONDS
        last_submit = self.service.last_submit
        self._boot()
        self.service.last_submit = last_submit

    def _dispatch(self, op: Op) -> OpResult:
        if isinstance(op, CONTROL_IOCTL_OPS) and not self.settings.live_kernel_dump_feature:
            return OpResult(
                STATUS_INVALID_DEVICE_STATE,
                detail="no LiveKernelDump feature module (NULL handle, F42): Control.c refused",
            )
        match op:
            case Alloc(name, size, pattern, pool):
                address = self.memory.allocate(size, pool, pattern)
                self.buffers[name] = (address, size)
                return OpResult(STATUS_SUCCESS, address=address)
            case Free(name):
                if name not in self.buffers:
                    return OpResult(STATUS_NOT_FOUND, detail=f"no buffer named {name!r} on this boot")
                # F45: Verifier puts the verified driver's allocations in special pool
                self.memory.free(self.buffers.pop(name)[0], special_pool=self.settings.verifier)
                return OpResult(STATUS_SUCCESS)
            case Store(buffer, length, offset, irql) | Remove(buffer, length, offset, irql):
                address = self._resolve(buffer, offset)
                if address is None:
                    return buffer_not_found(buffer)
                if isinstance(op, Store):
                    return OpResult(
                        self.module.data_buffer_source_add(address, length, irql), address=address
                    )
                self.module.data_buffer_source_remove(address, length, irql)
                return OpResult(STATUS_SUCCESS, address=address)
            case StoreCollection(value, irql):
                self.module.store_collection(value, irql)
                return OpResult(STATUS_SUCCESS)
            case Create():
                return self._create(op)
            case QueryDmfDataSize():
                return OpResult(STATUS_SUCCESS, value=self.module.dmf_data_size_get())
            case IoctlCreate():
                return self._ioctl_create(op)
            case Wait(seconds):
                self.now += seconds
                return OpResult(STATUS_SUCCESS)
            case Reboot():
                self._reboot()
                return OpResult(STATUS_SUCCESS)
        raise TypeError(f"the simulator does not know operation {op!r}")

    def _create(self, op: Create) -> OpResult:
        structures = self._resolve_structures(op.client_structures)
        if isinstance(structures, OpResult):
            return structures
        secondary = None
        if op.secondary_data is not None:
            address = self._resolve(op.secondary_data.buffer, op.secondary_data.offset)
            if address is None:
                return buffer_not_found(op.secondary_data.buffer)
            secondary = (address, op.secondary_data.length)
        status = self.module.create(
            op.bugcheck_code, op.parameter, op.exclude_dmf_data, structures, secondary, op.irql
        )
        return OpResult(status)

    def _ioctl_create(self, op: IoctlCreate) -> OpResult:
        """An application opens a handle to the device and sends the IOCTL (F23-F27, F37, F42):
        through the module's interface, which exists only with a GUID and on RS3+, or through the
        control interface, on which the module's IOCTL is served as well."""
        if op.device == "module-interface" and (
            self.settings.module.device_interface_guid == ZERO_GUID
            or self.settings.module.target_build < WINDOWS_10_RS3_BUILD
        ):
            return OpResult(
                STATUS_OBJECT_NAME_NOT_FOUND,
                detail="the module registered no device interface (GuidDeviceInterface is all zeros, F23, "
                "or a pre-RS3 build, F42)",
            )
        raw = op.raw
        if raw is None:
            packed = self._pack_ioctl_input(op)
            if isinstance(packed, OpResult):
                return packed
            raw = packed
        caller = IoctlCaller(elevated=op.elevated, write_access=op.write_access)
        return OpResult(self.ioctl.handle(caller, raw))

    def _pack_ioctl_input(self, op: IoctlCreate) -> bytes | OpResult:
        """Lay the caller's array and secondary data out in its own (user-mode) memory and pack the
        37 bytes pointing at them, as lkdctl.exe does on a real machine."""
        structures = self._resolve_structures(op.client_structures)
        if isinstance(structures, OpResult):
            return structures
        array = 0
        if structures:
            packed = pack_client_structures(structures)
            array = self.memory.allocate(len(packed), USER_MODE, packed)
        secondary_address, secondary_size = 0, 0
        match op.secondary_data:
            case UserBuffer(data):
                secondary_address = self.memory.allocate(len(data), USER_MODE, data) if data else 0
                secondary_size = len(data)
            case SecondaryData(buffer, length, offset):
                resolved = self._resolve(buffer, offset)
                if resolved is None:
                    return buffer_not_found(buffer)
                secondary_address, secondary_size = resolved, length
        return LiveKernelDumpCreateInput(
            op.bugcheck_code,
            op.parameter,
            op.exclude_dmf_data,
            _override(op.client_structure_count_override, len(structures)),
            _override(op.client_structure_array_override, array),
            _override(op.secondary_size_override, secondary_size),
            _override(op.secondary_address_override, secondary_address),
        ).pack()

    def _resolve_structures(
        self, structures: tuple[ClientStructure, ...]
    ) -> list[tuple[int, int]] | OpResult:
        """(address, size) per client structure, or the NOT_FOUND result for the first unknown name."""
        resolved = []
        for structure in structures:
            address = self._resolve(structure.buffer, structure.offset)
            if address is None:
                return buffer_not_found(structure.buffer)
            resolved.append((address, structure.length))
        return resolved

    def _resolve(self, buffer: BufferRef, offset: int) -> int | None:
        """A buffer name (the driver's table) or a raw address, plus an offset."""
        if isinstance(buffer, int):
            return buffer + offset
        entry = self.buffers.get(buffer)
        return None if entry is None else entry[0] + offset


def _stop_rip(bugcheck: Bugcheck) -> int:
    """Where the crashing thread stopped: the faulting instruction when the bugcheck names one
    (0xD1's P4, 0x3B's P2, 0x10D's caller in P3), else inside KeBugCheckEx's caller [INF]."""
    index = {0xD1: 3, 0x3B: 1, 0x10D: 2}.get(bugcheck.code)
    return bugcheck.parameters[index] if index is not None else KI_BUGCHECK_CONTEXT_RIP


def _virtual_duration(op: Op) -> float:
    """What an operation costs on the virtual clock beyond OP_SECONDS."""
    if isinstance(op, Wait):
        return op.seconds
    if isinstance(op, Reboot):
        return BOOT_SECONDS
    return 0.0


def _override(override: int | None, packed: int) -> int:
    return packed if override is None else override


def _copy_verified(source: Path, folder: Path, root: Path, copy: int = 1) -> CollectedDump:
    """Copy a dump and prove the copy by SHA-256, as the real transfers must."""
    relative = source.relative_to(root)
    destination = folder / relative
    if copy > 1:  # MEMORY.DMP is rewritten by every bugcheck: the earlier copies are kept
        destination = destination.with_name(f"{relative.stem}-{copy}{relative.suffix}")
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, destination)
    expected, actual = _sha256(source), _sha256(destination)
    if expected != actual:
        raise OSError(f"copy of {source} does not match: {expected} != {actual}")
    kind = "live" if relative.parts[0] == "LiveKernelReports" else "crash"
    return CollectedDump(destination, kind, actual, str(relative))


def _sha256(path: Path) -> str:
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()

"""DMF_LiveKernelDump as the simulated test driver runs it (DMF_FACTS.md F01-F22, F32-F41).

The module keeps its ring of stored buffers, the DmfDataSize counter and the collection parameter,
and builds a live dump through the OS service exactly in the order F01 gives. Where the shipped
code (profile `dmf-bfac434`) and the documentation (profile `contract`) differ, both are here,
switched by the profile's defect ids, so each difference is one `if` that cites its fact.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from harness.target.irql import Irql
from harness.target.sim.driver_image import DriverImage
from harness.target.sim.lkmdtel import LiveDumpService, LiveReport
from harness.target.sim.memory import PageFault
from harness.target.sim.module_tree import WINDOWS_10_19H1_BUILD, WINDOWS_10_RS3_BUILD
from harness.target.sim.profiles import SimProfile
from harness.target.sim.ring import RingOfStoredBuffers, StoredBuffer
from harness.target.sim.verifier import DriverVerifier, VerifierViolation
from harness.target.status import STATUS_INVALID_PARAMETER, STATUS_SUCCESS, STATUS_UNSUCCESSFUL

DMF_LIVEKERNELDUMP_MAXIMUM_REPORT_TYPE_SIZE = 12
"""F05: DMF's config field is WCHAR ReportType[12] and DMF forces ReportType[11] = 0."""

DOCUMENTED_REPORT_TYPE_SIZE = 16
"""F05: what the module documentation (and lkmdtel) allow, NUL included."""

TRIAGE_DATA_OVERHEAD_PER_BLOCK = 8
"""F34: LKD.c:36-39 budgets 8 bytes per block (lkmdtel really spends 16, F08)."""

ULONG_MASK = 0xFFFF_FFFF
"""F34: DmfDataSize is a ULONG."""

DMF_DATA_SIZE_OFFSET = 0x10
"""F33: DmfDataSize is at +0x10 of DMF_CONTEXT_LiveKernelDump (LKD.c:78-88)."""

ZERO_GUID = uuid.UUID(int=0)
TEST_DRIVER_SECONDARY_DATA_GUID = uuid.UUID("6b1f5a0e-8c1d-4c35-9a57-4c4b44480001")
TEST_DRIVER_DEVICE_INTERFACE_GUID = uuid.UUID("6b1f5a0e-8c1d-4c35-9a57-4c4b44480002")

__all__ = [
    "WINDOWS_10_19H1_BUILD",
    "WINDOWS_10_RS3_BUILD",
    "Bugcheck",
    "LiveKernelDumpModule",
    "ModuleConfig",
]


class Bugcheck(Exception):
    """The simulated machine stops: KeBugCheckEx(code, p1..p4). The machine writes a crash dump.

    `evidence` is memory the crash dump should carry beyond the OS's own part (the module's stored
    buffers when IncludeDmfDataInBugCheckTriageDump is set, F22)."""

    def __init__(
        self,
        code: int,
        parameters: tuple[int, int, int, int],
        reason: str,
        evidence: tuple[tuple[int, bytes], ...] = (),
    ) -> None:
        super().__init__(f"bugcheck 0x{code:X} ({', '.join(f'0x{p:X}' for p in parameters)}): {reason}")
        self.code = code
        self.parameters = parameters
        self.reason = reason
        self.evidence = evidence

    @classmethod
    def from_violation(cls, violation: VerifierViolation) -> Bugcheck:
        return cls(violation.code, violation.parameters, violation.reason, violation.evidence)


@dataclass(frozen=True)
class ModuleConfig:
    """DMF_CONFIG_LiveKernelDump as the test driver fills it, and the build it targets."""

    report_type: str = "LkdhTestDriver"
    secondary_data_guid: uuid.UUID = TEST_DRIVER_SECONDARY_DATA_GUID
    device_interface_guid: uuid.UUID = TEST_DRIVER_DEVICE_INTERFACE_GUID
    include_dmf_data_in_bugcheck_dump: bool = False
    """F22: a child DMF_CrashDump adds every valid ring entry to a bugcheck's triage dump."""
    target_build: int = 19041
    """F04/F44: the NTDDI target the driver was compiled for; below RS3 (16299) DMF compiles its
    live-dump code out (no dump, no IOCTL, F42), whatever WDK linked lkmdtel.lib; below 19H1 there is
    no CrashDump child (F41)."""

    @property
    def has_crash_dump_child(self) -> bool:
        """F41: LKD.c:1116-1133 creates DMF_CrashDump only for 19H1+ targets, when asked (F22)."""
        return self.include_dmf_data_in_bugcheck_dump and self.target_build >= WINDOWS_10_19H1_BUILD


@dataclass
class LiveKernelDumpModule:
    """One instance of the module, alive from driver start to the next reboot."""

    profile: SimProfile
    service: LiveDumpService
    config: ModuleConfig
    image: DriverImage
    verifier: DriverVerifier
    ring: RingOfStoredBuffers = field(default_factory=RingOfStoredBuffers)
    dmf_data_size: int = 0
    collection_parameter: int = 0
    stale_queue: list[StoredBuffer] = field(default_factory=list)
    leaked_queue_buffers: int = 0
    """F40/F15: a failed insert never returns its BufferQueue buffer (LKD.c:672-684: goto Exit
    skips DMF_BufferQueue_Reuse); the look-aside list allocates another, so the leak only grows."""

    @property
    def report_type(self) -> str:
        """F05: bfac434 keeps 11 characters; the documentation promises 15."""
        size = DMF_LIVEKERNELDUMP_MAXIMUM_REPORT_TYPE_SIZE
        if not self.profile.has("report-type-truncated"):
            size = DOCUMENTED_REPORT_TYPE_SIZE
        return self.config.report_type[: size - 1]

    def data_buffer_source_add(self, address: int, size: int, irql: Irql) -> int:
        """F10/F11: always succeeds, evicts the oldest when full, counts size + 8 regardless (F34)."""
        self._module_lock(irql, "DMF_LiveKernelDump_DataBufferSourceAdd", documented_max=Irql.DISPATCH_LEVEL)
        self.ring.add(address, size)
        self.count_dmf_data(size)  # never reduced when the ring evicts: the counter drifts
        return STATUS_SUCCESS

    def count_dmf_data(self, size: int) -> None:
        """F34: `DmfDataSize += Size + 8` in a ULONG: it wraps at 2^32."""
        self.dmf_data_size = (self.dmf_data_size + size + TRIAGE_DATA_OVERHEAD_PER_BLOCK) & ULONG_MASK

    def dmf_data_size_get(self) -> int:
        """DMF_LiveKernelDump_DmfDataSizeGet: the counter as it is, drift and wrap included (F11, F34)."""
        return self.dmf_data_size

    def data_buffer_source_remove(self, address: int, size: int, irql: Irql) -> None:
        """F12: invalidates every exact (address, size) match; F13/F33: bfac434 crashes on a match."""
        self._module_lock(
            irql, "DMF_LiveKernelDump_DataBufferSourceRemove", documented_max=Irql.DISPATCH_LEVEL
        )
        matched = self.ring.matches(address, size)
        if matched and self.profile.has("remove-null-context"):
            # F33: the match callback gets the RingBuffer child's handle, DMF_CONTEXT_GET returns NULL
            # for it, and `DmfDataSize -= ...` writes NULL+0x10 under the RingBuffer's spin lock.
            instruction = self.image.routine("LiveKernelDump_InvalidateDataBuffer")
            raise Bugcheck(
                0xD1,
                (DMF_DATA_SIZE_OFFSET, int(Irql.DISPATCH_LEVEL), 1, instruction),
                "F33: DataBufferSourceRemove's match callback wrote DmfDataSize through a NULL context "
                "(NULL+0x10) at DISPATCH_LEVEL under the RingBuffer's spin lock",
            )
        self.ring.invalidate(address, size)
        for _ in range(matched):
            self.dmf_data_size = (self.dmf_data_size - size - TRIAGE_DATA_OVERHEAD_PER_BLOCK) & ULONG_MASK

    def store_collection(self, value: int, irql: Irql) -> None:
        """F18/F30: paged, PASSIVE only, no NULL check; records P2 under the module's wait lock."""
        routine = "DMF_LiveKernelDump_StoreDmfCollectionAsBugcheckParameter"
        self._raise_on_violation(self.verifier.paged_code_at(irql, routine))
        self._module_lock(irql, routine)
        self.collection_parameter = value

    def create(
        self,
        code: int,
        parameter: int,
        exclude_dmf_data: int,
        client_structures: Iterable[tuple[int, int]],
        secondary: tuple[int, int] | None,
        irql: Irql,
    ) -> int:
        """LiveKernelMemoryDumpCreate, call for call as F01 lists them. Documented and really
        PASSIVE_LEVEL only (F29, paged). `client_structures` is read element by element, as DMF
        reads the caller's array (F36): an IOCTL's bad array pointer faults only when reached."""
        routine = "DMF_LiveKernelDump_LiveKernelMemoryDumpCreate"
        self._raise_on_violation(self.verifier.paged_code_at(irql, routine))
        if self.config.target_build < WINDOWS_10_RS3_BUILD:
            return STATUS_SUCCESS  # F04/F44: the live-dump code is compiled out: success, no dump
        if secondary is not None and secondary[1] > 0 and secondary[0] == 0:
            return STATUS_INVALID_PARAMETER  # F03
        excluded_for_p2, insert_dmf_data = self._exclusion(exclude_dmf_data)
        p2 = 0 if excluded_for_p2 else self.collection_parameter  # F02
        report = self.service.create_report(self.report_type, code, parameter, p2, 0, 0)
        if report is None:
            return STATUS_UNSUCCESSFUL  # F01: CreateReport returned NULL
        if insert_dmf_data:
            self._module_lock(irql, routine)  # F39: the lock only on this path (LKD.c:841-844 -> 541)
            status = self._insert_stored_buffers(report)
            if status != STATUS_SUCCESS:
                return status
        for address, size in client_structures:
            status = self.service.insert_triage_data_block(report, address, size)
            if status != STATUS_SUCCESS:
                return status  # F20: a bad client structure aborts the whole dump
        if secondary is not None and secondary[1] > 0:
            status = self._set_secondary(report, *secondary)
            if status != STATUS_SUCCESS:
                return status
        return self.service.submit_report(report)

    def _exclusion(self, exclude: int) -> tuple[bool, bool]:
        """(P2 is zeroed, DMF data is inserted). F17: bfac434 compares `== TRUE` for P2 and
        `== FALSE` for the insert, so 2 gives P2 = collection and no DMF data."""
        if self.profile.has("exclude-dmf-data-nonbool"):
            return exclude == 1, exclude == 0
        return exclude != 0, exclude == 0

    def _insert_stored_buffers(self, report: LiveReport) -> int:
        """F15: valid entries are queued, then inserted oldest first; on bfac434 a failure leaves
        the rest queued (they lead the next dump's queue) and leaks the failed entry's buffer. The
        rejected entry stays valid, so it fails every later dump with DMF data (F40)."""
        queue = [*self.stale_queue, *self.ring.valid_items()]
        self.stale_queue = []
        for index, item in enumerate(queue):
            status = self.service.insert_triage_data_block(report, item.address, item.size)
            if status != STATUS_SUCCESS:
                if self.profile.has("stale-queue-after-failed-insert"):
                    self.stale_queue = queue[index + 1 :]
                if self.profile.has("rejected-buffer-poisons-dumps"):
                    self.leaked_queue_buffers += 1
                else:
                    item.valid = False  # contract: one refusal, not every dump until reboot
                return status
        return STATUS_SUCCESS

    def _set_secondary(self, report: LiveReport, address: int, size: int) -> int:
        """F21: with an all-zero GUID bfac434 skips the data and still succeeds; the contract
        profile refuses the call instead of losing data silently."""
        guid = self.config.secondary_data_guid
        if guid == ZERO_GUID:
            return (
                STATUS_SUCCESS if self.profile.has("secondary-data-null-guid") else STATUS_INVALID_PARAMETER
            )
        return self.service.set_secondary_data(report, guid, address, size)

    def crash_dump_blocks(self) -> tuple[tuple[int, bytes], ...]:
        """F22/F41: with IncludeDmfDataInBugCheckTriageDump on a 19H1+ target, the child CrashDump
        adds every valid ring entry to the bugcheck's triage dump (read at crash time)."""
        if not self.config.has_crash_dump_child:
            return ()
        blocks = []
        for item in self.ring.valid_items():
            try:
                blocks.append((item.address, self.service.memory.read(item.address, item.size)))
            except PageFault:
                continue  # the crash-dump callback skips what it cannot read
        return tuple(blocks)

    def _module_lock(self, irql: Irql, routine: str, documented_max: Irql = Irql.PASSIVE_LEVEL) -> None:
        """F14/F28/F38: the module lock is a WDF wait lock taken from paged code. Add/Remove are
        documented as <= DISPATCH_LEVEL, so the contract profile lets them take it there."""
        if (
            irql == Irql.DISPATCH_LEVEL
            and documented_max == irql
            and not self.profile.has("dispatch-wait-lock")
        ):
            return
        if irql == Irql.APC_LEVEL and documented_max >= irql and not self.profile.has("apc-wait-lock"):
            return
        self._raise_on_violation(self.verifier.module_lock(irql, routine))

    @staticmethod
    def _raise_on_violation(violation: VerifierViolation | None) -> None:
        if violation is not None:
            raise Bugcheck.from_violation(violation)


@dataclass
class NullModuleHandle:
    """The methods called with a NULL DMFMODULE (F04, F42): the feature was not enabled.

    Add, Remove and Create check for NULL and do nothing (LKD.c:1250-1420); StoreDmfCollection-
    AsBugcheckParameter and DmfDataSizeGet call DMF_CONTEXT_GET(NULL) first (LKD.c:1465-1535), and
    KMDF's WdfObjectGetTypedContextWorker checks its handle with FxPointerNotNull (handleapi.cpp:715):
    WDF_VIOLATION 0x10D, P1 = WDF_REQUIRED_PARAMETER_IS_NULL (0x4), P2 = 0, P3 = the caller's return
    address (fxverifierbugcheck.cpp:97-122), P4 = 0 [INF].
    """

    image: DriverImage

    def data_buffer_source_add(self, address: int, size: int, irql: Irql) -> int:
        return STATUS_SUCCESS

    def data_buffer_source_remove(self, address: int, size: int, irql: Irql) -> None:
        return None

    def create(self, *args: object) -> int:
        return STATUS_SUCCESS

    def store_collection(self, value: int, irql: Irql) -> None:
        raise self._null("DMF_LiveKernelDump_StoreDmfCollectionAsBugcheckParameter")

    def dmf_data_size_get(self) -> int:
        raise self._null("DMF_LiveKernelDump_DmfDataSizeGet")

    def _null(self, routine: str) -> Bugcheck:
        caller = self.image.routine(routine, paged=True) + 0x1C
        return Bugcheck(
            0x10D, (0x4, 0, caller, 0), f"F42: {routine} passed a NULL DMFMODULE to DMF_CONTEXT_GET"
        )

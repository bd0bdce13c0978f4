"""DMF_LiveKernelDump as the simulated test driver runs it (DMF_FACTS.md F01-F21).

The module keeps its ring of stored buffers, the DmfDataSize counter and the collection parameter,
and builds a live dump through the OS service exactly in the order F01 gives. Where the shipped
code (profile `dmf-bfac434`) and the documentation (profile `contract`) differ, both are here,
switched by the profile's defect ids, so each difference is one `if` that cites its fact.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from harness.target.irql import Irql
from harness.target.sim.lkmdtel import LiveDumpService, LiveReport
from harness.target.sim.memory import PageFault
from harness.target.sim.profiles import SimProfile
from harness.target.sim.ring import RingOfStoredBuffers, StoredBuffer
from harness.target.sim.verifier import DriverVerifier, VerifierViolation
from harness.target.status import STATUS_INVALID_PARAMETER, STATUS_SUCCESS, STATUS_UNSUCCESSFUL

DMF_LIVEKERNELDUMP_MAXIMUM_REPORT_TYPE_SIZE = 12
"""F05: DMF's config field is WCHAR ReportType[12] and DMF forces ReportType[11] = 0."""

DOCUMENTED_REPORT_TYPE_SIZE = 16
"""F05: what the module documentation (and lkmdtel) allow, NUL included."""

ZERO_GUID = uuid.UUID(int=0)
TEST_DRIVER_SECONDARY_DATA_GUID = uuid.UUID("6b1f5a0e-8c1d-4c35-9a57-4c4b44480001")
TEST_DRIVER_DEVICE_INTERFACE_GUID = uuid.UUID("6b1f5a0e-8c1d-4c35-9a57-4c4b44480002")

WINDOWS_10_RS3_BUILD = 16299
"""F01/F04: DMF links lkmdtel.lib only when the driver is built for Windows 10 1709 (RS3) or later."""


class Bugcheck(Exception):
    """The simulated machine stops: KeBugCheckEx(code, p1..p4). The machine writes a crash dump.

    `evidence` is memory the crash dump should carry beyond the OS's own part (Verifier's rule text,
    the module's stored buffers when IncludeDmfDataInBugCheckTriageDump is set, F22)."""

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
    """DMF_CONFIG_LiveKernelDump as the test driver fills it."""

    report_type: str = "LkdhTestDriver"
    secondary_data_guid: uuid.UUID = TEST_DRIVER_SECONDARY_DATA_GUID
    device_interface_guid: uuid.UUID = TEST_DRIVER_DEVICE_INTERFACE_GUID
    include_dmf_data_in_bugcheck_dump: bool = False
    """F22: a child DMF_CrashDump adds every valid ring entry to a bugcheck's triage dump."""
    target_build: int = WINDOWS_10_RS3_BUILD
    """F04: the Windows build the driver was compiled for; below RS3, Create is an empty success."""


@dataclass
class LiveKernelDumpModule:
    """One instance of the module, alive from driver start to the next reboot."""

    profile: SimProfile
    service: LiveDumpService
    config: ModuleConfig
    image_base: int
    verifier: DriverVerifier
    ring: RingOfStoredBuffers = field(default_factory=RingOfStoredBuffers)
    dmf_data_size: int = 0
    collection_parameter: int = 0
    stale_queue: list[StoredBuffer] = field(default_factory=list)

    @property
    def report_type(self) -> str:
        """F05: bfac434 keeps 11 characters; the documentation promises 15."""
        size = DMF_LIVEKERNELDUMP_MAXIMUM_REPORT_TYPE_SIZE
        if not self.profile.has("report-type-truncated"):
            size = DOCUMENTED_REPORT_TYPE_SIZE
        return self.config.report_type[: size - 1]

    def data_buffer_source_add(self, address: int, size: int, irql: Irql) -> int:
        """F10/F11: always succeeds, evicts the oldest when full, counts size + 8 regardless."""
        self._take_wait_lock(irql, "DMF_LiveKernelDump_DataBufferSourceAdd")
        self.ring.add(address, size)
        self.dmf_data_size += size + 8  # never reduced when the ring evicts: the counter drifts
        return STATUS_SUCCESS

    def dmf_data_size_get(self) -> int:
        """DMF_LiveKernelDump_DmfDataSizeGet: the counter as it is, drift included (F11)."""
        return self.dmf_data_size

    def data_buffer_source_remove(self, address: int, size: int, irql: Irql) -> None:
        """F12: invalidates every exact (address, size) match; F13: bfac434 crashes on a match."""
        self._take_wait_lock(irql, "DMF_LiveKernelDump_DataBufferSourceRemove")
        matched = self.ring.matches(address, size)
        if matched and self.profile.has("remove-null-context"):
            # The match callback writes DmfDataSize through a NULL context under a spin lock.
            raise Bugcheck(
                0xD1,
                (0x28, int(Irql.DISPATCH_LEVEL), 1, self.image_base + 0x1A2C),
                "F13: DataBufferSourceRemove's match callback wrote DmfDataSize through a NULL context",
            )
        self.ring.invalidate(address, size)
        self.dmf_data_size -= matched * (size + 8)

    def store_collection(self, value: int, irql: Irql) -> None:
        """F18: records the value Create puts in P2; PASSIVE only (paged), no NULL check."""
        violation = self.verifier.paged_code_at(
            irql, "DMF_LiveKernelDump_StoreDmfCollectionAsBugcheckParameter", self.image_base
        )
        if violation is not None:
            raise Bugcheck.from_violation(violation)
        self.collection_parameter = value

    def create(
        self,
        code: int,
        parameter: int,
        exclude_dmf_data: int,
        client_structures: list[tuple[int, int]],
        secondary: tuple[int, int] | None,
        irql: Irql,
    ) -> int:
        """LiveKernelMemoryDumpCreate, call for call as F01 lists them. Documented and really
        PASSIVE_LEVEL only (F29): it takes the module lock to queue the stored buffers (F15)."""
        self._raise_on_violation(
            self.verifier.wait_lock_at(irql, "DMF_LiveKernelDump_LiveKernelMemoryDumpCreate")
        )
        if self.config.target_build < WINDOWS_10_RS3_BUILD:
            return STATUS_SUCCESS  # F04: compiled without lkmdtel: success, and no dump
        if secondary is not None and secondary[1] > 0 and secondary[0] == 0:
            return STATUS_INVALID_PARAMETER  # F03
        excluded_for_p2, insert_dmf_data = self._exclusion(exclude_dmf_data)
        p2 = 0 if excluded_for_p2 else self.collection_parameter  # F02
        report = self.service.create_report(self.report_type, code, parameter, p2, 0, 0)
        if report is None:
            return STATUS_UNSUCCESSFUL  # F01: CreateReport returned NULL
        if insert_dmf_data:
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
        the rest queued, and they lead the next dump's queue."""
        queue = [*self.stale_queue, *self.ring.valid_items()]
        self.stale_queue = []
        for index, item in enumerate(queue):
            status = self.service.insert_triage_data_block(report, item.address, item.size)
            if status != STATUS_SUCCESS:
                if self.profile.has("stale-queue-after-failed-insert"):
                    self.stale_queue = queue[index + 1 :]
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
        """F22: with IncludeDmfDataInBugCheckTriageDump, the child CrashDump module adds every valid
        ring entry to the bugcheck's triage dump (read at crash time)."""
        if not self.config.include_dmf_data_in_bugcheck_dump:
            return ()
        blocks = []
        for item in self.ring.valid_items():
            try:
                blocks.append((item.address, self.service.memory.read(item.address, item.size)))
            except PageFault:
                continue  # the crash-dump callback skips what it cannot read
        return tuple(blocks)

    def _take_wait_lock(self, irql: Irql, routine: str) -> None:
        """F14/F28: the module lock is a WDF wait lock taken from paged code. Documented as
        <= DISPATCH_LEVEL, so the contract profile allows DISPATCH."""
        if self.profile.has("dispatch-wait-lock"):
            self._raise_on_violation(self.verifier.wait_lock_at(irql, routine))

    @staticmethod
    def _raise_on_violation(violation: VerifierViolation | None) -> None:
        if violation is not None:
            raise Bugcheck.from_violation(violation)

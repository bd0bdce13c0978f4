"""The OS live-dump service the module calls (lkmdtel.lib), as DMF_FACTS.md F01, F06-F09 describe it.

A report is built in a fixed 256 KiB buffer: every inserted block costs a 16-byte descriptor plus
its size rounded up to 8, and its bytes are copied at insert time (F08). Secondary data is read at
submit time (F07). Only one report per minute is accepted per machine (F06), measured on the
machine's virtual clock. Submitting writes a real triage live dump through `harness.dump`.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.dump import TriageDumpSpec, write_triage_dump
from harness.dump.sections import ThreadState
from harness.target.sim.current_thread import current_thread
from harness.target.sim.driver_image import LIVE_DUMP_CONTEXT_RIP, LoadedImage, loaded_images
from harness.target.sim.kernel_dump import MEMORY_DUMP_NAME, write_kernel_dump
from harness.target.sim.memory import KernelMemory, PageFault
from harness.target.status import (
    STATUS_BUFFER_TOO_SMALL,
    STATUS_INVALID_PARAMETER,
    STATUS_OBJECT_NAME_COLLISION,
    STATUS_SUCCESS,
)

DUMP_BUFFER_SIZE = 0x40000
"""F08: the live minidump is built in a 256 KiB non-paged buffer."""

OS_FIXED_BYTES = DUMP_BUFFER_SIZE - 180 * 1024
"""[INF] What the OS's own part of the dump (header, context, thread, stack, driver list) takes.
DMF reserves DMF_LIVEKERNELDUMP_MAXIMUM_TRIAGE_DATA = 180 KiB for triage data (F19); we take the
rest of the 256 KiB as the fixed part, so blocks have 180 KiB, descriptors included."""

SECONDARY_DATA_LIMIT = 24 * 1024 * 1024
"""F07: secondary data should be under 24 MB; larger is truncated."""

BLOCK_DESCRIPTOR_SIZE = 16
TRIAGE_BLOCK_ALIGNMENT = 8
"""F40: lkmdtel refuses a triage block whose address is not 8-byte aligned."""
SECONDS_BETWEEN_REPORTS = 60.0
"""F06: one report per minute per machine."""

FILETIME_TICKS_PER_SECOND = 10_000_000


def block_cost(size: int) -> int:
    """Bytes a block takes in the dump buffer: descriptor + size rounded up to 8 (F08)."""
    return BLOCK_DESCRIPTOR_SIZE + ((size + 7) & ~7)


@dataclass
class LiveReport:
    """A report between LkmdTelCreateReport and LkmdTelSubmitReport."""

    report_type: str
    bugcheck_code: int
    parameters: tuple[int, int, int, int]
    blocks: list[tuple[int, bytes]] = field(default_factory=list)
    used: int = OS_FIXED_BYTES
    secondary: tuple[uuid.UUID, int, int] | None = None  # guid, address, size: read at submit


@dataclass
class LiveDumpService:
    """lkmdtel on one simulated machine: creates, fills and submits live reports."""

    windows_dir: Path
    memory: KernelMemory
    clock: Callable[[], float]
    build: int = 19041
    processors: int = 2
    wer_allows_dumps: bool = True
    last_submit: float | None = None
    boot: int = 1
    verifier: bool = False
    images: tuple[LoadedImage, ...] = field(default_factory=loaded_images)
    caller: str = "lkdctl.exe"
    """The process whose system call is running the driver (the dump's current thread)."""
    crash_dump: str = "triage"
    """"kernel": a bugcheck also writes MEMORY.DMP (kernel_dump.py); "triage": the minidump only."""
    live_dump: str = "triage"
    """"kernel": Create's report is a full live dump (DumpType 6, kernel_dump.py), not a triage one."""

    def create_report(
        self, report_type: str, code: int, p1: int, p2: int, p3: int, p4: int
    ) -> LiveReport | None:
        """LkmdTelCreateReport: None when WER policy refuses dumps (F09), or for an empty ReportType
        [INF: the report type names the report's folder (F09) and WER's component; DMF passes an
        empty one on unchecked, and we take lkmdtel to refuse it, so Create returns
        STATUS_UNSUCCESSFUL (F01) rather than write into LiveKernelReports itself]."""
        if not self.wer_allows_dumps or not report_type:
            return None
        return LiveReport(report_type, code, (p1, p2, p3, p4))

    def insert_triage_data_block(self, report: LiveReport, address: int, size: int) -> int:
        """LkmdTelInsertTriageDataBlock: copies the bytes now (F08).

        Refused with STATUS_INVALID_PARAMETER: size 0 (F08), an address not 8-byte aligned (F40,
        per lkmdtel's documentation), a range that is not mapped [INF: the service validates the
        range before copying]. The same rule serves every caller, the IOCTL path included (F36);
        only DMF's own read of the caller's client-structure array is unprotected (F27).
        """
        if size == 0 or address % TRIAGE_BLOCK_ALIGNMENT:
            return STATUS_INVALID_PARAMETER
        cost = block_cost(size)
        if report.used + cost > DUMP_BUFFER_SIZE:
            return STATUS_BUFFER_TOO_SMALL
        try:
            data = self.memory.read(address, size)
        except PageFault:
            return STATUS_INVALID_PARAMETER
        report.blocks.append((address, data))
        report.used += cost
        return STATUS_SUCCESS

    def set_secondary_data(self, report: LiveReport, guid: uuid.UUID, address: int, size: int) -> int:
        """LkmdTelSetSecondaryData: remembers where the data is; it is read at submit (F07)."""
        report.secondary = (guid, address, size)
        return STATUS_SUCCESS

    def submit_report(self, report: LiveReport) -> int:
        """LkmdTelSubmitReport: enforce one report per minute (F06), then write the file (F09)."""
        now = self.clock()
        if self.last_submit is not None and now - self.last_submit < SECONDS_BETWEEN_REPORTS:
            return STATUS_OBJECT_NAME_COLLISION
        secondary: list[tuple[uuid.UUID, bytes]] = []
        if report.secondary is not None:  # read now (F07), with the insert's range rule (F36)
            guid, address, size = report.secondary
            size = min(size, SECONDARY_DATA_LIMIT)  # F07: larger data is truncated
            try:
                secondary.append((guid, self.memory.read(address, size)))
            except PageFault:
                return STATUS_INVALID_PARAMETER
        self.last_submit = now
        folder = self.windows_dir / "LiveKernelReports" / report.report_type
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{report.report_type}-{_timestamp(now)}.dmp"
        thread = current_thread(
            self.boot,
            LIVE_DUMP_CONTEXT_RIP,
            process_name=self.caller,
            driver_frames=("LiveKernelDump_LiveKernelMemoryDumpCreate", "LkdhControlIoctl"),
            verifier=self.verifier,
        )
        spec = self._spec(report, secondary, now, thread, live=True)
        if self.live_dump == "kernel":
            write_kernel_dump(path, spec, self.memory, live=True)
        else:
            write_triage_dump(path, spec)
        return STATUS_SUCCESS

    def write_crash_dump(
        self,
        path: Path,
        code: int,
        parameters: tuple[int, int, int, int],
        blocks: tuple[tuple[int, bytes], ...] = (),
        rip: int = 0,
    ) -> Path:
        """What the OS writes to %SystemRoot%\\Minidump after a bugcheck (a triage dump, not live),
        with `blocks` added by bugcheck callbacks (DMF_CrashDump, F22); `rip` is where the thread
        stopped (the faulting instruction when the bugcheck names one)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        report = LiveReport("Minidump", code, parameters, blocks=list(blocks))
        thread = current_thread(self.boot, rip, process_name=self.caller, verifier=self.verifier)
        spec = self._spec(report, [], self.clock(), thread, live=False)
        write_triage_dump(path, spec)
        if self.crash_dump == "kernel":
            memory_dump = write_kernel_dump(
                self.windows_dir / MEMORY_DUMP_NAME, spec, self.memory, live=False
            )
            # rewritten in place by every bugcheck: its write time is the machine's (virtual) clock,
            # as a listing of the disk shows it, so two of them are told apart as on a real machine
            os.utime(memory_dump, (self.clock(), self.clock()))
        return path

    def _spec(
        self,
        report: LiveReport,
        secondary: list[tuple[uuid.UUID, bytes]],
        now: float,
        thread: ThreadState,
        *,
        live: bool,
    ) -> TriageDumpSpec:
        return TriageDumpSpec(
            drivers=[(image.path, image.base, image.size) for image in self.images],
            thread=thread,
            bugcheck_code=report.bugcheck_code,
            bugcheck_parameters=report.parameters,
            data_blocks=list(report.blocks),
            secondary_data=secondary,
            number_processors=self.processors,
            build=self.build,
            live=live,
            system_time=int(now * FILETIME_TICKS_PER_SECOND) + _FILETIME_UNIX_EPOCH,
        )


_FILETIME_UNIX_EPOCH = 116_444_736_000_000_000
"""FILETIME of 1970-01-01 (FILETIME counts 100 ns ticks from 1601-01-01)."""


def _timestamp(unix_seconds: float) -> str:
    """The YYYYMMDD-HHMM part of a live-dump file name, as Windows names them."""
    return time.strftime("%Y%m%d-%H%M", time.gmtime(unix_seconds))

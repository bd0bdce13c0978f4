"""The module's IOCTL_LIVEKERNELDUMP_CREATE handler on the simulated machine (DMF_FACTS.md F23-F27,
F31, F36, F37, F42, F43).

The checks run in the order the real request meets them: the I/O manager refuses a handle without
write access for an IOCTL declared FILE_WRITE_ACCESS; DMF's IoctlHandler refuses a caller without an
elevated administrator token **before** it looks at the size (IH.c:401-432, F37), then an input
shorter than the structure; a checked (debug) DMF asserts the size is exactly 37 (LKD.c:975, F43);
LiveKernelMemoryDumpCreate then checks the NULL pointer/count pairs (F25) and runs at PASSIVE (F31).

Pointers (F27, F36): the shipped module neither probes nor captures the embedded pointers. Create
runs CreateReport and the DMF-data inserts first, then reads the caller's client-structure array
element by element (LKD.c:727-738), so a bad array pointer faults only when its element is reached,
and any status-returning failure before it (a refused report, a failing DMF insert, no room) is
returned instead. The fault is an unhandled access violation in a system call: bugcheck 0x3B. The
addresses inside the structures and the secondary buffer are handed to lkmdtel, which copies them
with the same rule for both paths (lkmdtel.py: an unreadable range is STATUS_INVALID_PARAMETER).
The contract profile probes every pointer as a user-mode range first (ACCESS_VIOLATION instead).

Which handle (F37): the IOCTL is dispatched by DMF to every module, so it is served on any handle
to the device (the control interface's too), also when GuidDeviceInterface is all zeros (then only
the module's own interface is missing). Before RS3 there is no IoctlHandler child (F42): the request
reaches no module and DMF's container completes it with STATUS_NOT_SUPPORTED (DmfContainer.c:578-595).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from harness.target.irql import Irql
from harness.target.lkd_ioctl import (
    CLIENT_STRUCTURE_FORMAT,
    CLIENT_STRUCTURE_SIZE,
    INPUT_SIZE,
    LiveKernelDumpCreateInput,
    unpack_client_structures,
)
from harness.target.sim.livekerneldump import Bugcheck, LiveKernelDumpModule
from harness.target.sim.memory import KernelMemory, PageFault, is_kernel_address
from harness.target.sim.module_tree import WINDOWS_10_RS3_BUILD
from harness.target.status import (
    STATUS_ACCESS_DENIED,
    STATUS_ACCESS_VIOLATION,
    STATUS_BUFFER_TOO_SMALL,
    STATUS_INVALID_PARAMETER,
    STATUS_NOT_SUPPORTED,
)

SYSTEM_SERVICE_EXCEPTION = 0x3B
"""P1 = the exception code, P2 = the faulting instruction, P3 = the context record, P4 = 0."""

STATUS_BREAKPOINT = 0x80000003
"""F43: what a checked DMF's failed DmfAssert (ASSERTMSG) raises with no kernel debugger [INF]."""


@dataclass(frozen=True)
class IoctlCaller:
    """Who sends the IOCTL and how its handle was opened (F26)."""

    elevated: bool = True
    write_access: bool = True


@dataclass
class LiveKernelDumpIoctlHandler:
    """Handles IOCTL_LIVEKERNELDUMP_CREATE for one module instance."""

    module: LiveKernelDumpModule
    memory: KernelMemory
    checked_dmf: bool = False
    """F43: the driver was built against a debug (checked) DMF, whose DmfAssert is live."""

    def handle(self, caller: IoctlCaller, input_buffer: bytes) -> int:
        """The request's completion status; raises Bugcheck where the shipped handler crashes."""
        if not caller.write_access:
            return STATUS_ACCESS_DENIED  # F26: the I/O manager checks FILE_WRITE_ACCESS on the handle
        if self.module.config.target_build < WINDOWS_10_RS3_BUILD:
            return STATUS_NOT_SUPPORTED  # F42: no IoctlHandler child; no module handles the code
        if not caller.elevated:
            return STATUS_ACCESS_DENIED  # F26/F37: AdministratorAccessOnly, before the size check
        if len(input_buffer) < INPUT_SIZE:
            return STATUS_BUFFER_TOO_SMALL  # F25: fewer than 37 bytes; more is accepted
        if self.checked_dmf and len(input_buffer) != INPUT_SIZE:
            raise self._exception(STATUS_BREAKPOINT, "F43: DmfAssert(InputBufferSize == 37) failed")
        request = LiveKernelDumpCreateInput.unpack(input_buffer)
        if request.number_of_client_structures > 0 and request.array_of_client_structures == 0:
            return STATUS_INVALID_PARAMETER  # F25
        if request.size_of_secondary_data > 0 and request.secondary_data_buffer == 0:
            return STATUS_INVALID_PARAMETER  # F25
        secondary = None
        if request.size_of_secondary_data:
            secondary = (request.secondary_data_buffer, request.size_of_secondary_data)
        if not self.module.profile.has("ioctl-unprobed-user-pointers"):
            structures = self._probed(request, secondary)
            if isinstance(structures, int):
                return structures
        else:
            structures = self._caller_array(
                request.array_of_client_structures, request.number_of_client_structures
            )
        return self.module.create(
            request.bugcheck_code,
            request.bugcheck_parameter,
            request.exclude_dmf_data,
            structures,
            secondary,
            Irql.PASSIVE_LEVEL,  # F31: the handler runs in the caller's thread at PASSIVE
        )

    def _caller_array(self, address: int, count: int) -> Iterator[tuple[int, int]]:
        """F36: `clientStructure = ArrayOfClientStructures[index]`, one element at a time, unprobed."""
        for index in range(count):
            element = address + index * CLIENT_STRUCTURE_SIZE
            try:
                raw = self.memory.read(element, CLIENT_STRUCTURE_SIZE)
            except PageFault:
                raise self._exception(
                    STATUS_ACCESS_VIOLATION,
                    f"F27/F36: Create read client structure {index} at the caller's unprobed pointer "
                    f"0x{element:016X}",
                ) from None
            yield struct.unpack(CLIENT_STRUCTURE_FORMAT, raw)

    def _probed(
        self, request: LiveKernelDumpCreateInput, secondary: tuple[int, int] | None
    ) -> list[tuple[int, int]] | int:
        """Contract: ProbeForRead and capture every embedded pointer before anything is used."""
        size = request.number_of_client_structures * CLIENT_STRUCTURE_SIZE
        if not _probe(self.memory, request.array_of_client_structures, size):
            return STATUS_ACCESS_VIOLATION
        structures = (
            unpack_client_structures(self.memory.read(request.array_of_client_structures, size))
            if size
            else []
        )
        for address, length in [*structures, *([secondary] if secondary else [])]:
            if not _probe(self.memory, address, length):
                return STATUS_ACCESS_VIOLATION
        return structures

    def _exception(self, code: int, reason: str) -> Bugcheck:
        instruction = (
            self.module.image.routine("LiveKernelDump_LiveKernelMemoryDumpCreate", paged=True) + 0x9A
        )
        context_record = self.module.image.base + 0x9F00
        return Bugcheck(SYSTEM_SERVICE_EXCEPTION, (code, instruction, context_record, 0), reason)


def _probe(memory: KernelMemory, address: int, size: int) -> bool:
    """ProbeForRead from a user caller: the range must be user-mode and readable."""
    if size == 0:
        return True
    if is_kernel_address(address + size - 1):
        return False
    try:
        memory.read(address, size)
    except PageFault:
        return False
    return True

"""The module's IOCTL_LIVEKERNELDUMP_CREATE handler on the simulated machine (DMF_FACTS.md F23-F27, F31).

The checks run in the order the real request meets them: the I/O manager refuses a handle without
write access for an IOCTL declared FILE_WRITE_ACCESS; DMF's IoctlHandler refuses a caller without an
elevated administrator token (the IOCTL is AdministratorAccessOnly) and an input shorter than the
structure; the module then checks the NULL pointer/count pairs and calls Create at PASSIVE_LEVEL
(the dispatch routine runs in the caller's thread at PASSIVE, F31).

The shipped module neither probes nor captures the embedded pointers (F27, defect
`ioctl-unprobed-user-pointers`): the client-structure array is read straight from the caller's
address, so a bad pointer is an unhandled access violation in a system call (bugcheck 0x3B), and a
kernel address as a client structure's Address copies kernel memory into the dump. The contract
profile probes every pointer as a user-mode range and fails with STATUS_ACCESS_VIOLATION instead.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from harness.target.irql import Irql
from harness.target.lkd_ioctl import (
    CLIENT_STRUCTURE_SIZE,
    LiveKernelDumpCreateInput,
    unpack_client_structures,
)
from harness.target.sim.livekerneldump import Bugcheck, LiveKernelDumpModule
from harness.target.sim.memory import KernelMemory, PageFault, is_kernel_address
from harness.target.status import (
    STATUS_ACCESS_DENIED,
    STATUS_ACCESS_VIOLATION,
    STATUS_BUFFER_TOO_SMALL,
    STATUS_INVALID_PARAMETER,
)

SYSTEM_SERVICE_EXCEPTION = 0x3B
"""P1 = the exception code, P2 = the faulting instruction, P3 = the context record, P4 = 0."""


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

    def handle(self, caller: IoctlCaller, input_buffer: bytes) -> int:
        """The request's completion status; raises Bugcheck where the shipped handler crashes."""
        if not caller.write_access:
            return STATUS_ACCESS_DENIED  # F26: the I/O manager checks FILE_WRITE_ACCESS on the handle
        if not caller.elevated:
            return STATUS_ACCESS_DENIED  # F26: AdministratorAccessOnly, checked per IOCTL
        try:
            request = LiveKernelDumpCreateInput.unpack(input_buffer)
        except ValueError:
            return STATUS_BUFFER_TOO_SMALL  # F25: fewer than 37 bytes; more is accepted
        if request.number_of_client_structures > 0 and request.array_of_client_structures == 0:
            return STATUS_INVALID_PARAMETER  # F25
        if request.size_of_secondary_data > 0 and request.secondary_data_buffer == 0:
            return STATUS_INVALID_PARAMETER  # F25
        probed = not self.module.profile.has("ioctl-unprobed-user-pointers")
        array_size = request.number_of_client_structures * CLIENT_STRUCTURE_SIZE
        array = self._read_caller_memory(request.array_of_client_structures, array_size, probed=probed)
        if isinstance(array, int):
            return array
        structures = unpack_client_structures(array)
        if probed:
            pointers = [*structures]
            if request.size_of_secondary_data:
                pointers.append((request.secondary_data_buffer, request.size_of_secondary_data))
            for address, size in pointers:
                if not _probe(self.memory, address, size):
                    return STATUS_ACCESS_VIOLATION
        secondary = None
        if request.size_of_secondary_data:
            secondary = (request.secondary_data_buffer, request.size_of_secondary_data)
        for address, size in [*structures, *([secondary] if secondary else [])]:
            if not is_kernel_address(address) and size and not _readable(self.memory, address, size):
                raise self._access_violation(address)  # F27: lkmdtel copies from the bad user pointer
        return self.module.create(
            request.bugcheck_code,
            request.bugcheck_parameter,
            request.exclude_dmf_data,
            structures,
            secondary,
            Irql.PASSIVE_LEVEL,  # F31: the handler runs in the caller's thread at PASSIVE
        )

    def _read_caller_memory(self, address: int, size: int, *, probed: bool) -> bytes | int:
        """The client-structure array: captured after a probe (contract) or read raw (bfac434)."""
        if size == 0:
            return b""
        if probed and not _probe(self.memory, address, size):
            return STATUS_ACCESS_VIOLATION
        try:
            return self.memory.read(address, size)
        except PageFault:
            raise self._access_violation(address) from None

    def _access_violation(self, address: int) -> Bugcheck:
        instruction = self.module.image_base + 0x3000 + (zlib.crc32(b"IoctlHandler") & 0xFF0)
        return Bugcheck(
            SYSTEM_SERVICE_EXCEPTION,
            (STATUS_ACCESS_VIOLATION, instruction, self.module.image_base + 0x9F00, 0),
            f"F27: the IOCTL handler dereferenced the caller's unprobed pointer 0x{address:016X}",
        )


def _probe(memory: KernelMemory, address: int, size: int) -> bool:
    """ProbeForRead from a user caller: the range must be user-mode and readable."""
    return size == 0 or (not is_kernel_address(address + size - 1) and _readable(memory, address, size))


def _readable(memory: KernelMemory, address: int, size: int) -> bool:
    try:
        memory.read(address, size)
    except PageFault:
        return False
    return True

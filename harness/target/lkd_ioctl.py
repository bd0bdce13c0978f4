"""IOCTL_LIVEKERNELDUMP_CREATE: the module's own IOCTL and its packed input (DMF_FACTS.md F23-F25).

One layout for every target: the simulator unpacks what an application sent, the Windows target
packs the bytes lkdctl.exe sends. Kept apart from both so neither imports the other.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

FILE_DEVICE_UNKNOWN = 0x22
METHOD_BUFFERED = 0
FILE_WRITE_ACCESS = 2


def ctl_code(device_type: int, function: int, method: int, access: int) -> int:
    """CTL_CODE from the WDK's devioctl.h."""
    return (device_type << 16) | (access << 14) | (function << 2) | method


IOCTL_LIVEKERNELDUMP_CREATE = ctl_code(FILE_DEVICE_UNKNOWN, 4800, METHOD_BUFFERED, FILE_WRITE_ACCESS)
"""F23: 0x0022CB00."""

INPUT_FORMAT = "<IQBIQIQ"
"""F24: BugCheckCode, BugCheckParameter, ExcludeDmfData, NumberOfClientStructures,
ArrayOfClientStructures, SizeOfSecondaryData, SecondaryDataBuffer; packed to 1 byte, x64."""

INPUT_SIZE = struct.calcsize(INPUT_FORMAT)
"""F24: 37 bytes on x64 (25 on x86, which a 32-bit caller on 64-bit Windows fails with)."""

CLIENT_STRUCTURE_FORMAT = "<QI"
"""F20: LIVEKERNELDUMP_CLIENT_STRUCTURE {PVOID Address; ULONG Size}, packed: 12 bytes on x64."""

CLIENT_STRUCTURE_SIZE = struct.calcsize(CLIENT_STRUCTURE_FORMAT)


@dataclass(frozen=True)
class LiveKernelDumpCreateInput:
    """The fields of the 37-byte input, as the handler reads them."""

    bugcheck_code: int
    bugcheck_parameter: int
    exclude_dmf_data: int
    number_of_client_structures: int
    array_of_client_structures: int
    size_of_secondary_data: int
    secondary_data_buffer: int

    def pack(self) -> bytes:
        return struct.pack(
            INPUT_FORMAT,
            self.bugcheck_code,
            self.bugcheck_parameter,
            self.exclude_dmf_data,
            self.number_of_client_structures,
            self.array_of_client_structures,
            self.size_of_secondary_data,
            self.secondary_data_buffer,
        )

    @classmethod
    def unpack(cls, data: bytes) -> LiveKernelDumpCreateInput:
        """Read the first 37 bytes (more is accepted and ignored, F25); ValueError when shorter."""
        if len(data) < INPUT_SIZE:
            raise ValueError(f"input is {len(data)} bytes; the structure needs {INPUT_SIZE}")
        return cls(*struct.unpack_from(INPUT_FORMAT, data))


def pack_client_structures(structures: list[tuple[int, int]]) -> bytes:
    """An array of LIVEKERNELDUMP_CLIENT_STRUCTURE, as the caller lays it out in its memory."""
    return b"".join(struct.pack(CLIENT_STRUCTURE_FORMAT, address, size) for address, size in structures)


def unpack_client_structures(data: bytes) -> list[tuple[int, int]]:
    """(Address, Size) pairs from an array the handler read."""
    return [
        struct.unpack_from(CLIENT_STRUCTURE_FORMAT, data, offset)
        for offset in range(0, len(data) - CLIENT_STRUCTURE_SIZE + 1, CLIENT_STRUCTURE_SIZE)
    ]

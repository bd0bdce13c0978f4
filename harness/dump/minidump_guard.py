"""Checks a user-mode minidump ("MDMP") before the ``minidump`` package trusts it.

``minidump`` (PyPI) parses well-formed files well but believes every count and size it reads: a list
stream whose count is 2^32 makes it loop four billion times reading zeros past its chunk, and a
stream or string size of 4 GiB becomes a 4 GiB ``read()`` buffer. A handle's object-information
list is checked too: minidump 0.0.24 reads only its first node (it never sets ``NextInfo``), but a
list that returns to itself is malformed, and a version that follows it would never end. Rather
than patch the package, the harness checks the
structures it walks (MSDN "MINIDUMP_HEADER", "MINIDUMP_DIRECTORY" and the list streams, sizes as
the package reads them) and gives it a file object whose reads never ask for more than the file
holds. Every failure is a DumpFormatError naming the field and its file offset.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

from .errors import DumpFormatError

HEADER_SIZE = 32  # MINIDUMP_HEADER
DIRECTORY_SIZE = 12  # MINIDUMP_DIRECTORY {StreamType, DataSize, Rva}
HANDLE_DATA_STREAM = 12
OBJECT_INFO_SIZE = 12  # MINIDUMP_HANDLE_OBJECT_INFORMATION {NextInfoRva, InfoType, SizeOfInfo}

# StreamType -> (stream name, count format, offset of the count, bytes before the entries, entry size)
# as minidump reads them: it loops `count` times reading fixed-size entries from the stream's bytes.
LIST_STREAMS = {
    3: ("ThreadListStream", "<I", 0, 4, 48),
    4: ("ModuleListStream", "<I", 0, 4, 108),
    5: ("MemoryListStream", "<I", 0, 4, 16),
    8: ("ThreadExListStream", "<I", 0, 4, 64),
    9: ("Memory64ListStream", "<Q", 0, 16, 16),
    14: ("UnloadedModuleListStream", "<I", 8, 12, 24),
    16: ("MemoryInfoListStream", "<Q", 8, 16, 48),
    17: ("ThreadInfoListStream", "<I", 8, 12, 64),
}


class ClampedFile(io.RawIOBase):
    """A read-only file whose ``read(n)`` asks the OS for at most what is left before end of file,
    so no size read from the dump can size a buffer beyond the file itself."""

    def __init__(self, raw: io.BufferedReader, size: int) -> None:
        super().__init__()
        self._raw = raw
        self._size = size

    def read(self, size: int | None = -1) -> bytes:
        left = max(0, self._size - self._raw.tell())
        return self._raw.read(left if size is None or size < 0 or size > left else size)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()


def check_minidump(path: Path, data: bytes | memoryview, file_size: int) -> None:
    """Raise DumpFormatError for anything ``minidump`` would trust into a hang or a huge buffer."""

    def u32(offset: int) -> int:
        return struct.unpack_from("<I", data, offset)[0]

    if file_size < HEADER_SIZE:
        reason = f"file is 0x{file_size:x} bytes, shorter than the 0x20-byte MINIDUMP_HEADER"
        raise DumpFormatError(path, "MINIDUMP_HEADER", 0, reason)
    count, directory = u32(8), u32(12)
    if directory + count * DIRECTORY_SIZE > file_size:
        reason = (
            f"{count} stream directory entries at 0x{directory:x} run past end of file (size 0x{file_size:x})"
        )
        raise DumpFormatError(path, "MINIDUMP_HEADER.NumberOfStreams", 8, reason)
    for index in range(count):
        entry = directory + index * DIRECTORY_SIZE
        stream_type, size, rva = struct.unpack_from("<III", data, entry)
        if rva + size > file_size:
            reason = (
                f"stream type {stream_type} [0x{rva:x}+0x{size:x}] runs past end of file "
                f"(size 0x{file_size:x})"
            )
            raise DumpFormatError(path, f"MINIDUMP_DIRECTORY[{index}].Location", entry + 4, reason)
        if stream_type in LIST_STREAMS:
            _check_list(path, data, stream_type, rva, size)
        elif stream_type == HANDLE_DATA_STREAM:
            _check_handles(path, data, rva, size, file_size)


def _check_list(path: Path, data: bytes | memoryview, stream_type: int, rva: int, size: int) -> None:
    name, fmt, count_at, header, entry = LIST_STREAMS[stream_type]
    width = struct.calcsize(fmt)
    count = struct.unpack_from(fmt, data, rva + count_at)[0] if size >= count_at + width else 0
    if count and header + count * entry > size:
        reason = (
            f"{count} entries of 0x{entry:x} bytes after a 0x{header:x}-byte header do not fit the "
            f"stream's 0x{size:x} bytes"
        )
        raise DumpFormatError(path, f"{name}.NumberOf*", rva + count_at, reason)


def _check_handles(path: Path, data: bytes | memoryview, rva: int, size: int, file_size: int) -> None:
    """MINIDUMP_HANDLE_DATA_STREAM: the descriptors fit, and each ObjectInfoRva chain ends."""
    if size < 16:
        return
    descriptor_size, count = struct.unpack_from("<II", data, rva + 4)
    entry = 32 if descriptor_size == 32 else 40  # as minidump decides between the two layouts
    if 16 + count * entry > size:
        reason = f"{count} handle descriptors of 0x{entry:x} bytes do not fit the stream's 0x{size:x} bytes"
        raise DumpFormatError(path, "MINIDUMP_HANDLE_DATA_STREAM.NumberOfDescriptors", rva + 8, reason)
    if entry != 40:
        return
    for index in range(count):
        at = rva + 16 + index * entry + 32  # MINIDUMP_HANDLE_DESCRIPTOR_2.ObjectInfoRva
        seen: set[int] = set()
        node = struct.unpack_from("<I", data, at)[0]
        while node:
            field = f"MINIDUMP_HANDLE_DESCRIPTOR_2[{index}].ObjectInfoRva chain"
            if node in seen:
                raise DumpFormatError(path, field, at, f"the chain returns to 0x{node:x}: a loop")
            if node + OBJECT_INFO_SIZE > file_size:
                reason = f"object information at 0x{node:x} runs past end of file (size 0x{file_size:x})"
                raise DumpFormatError(path, field, at, reason)
            seen.add(node)
            at, node = node, struct.unpack_from("<I", data, node)[0]

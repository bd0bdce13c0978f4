"""Walking the secondary-data ("DumpBlob") chain that follows SizeOfDump in a triage dump.

DUMP_FORMAT.md, "Secondary data": a 0x10-byte file header ("DumpBlob", HeaderSize, BuildNumber), then
blob headers with no count field. Each next header sits at hdr + HeaderSize + PrePad + DataSize +
PostPad, exactly as the file says: real files do not align headers to 8 in absolute terms (the chain
starts at SizeOfDump, which is 4 mod 8 in both fixtures, and Windows pads DataSize + PostPad to a
multiple of 8), so the walk never rounds. The chain ends at end of file or at a header whose
HeaderSize < 0x20; zero-GUID, zero-size blobs in the middle are ordinary entries.
"""

from __future__ import annotations

import ctypes
import uuid
from collections.abc import Callable
from pathlib import Path

from . import layout as L
from .errors import DumpFormatError
from .records import Blob

ReadAt = Callable[[int, int], bytes]  # (file offset, size) -> bytes


def walk_blob_chain(path: Path, read_at: ReadAt, start: int, file_size: int) -> tuple[list[Blob], int]:
    """The blobs after ``start`` (= SizeOfDump) and the file offset where the walk stopped.

    No "DumpBlob" file header at ``start`` means no secondary data: ``([], start)``.
    """
    if file_size - start < L.DUMP_BLOB_FILE_HEADER_SIZE:
        return [], start
    file_header = L.DUMP_BLOB_FILE_HEADER.from_buffer_copy(read_at(start, L.DUMP_BLOB_FILE_HEADER_SIZE))
    if bytes(file_header.Signature) != L.DUMP_BLOB_SIGNATURE:
        return [], start
    if file_header.HeaderSize < L.DUMP_BLOB_FILE_HEADER_SIZE:
        raise DumpFormatError(
            path,
            "DUMP_BLOB_FILE_HEADER.HeaderSize",
            start + L.DUMP_BLOB_FILE_HEADER.HeaderSize.offset,
            f"0x{file_header.HeaderSize:x} is smaller than the 0x10-byte file header itself",
        )
    blobs: list[Blob] = []
    pos = start + file_header.HeaderSize
    while file_size - pos >= ctypes.sizeof(L.u32):
        header_size = int.from_bytes(read_at(pos, 4), "little")
        if header_size < L.DUMP_BLOB_HEADER_SIZE:
            break  # the documented end marker
        blob, pos = _read_blob(path, read_at, pos, header_size, file_size)
        blobs.append(blob)
    return blobs, pos


def _read_blob(path: Path, read_at: ReadAt, pos: int, header_size: int, file_size: int) -> tuple[Blob, int]:
    """Decode the blob header at ``pos``; return the blob and the offset of the next header."""
    if pos + header_size > file_size:
        raise DumpFormatError(
            path,
            "DUMP_BLOB_HEADER.HeaderSize",
            pos,
            f"blob header [0x{pos:x}+0x{header_size:x}] runs past end of file (size 0x{file_size:x})",
        )
    header = L.DUMP_BLOB_HEADER.from_buffer_copy(read_at(pos, L.DUMP_BLOB_HEADER_SIZE))
    data_offset = pos + header_size + header.PrePad
    data_end = data_offset + header.DataSize
    guid = uuid.UUID(bytes_le=bytes(header.Tag))
    if data_end > file_size:
        raise DumpFormatError(
            path,
            "DUMP_BLOB_HEADER.DataSize",
            pos + L.DUMP_BLOB_HEADER.DataSize.offset,
            f"blob {guid} data [0x{data_offset:x}+0x{header.DataSize:x}] (PrePad 0x{header.PrePad:x}) "
            f"runs past end of file (size 0x{file_size:x})",
        )
    next_pos = data_end + header.PostPad
    if next_pos > file_size:
        raise DumpFormatError(
            path,
            "DUMP_BLOB_HEADER.PostPad",
            pos + L.DUMP_BLOB_HEADER.PostPad.offset,
            f"blob {guid} padding ends at 0x{next_pos:x}, past end of file (size 0x{file_size:x})",
        )
    return Blob(guid=guid, data_offset=data_offset, size=header.DataSize), next_pos

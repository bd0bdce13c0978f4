"""Opening Windows dump files: ``open_dump`` picks the reader by signature; ``KernelDump`` reads
64-bit kernel dumps ("PAGEDU64") through a read-only mmap.

The file is never read whole: every accessor slices the mmap for exactly the bytes it needs and
returns them as ``bytes``, so a 2 GB live dump costs what is looked at (tests/test_dump_reader.py
holds this with tracemalloc). What is decoded on open is small and checked there (DUMP_FORMAT.md):
the header, TRIAGE_DUMP64, the data-block table and the DumpBlob chain; the driver list is decoded
on first use.

Triage dumps (DumpType 4) are read completely. Bitmap and full dumps (DumpType 5, 6, 1) are read by
``memory.MemoryDump``, a subclass that ``open_dump`` picks by DumpType; ``KernelDump(path)`` itself
opens them for their header only (``triage`` None; no data blocks, drivers or secondary data).
"""

from __future__ import annotations

import mmap
import os
from functools import cached_property
from pathlib import Path
from types import TracebackType

from . import layout as L
from . import triage as T
from .blocks import BlockIndex
from .debugger import DebuggerView, check_sections, debugger_view
from .errors import DumpFormatError
from .records import Blob, DataBlock, Driver, DumpHeader64, TriageDump64
from .secondary import walk_blob_chain
from .usermode import UserModeMinidump


def _signature_error(path: Path, found: bytes, expected: str) -> DumpFormatError:
    if not found:
        return DumpFormatError(path, "DUMP_HEADER64.Signature", 0, "file is empty (0 bytes)")
    if found == L.SIGNATURE_32:
        reason = "32-bit kernel dumps ('PAGEDUMP', DUMP_HEADER32) are not supported yet"
        return DumpFormatError(path, "DUMP_HEADER64.ValidDump", 4, reason)
    reason = f"expected {expected}, found {found!r} (hex {found.hex()})"
    if found.startswith(L.PAGE) and len(found) == len(L.SIGNATURE_64):
        return DumpFormatError(path, "DUMP_HEADER64.ValidDump", 4, reason)
    return DumpFormatError(path, "DUMP_HEADER64.Signature", 0, reason)


class KernelDump:
    """An open 64-bit kernel dump. Use as a context manager, or call ``close()``."""

    kind = "kernel"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.file_size = os.stat(self.path).st_size
        with self.path.open("rb") as f:
            signature = f.read(len(L.SIGNATURE_64))
            if signature != L.SIGNATURE_64:
                raise _signature_error(self.path, signature, "'PAGEDU64' (64-bit kernel dump)")
            if self.file_size < L.HEADER64_SIZE:
                raise DumpFormatError(
                    self.path,
                    "DUMP_HEADER64",
                    0,
                    f"file is 0x{self.file_size:x} bytes, shorter than the 0x{L.HEADER64_SIZE:x}-byte header",
                )
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            self._load()
        except BaseException:
            self.close()
            raise

    def _load(self) -> None:
        self.raw_header = L.DUMP_HEADER64.from_buffer_copy(self._map, 0)
        self.header = DumpHeader64.from_raw(self.raw_header)
        self.triage: TriageDump64 | None = None
        self.data_blocks: list[DataBlock] = []
        self.secondary_data: list[Blob] = []
        self.blob_chain_end: int | None = None
        if self.header.dump_type == L.DUMP_TYPE_TRIAGE:
            self._load_triage()
        self._index = BlockIndex(self.data_blocks)

    def _load_triage(self) -> None:
        end = L.TRIAGE_DUMP64_OFFSET + L.TRIAGE_DUMP64_SIZE
        if self.file_size < end:
            raise DumpFormatError(
                self.path,
                "TRIAGE_DUMP64",
                L.TRIAGE_DUMP64_OFFSET,
                f"file is 0x{self.file_size:x} bytes, too short for TRIAGE_DUMP64 (ends at 0x{end:x})",
            )
        triage = TriageDump64.from_raw(L.TRIAGE_DUMP64.from_buffer_copy(self._map, L.TRIAGE_DUMP64_OFFSET))
        T.check_validity(self.path, self.read_file, triage, self.file_size)
        self.data_blocks = T.read_data_blocks(self.path, self.read_file, triage, self.file_size)
        T.check_driver_list(self.path, triage)
        check_sections(self.path, self.read_file, triage, self.header)
        self.secondary_data, self.blob_chain_end = walk_blob_chain(
            self.path, self.read_file, triage.size_of_dump, self.file_size
        )
        self.triage = triage

    # --- raw access ---------------------------------------------------------------------------------
    def read_file(self, offset: int, size: int) -> bytes:
        """``size`` bytes at file ``offset`` (a copy of that range only); raises past end of file."""
        if offset < 0 or size < 0 or offset + size > self.file_size:
            raise ValueError(
                f"file range [0x{offset:x}+0x{size:x}] is outside the file (size 0x{self.file_size:x})"
            )
        return self._map[offset : offset + size]

    # --- data blocks --------------------------------------------------------------------------------
    def block_containing(self, address: int, size: int = 1) -> DataBlock | None:
        """The first block (file order) wholly containing [address, address + size), or None."""
        return self._index.containing(address, size)

    def read_virtual(self, address: int, size: int) -> bytes:
        """The bytes captured at kernel VA [address, address + size); one block must hold them all.

        Raises AddressNotInDump (naming the nearest blocks) when no block covers the whole range.
        """
        if size < 0:
            raise ValueError(f"negative size {size}")
        block = self._index.require(address, size)
        return self.read_file(block.offset + (address - block.address), size)

    def block_bytes(self, block: DataBlock) -> bytes:
        """All bytes of one data block."""
        return self.read_file(block.offset, block.size)

    # --- drivers and secondary data -----------------------------------------------------------------
    @cached_property
    def drivers(self) -> list[Driver]:
        """The triage driver list (empty for non-triage dumps), decoded on first use."""
        if self.triage is None:
            return []
        return T.read_drivers(self.path, self.read_file, self.triage)

    @cached_property
    def debugger(self) -> DebuggerView | None:
        """Registers, current thread and process, stack, unloaded drivers and debugger data, as a
        debugger opens them (None for non-triage dumps)."""
        if self.triage is None:
            return None
        return debugger_view(self.read_file, self.triage, self.header)

    def blob_bytes(self, blob: Blob) -> bytes:
        """The data of one secondary-data blob."""
        return self.read_file(blob.data_offset, blob.size)

    def blobs_with_guid(self, guid: object) -> list[Blob]:
        """Every blob tagged ``guid`` (a uuid.UUID or its string form), in chain order."""
        wanted = str(guid).lower()
        return [b for b in self.secondary_data if str(b.guid) == wanted]

    # --- lifetime -----------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._map.closed

    def close(self) -> None:
        self._map.close()

    def __enter__(self) -> KernelDump:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"KernelDump({str(self.path)!r}, {self.header.dump_type_name}, {len(self.data_blocks)} blocks)"


# DumpType -> the reader of kernel dumps that hold memory by page rather than triage data; memory.py
# registers MemoryDump for DumpType 1, 5 and 6. Any other DumpType opens as KernelDump.
KERNEL_READERS: dict[int, type[KernelDump]] = {}


def open_dump(path: str | Path) -> KernelDump | UserModeMinidump:
    """Open a dump by its signature: "PAGEDU64" kernel dump (the reader its DumpType registered in
    KERNEL_READERS, else KernelDump), or "MDMP" user-mode minidump.

    Anything else, including 32-bit "PAGEDUMP" kernel dumps, raises DumpFormatError naming the
    8 bytes found.
    """
    path = Path(path)
    with path.open("rb") as f:
        signature = f.read(len(L.SIGNATURE_64))
        f.seek(L.header_field_offset("DumpType"))
        dump_type = int.from_bytes(f.read(4), "little")
    if signature == L.SIGNATURE_64:
        return KERNEL_READERS.get(dump_type, KernelDump)(path)
    if signature.startswith(L.SIGNATURE_MDMP):
        return UserModeMinidump(path)
    raise _signature_error(path, signature, "'PAGEDU64' (kernel dump) or 'MDMP' (user-mode minidump)")

"""Writing x64 kernel memory dumps (MEMORY.DMP, DumpType 5; full live dumps, DumpType 6) for the
simulated machine: kernel virtual memory laid out in physical pages behind real 4-level page tables.

The layout follows DUMP_FORMAT.md ("Bitmap dumps") and the Intel SDM vol. 3A 4.5 (4-level paging):

- DUMP_HEADER64 as the triage writer builds it (``writer.header_for``: "PAGE" fill, bugcheck,
  build, context record), with DumpType 5 or 6, DirectoryTableBase = the PML4's frame, and
  PhysicalMemoryBlock describing the machine's RAM as one run (what Windows fills in; the bitmap
  reader does not need it);
- BITMAP_DUMP64 at 0x2000 with the "SDMP" signature (a kernel, "summary", bitmap: only the pages
  the kernel uses are present; "FDMP" is the complete-memory flavour), the bitmap of present page
  frames, and the present pages in frame order from the page-aligned FirstPage;
- the "DumpBlob" secondary-data chain right after the last page (DUMP_FORMAT.md, unverified on a
  real file; it is where the reader looks);
- page tables: PML4 at ``directory_table_base`` with the Windows self-map entry (PML4[0x1ED] points
  at the PML4 itself), PDPTs, PDs and PTs as needed. VA chunks of 2 MiB named in
  ``large_page_ranges`` are mapped by one PDE with PS set (a 2 MiB page on a 2 MiB-aligned frame
  block, as Windows maps nonpaged pool on machines with enough memory); everything else by 4 KiB
  PTEs. Data pages are NX (bit 63), as pool pages are; tables are present and writable.

Only pages that hold bytes are present: the rest of a large page is a hole in the bitmap, as is
every frame that is not a table or a data page. DumpType 1 (run-based) is not written: a run-based
dump stores every page of each run, which is a complete memory dump, and its 42 runs cannot
describe the scattered frames a kernel dump holds.

Independent of ``tests/memory_dump_gen.py``, which stays the cross-check's generator (its own
offsets and rank arithmetic); this writer is proven by the reader and by kdmp-parser reading what
it writes (tests/test_memory_writer.py).
"""

from __future__ import annotations

import ctypes
import os
import struct
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import layout as L
from .writer import TriageDumpSpec, blob_chain, check_spec, header_for

PAGE = L.PAGE_SIZE
LARGE = 0x20_0000  # a 2 MiB page
FRAMES_PER_LARGE = LARGE // PAGE
P, RW, ACCESSED, DIRTY, PS = 1 << 0, 1 << 1, 1 << 5, 1 << 6, 1 << 7
NX = 1 << 63
TABLE_FLAGS = P | RW | ACCESSED
DATA_FLAGS = P | RW | ACCESSED | DIRTY | NX
SELF_MAP_INDEX = 0x1ED  # Windows 10's self-map slot before 1607 randomised it; any slot reads the same
LOW_RESERVED_FRAMES = 0x100  # the first 1 MiB holds no kernel data in this layout
FIRST_LARGE_FRAME = 0x4_0000  # 1 GiB: 2 MiB-aligned frame blocks for large pages start here
FIRST_SMALL_FRAME = 0x1_0000  # 256 MiB: 4 KiB data frames start here
KERNEL_DUMP_SIGNATURE = b"SDMP"
DEFAULT_RAM = 4 << 30


@dataclass
class MemoryDumpSpec:
    """A kernel memory dump to write: the header's fields and the kernel memory it holds.

    ``header`` gives the header fields as for a triage dump (bugcheck, build, time, thread context,
    ``live``) and the secondary data; its ``data_blocks`` and ``drivers`` are not written, since
    a memory dump holds pages, not triage data. ``memory`` is (kernel VA, bytes): every range the
    dump must map; ranges may share pages. ``large_page_ranges`` are VA ranges whose 2 MiB chunks
    are mapped with 2 MiB pages.
    """

    header: TriageDumpSpec
    memory: Sequence[tuple[int, bytes]]
    large_page_ranges: Sequence[tuple[int, int]] = ()
    dump_type: int = L.DUMP_TYPE_BITMAP_FULL
    physical_memory: int = DEFAULT_RAM
    """Bytes of RAM the bitmap describes (the machine's memory size)."""


@dataclass
class _Layout:
    """Physical frames: table and data pages by frame number, and the mapping built over them."""

    dtb_frame: int
    frames: dict[int, bytearray] = field(default_factory=dict)
    next_table: int = 0
    next_small: int = FIRST_SMALL_FRAME
    next_large: int = FIRST_LARGE_FRAME
    large_chunks: dict[int, int] = field(default_factory=dict)  # VA >> 21 -> first frame

    def new_table(self) -> int:
        frame = self.next_table
        self.next_table += 1
        if self.next_table > FIRST_SMALL_FRAME:
            raise ValueError("page tables ran into the data frames: too many tables")
        self.frames[frame] = bytearray(PAGE)
        return frame

    def entry(self, table: int, index: int) -> int:
        return struct.unpack_from("<Q", self.frames[table], index * 8)[0]

    def set_entry(self, table: int, index: int, value: int) -> None:
        struct.pack_into("<Q", self.frames[table], index * 8, value)

    def child(self, table: int, index: int) -> int:
        """The table an entry points at, created (and linked) when absent."""
        value = self.entry(table, index)
        if value & P:
            return (value & 0x000F_FFFF_FFFF_F000) >> L.PAGE_SHIFT
        frame = self.new_table()
        self.set_entry(table, index, (frame << L.PAGE_SHIFT) | TABLE_FLAGS)
        return frame


def _virtual_pages(memory: Sequence[tuple[int, bytes]]) -> dict[int, bytearray]:
    """Page-sized contents by virtual page number, merging ranges that share a page."""
    pages: dict[int, bytearray] = {}
    for address, data in memory:
        if address >> 47 != 0x1FFFF or address + len(data) > 1 << 64:
            raise ValueError(f"0x{address:x}+0x{len(data):x} is not a canonical kernel range")
        position, end = address, address + len(data)
        while position < end:
            take = min(end, (position | (PAGE - 1)) + 1) - position
            page = pages.setdefault(position >> L.PAGE_SHIFT, bytearray(PAGE))
            start = position & (PAGE - 1)
            page[start : start + take] = data[position - address : position - address + take]
            position += take
    return pages


def _map(layout: _Layout, va: int, large_chunks: set[int]) -> int:
    """Map the 4 KiB virtual page at ``va`` (creating tables); return its physical frame."""
    indexes = [(va >> shift) & 0x1FF for shift in (39, 30, 21, 12)]
    pdpt = layout.child(layout.dtb_frame, indexes[0])
    pd = layout.child(pdpt, indexes[1])
    chunk = va >> 21
    if chunk in large_chunks:
        first = layout.large_chunks.get(chunk)
        if first is None:
            first = layout.large_chunks[chunk] = layout.next_large
            layout.next_large += FRAMES_PER_LARGE
            layout.set_entry(pd, indexes[2], (first << L.PAGE_SHIFT) | DATA_FLAGS | PS)
        return first + indexes[3]
    pt = layout.child(pd, indexes[2])
    frame = layout.next_small
    layout.next_small += 1
    layout.set_entry(pt, indexes[3], (frame << L.PAGE_SHIFT) | DATA_FLAGS)
    return frame


def build_physical(spec: MemoryDumpSpec) -> tuple[int, dict[int, bytes]]:
    """The DTB and every present frame's bytes (tables included) for ``spec``."""
    dtb = spec.header.directory_table_base
    if dtb & 0xFFF or not LOW_RESERVED_FRAMES <= dtb >> L.PAGE_SHIFT < FIRST_SMALL_FRAME // 2:
        raise ValueError(f"directory_table_base 0x{dtb:x} must be a page in [1 MiB, 128 MiB)")
    layout = _Layout(dtb_frame=dtb >> L.PAGE_SHIFT, next_table=dtb >> L.PAGE_SHIFT)
    layout.new_table()  # the PML4
    layout.set_entry(layout.dtb_frame, SELF_MAP_INDEX, dtb | TABLE_FLAGS | NX)
    large_chunks = {
        chunk for start, end in spec.large_page_ranges for chunk in range(start >> 21, ((end - 1) >> 21) + 1)
    }
    data: dict[int, bytes] = {}
    for vpn, contents in sorted(_virtual_pages(spec.memory).items()):
        data[_map(layout, vpn << L.PAGE_SHIFT, large_chunks)] = bytes(contents)
    frames = {frame: bytes(table) for frame, table in layout.frames.items()} | data
    limit = spec.physical_memory >> L.PAGE_SHIFT
    if frames and max(frames) >= limit:
        raise ValueError(f"frame 0x{max(frames):x} is past the described RAM (0x{limit:x} frames)")
    return dtb, frames


def _bitmap(frames: dict[int, bytes], described: int) -> bytes:
    bits = bytearray((described + 7) // 8)
    for frame in frames:
        bits[frame >> 3] |= 1 << (frame & 7)
    return bytes(bits)


def _header(spec: MemoryDumpSpec, dtb: int, file_size: int) -> bytes:
    header = header_for(spec.header, 0, file_size)
    header.DumpType = spec.dump_type
    header.DirectoryTableBase = dtb
    raw = bytearray(bytes(header))
    described = spec.physical_memory >> L.PAGE_SHIFT
    struct.pack_into("<I4xQQQ", raw, 0x88, 1, described, 0, described)  # PhysicalMemoryBlock: one run
    page_fill = int.from_bytes(L.PAGE, "little")
    attributes = L.ATTR_LIVE_DUMP_GENERATED_DUMP if spec.header.live else page_fill
    struct.pack_into("<I", raw, L.DUMP_HEADER64.Attributes.offset, attributes)
    struct.pack_into("<I", raw, L.DUMP_HEADER64.MiniDumpFields.offset, page_fill)  # triage fields only
    return bytes(raw)


def write_memory_dump(path: str | Path, spec: MemoryDumpSpec) -> Path:
    """Write ``spec`` as a bitmap kernel memory dump at ``path`` (temp file + rename); return it."""
    if spec.dump_type not in (L.DUMP_TYPE_BITMAP_FULL, L.DUMP_TYPE_BITMAP_KERNEL):
        raise ValueError(f"dump_type {spec.dump_type}: only bitmap dumps (5, 6) are written")
    path = Path(path)
    check_spec(spec.header)
    dtb, frames = build_physical(spec)
    described = spec.physical_memory >> L.PAGE_SHIFT
    bitmap = _bitmap(frames, described)
    first_page = -(-(L.BITMAP_DUMP_OFFSET + L.BITMAP_DUMP64_SIZE + len(bitmap)) // PAGE) * PAGE
    head = L.BITMAP_DUMP64()
    head.Signature = (L.u8 * 4)(*KERNEL_DUMP_SIGNATURE)
    head.ValidDump = (L.u8 * 4)(*L.BITMAP_VALID_DUMP)
    head.FirstPage, head.TotalPresentPages, head.Pages = first_page, len(frames), described
    blobs = blob_chain(spec.header)
    data_end = first_page + len(frames) * PAGE
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(_header(spec, dtb, data_end + len(blobs)))
            f.write(bytes(head)[: ctypes.sizeof(head)])
            f.write(bitmap)
            f.write(bytes(first_page - f.tell()))
            for frame in sorted(frames):
                f.write(frames[frame])
            f.write(blobs)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


__all__ = ["MemoryDumpSpec", "build_physical", "write_memory_dump"]

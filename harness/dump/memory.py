"""Kernel memory dumps: DumpType 1 (full, run-based), 5 (bitmap full) and 6 (bitmap kernel; what
full live dumps and Task Manager write), read by page through a read-only mmap.

``MemoryDump`` is a ``KernelDump`` (same header, ``read_file``, ``describe``, context manager), so
code written against triage dumps reads these too: ``read_virtual(address, size)`` translates
through the x64 page tables rooted at DirectoryTableBase (pagewalk.py) and reads the pages from the
file (physical.py), raising ``PageNotInDump`` (an ``AddressNotInDump``) with the paging level and
entry value where the walk stops. ``read_u64`` / ``try_read_u64`` take an array of virtual
addresses and return an array of values: the same walk, vectorised with NumPy.

Nothing reads the file whole: opening reads the 0x2000-byte header, BITMAP_DUMP64 and the bitmap
(2 MiB for 64 GiB of RAM) or the run list, and checks every count and offset they hold against the
file's real size before anything is sized by them. Secondary data ("DumpBlob") is looked for right
after the last stored page (DUMP_FORMAT.md says so, unverified against a real file).
"""

from __future__ import annotations

import mmap
import struct
from typing import Any

import numpy as np

from . import layout as L
from .errors import DumpFormatError, PageNotInDump
from .pagewalk import FAULT_NAMES, FAULT_OK, PageWalker
from .physical import PageIndex, PageRange, load_bitmap_index, load_run_index
from .reader import KERNEL_READERS, KernelDump
from .secondary import walk_blob_chain

MEMORY_DUMP_TYPES = (L.DUMP_TYPE_FULL, L.DUMP_TYPE_BITMAP_FULL, L.DUMP_TYPE_BITMAP_KERNEL)
SUMMARY_RANGES = 1000  # ranges listed in summary(); range_count gives the total
BATCH_SLICE = 8192  # addresses per vector pass of try_read_u64 (see there)
SORT_SHIFT = 21  # large batches are grouped by VA bits 36:21: by 2 MiB of virtual space


class MemoryDump(KernelDump):
    """An open DumpType 1, 5 or 6 kernel dump. ``pages`` says where each physical page is."""

    pages: PageIndex

    def _load(self) -> None:
        super()._load()
        # Page walks touch pages all over the file: readahead around each fault would read (and
        # keep resident) up to 128 KiB per 8-byte read. The header and bitmap, read first and
        # whole, are asked for in one go instead.
        self._map.madvise(mmap.MADV_RANDOM)
        self._map.madvise(mmap.MADV_WILLNEED, 0, min(self.file_size, _bitmap_end(self._map, self.file_size)))
        self._view = memoryview(self._map)
        if self.header.dump_type == L.DUMP_TYPE_FULL:
            self.pages = load_run_index(self.path, self.read_file, self.file_size)
            self.bitmap_signature: str | None = None
        else:
            self.pages = load_bitmap_index(self.path, self.read_file, self._view, self.file_size)
            self.bitmap_signature = self.read_file(L.BITMAP_DUMP_OFFSET, 4).decode("ascii")
        dtb = self.header.directory_table_base
        self._dtb_set = dtb is not None and self.header.machine_image_type == L.MACHINE_AMD64
        self.walker = PageWalker(self.pages, self._view, 0 if dtb is None else dtb, self.file_size)
        self.secondary_data, self.blob_chain_end = walk_blob_chain(
            self.path, self.read_file, self.pages.data_end, self.file_size
        )
        if self.blob_chain_end == self.pages.data_end and not self.secondary_data:
            self.blob_chain_end = None  # no "DumpBlob" header after the pages: no secondary data

    # --- physical memory -----------------------------------------------------------------------------
    def read_physical(self, address: int, size: int) -> bytes:
        """``size`` bytes of physical memory from ``address``; every page they touch must be present."""
        return self._read(address, size, None)

    # --- virtual memory ------------------------------------------------------------------------------
    def _require_dtb(self) -> None:
        """Virtual addresses need x64 page tables and their root (physical reads need neither)."""
        machine = self.header.machine_image_type
        if machine != L.MACHINE_AMD64:
            name = "unset" if machine is None else L.MACHINE_NAMES.get(machine, f"0x{machine:x}")
            raise DumpFormatError(
                self.path,
                "DUMP_HEADER64.MachineImageType",
                L.header_field_offset("MachineImageType"),
                f"{name}: only x64 (0x8664) page tables are translated; physical reads still work",
            )
        if self.header.directory_table_base is None:
            raise DumpFormatError(
                self.path,
                "DUMP_HEADER64.DirectoryTableBase",
                L.header_field_offset("DirectoryTableBase"),
                "unset (PAGE fill): virtual addresses cannot be translated",
            )

    def translate(self, address: int) -> int:
        """The physical address kernel VA ``address`` maps to (PageNotInDump says why not)."""
        self._require_dtb()
        return self.walker.translate(address)

    def read_virtual(self, address: int, size: int) -> bytes:
        """The bytes at kernel VA [address, address + size), page by page through the page tables."""
        if 0 < size <= L.PAGE_SIZE - (address & 0xFFF) and self._dtb_set and address >= 0:
            offset = self.walker.file_offset(address, size)  # within one page
            if offset is not None:
                return self._map[offset : offset + size]
        self._require_dtb()
        return self._read(address, size, self.walker)

    def _read(self, address: int, size: int, walker: PageWalker | None) -> bytes:
        if size < 0:
            raise ValueError(f"negative size {size}")
        if address < 0 or address + size > 1 << 64:
            raise ValueError(f"range [0x{address:x}+0x{size:x}] is outside the 64-bit address space")
        chunks = []
        position, end = address, address + max(size, 1)
        while position < end:
            take = min(end - position, L.PAGE_SIZE - (position & 0xFFF))
            physical = position if walker is None else walker.translate(position, end - position)
            offset = self.walker.physical_offset(physical)
            if offset is None:
                level = "physical" if walker is None else "page"
                reason = f"page frame {physical >> L.PAGE_SHIFT:#x} is not in the dump"
                if walker is not None:
                    reason += f" (VA 0x{position:x} maps to physical 0x{physical:x})"
                raise PageNotInDump(address, size, level, reason)
            chunks.append(self._map[offset : offset + take])
            position += take
        return b"".join(chunks)[:size]

    def try_read_u64(self, addresses: Any) -> tuple[np.ndarray, np.ndarray]:
        """The u64 at each kernel VA (0 where unreadable) and a fault code per address (0 = read;
        ``pagewalk.FAULT_NAMES`` names the others). Vectorised: no Python loop over addresses, except
        for the rare value that straddles two pages.

        Work goes in slices of BATCH_SLICE addresses: every temporary then stays in the CPU cache
        and in the allocator's free lists, where 100,000-element temporaries would each be fresh
        pages from the kernel (a page fault per 4 KiB, which costs more than the arithmetic).
        A larger batch is walked grouped by 2 MiB of virtual space (and answered in the caller's
        order): addresses in one group share their page table and the upper-level cache slot, so
        the walk stays in cache and TLB on a dump of many GiB instead of missing on every address.
        """
        self._require_dtb()
        va = np.asarray(addresses, dtype=np.uint64)
        shape, va = va.shape, va.ravel()
        values = np.zeros(len(va), dtype=np.uint64)
        fault = np.zeros(len(va), dtype=np.int8)
        order = None
        if len(va) > BATCH_SLICE:  # 16-bit keys sort by radix (stable), three times faster than u64
            key = ((va >> np.uint64(SORT_SHIFT)) & np.uint64(0xFFFF)).astype(np.uint16)
            order = np.argsort(key, kind="stable")
        ordered = va if order is None else va[order]
        for start in range(0, len(va), BATCH_SLICE):
            part = slice(start, start + BATCH_SLICE)
            values[part], fault[part] = self._read_u64_slice(ordered[part])
        if order is not None:  # back to the caller's order
            values[order], fault[order] = values.copy(), fault.copy()
        return values.reshape(shape), fault.reshape(shape)

    def _read_u64_slice(self, va: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        offsets, fault = self.walker.file_offsets_many(va)
        straddle = (fault == FAULT_OK) & ((va & np.uint64(0xFFF)) > np.uint64(0xFF8))
        if not straddle.any() and not fault.any():
            return self.walker.u64_at(offsets), fault
        values = np.zeros(len(va), dtype=np.uint64)
        simple = np.flatnonzero((fault == FAULT_OK) & ~straddle)
        values[simple] = self.walker.u64_at(offsets[simple])
        for i in np.flatnonzero(straddle).tolist():
            try:
                values[i] = int.from_bytes(self.read_virtual(int(va[i]), 8), "little")
            except PageNotInDump as error:
                fault[i] = next(code for code, name in FAULT_NAMES.items() if name == error.level)
        return values, fault

    def read_u64(self, addresses: Any) -> np.ndarray:
        """Like ``try_read_u64`` but every address must be readable: the first that is not raises its
        PageNotInDump, with the evidence of the scalar walk."""
        values, fault = self.try_read_u64(addresses)
        bad = np.flatnonzero(fault.ravel() != FAULT_OK)
        if len(bad):
            self.read_virtual(int(np.asarray(addresses, dtype=np.uint64).ravel()[bad[0]]), 8)
            raise AssertionError("the vector and scalar walks disagree")  # pragma: no cover
        return values

    # --- description ---------------------------------------------------------------------------------
    def page_ranges(self, limit: int) -> tuple[list[PageRange], int]:
        """The first ``limit`` runs of consecutive present page frames, and how many there are."""
        return self.pages.ranges(limit)

    def memory_summary(self, max_ranges: int = SUMMARY_RANGES) -> dict[str, Any]:
        ranges, count = self.page_ranges(max_ranges)
        return {
            "index": self.pages.kind,
            "bitmap_signature": self.bitmap_signature,
            "first_page_offset": self.pages.data_start,
            "described_pages": self.pages.described_pages,
            "present_pages": self.pages.present_pages,
            "range_count": count,
            "ranges": [
                {"first_pfn": r.first_pfn, "pages": r.count, "file_offset": r.file_offset} for r in ranges
            ],
            "data_end": self.pages.data_end,
        }

    # --- lifetime ------------------------------------------------------------------------------------
    def close(self) -> None:
        view = getattr(self, "_view", None)
        if view is not None:
            self.walker = None  # type: ignore[assignment]  # drops its reference to the view
            view.release()
        super().close()

    def __repr__(self) -> str:
        return (
            f"MemoryDump({str(self.path)!r}, {self.header.dump_type_name}, "
            f"{self.pages.present_pages:#x} of {self.pages.described_pages:#x} pages)"
        )


def _bitmap_end(view: mmap.mmap, file_size: int) -> int:
    """Where BITMAP_DUMP64's bitmap claims to end (a hint for readahead only; checked on load)."""
    if file_size < L.BITMAP_DUMP_OFFSET + L.BITMAP_DUMP64_SIZE:
        return file_size
    pages = struct.unpack_from("<Q", view, L.bitmap_field_offset("Pages"))[0]
    return (L.BITMAP_DUMP_OFFSET + L.BITMAP_DUMP64_SIZE + (pages + 7) // 8 + 0xFFF) & ~0xFFF


def _gib(pages: int) -> str:
    size = pages * L.PAGE_SIZE
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.4g} {unit}"
    return f"{size} bytes"


def memory_lines(dump: MemoryDump, max_rows: int) -> list[str]:
    """The describe() section of a memory dump: the index, present pages, the first ranges."""
    pages = dump.pages
    if pages.kind == "bitmap":
        title = f"Physical memory (BITMAP_DUMP64 {dump.bitmap_signature!r} at 0x{L.BITMAP_DUMP_OFFSET:x})"
    else:
        title = "Physical memory (PhysicalMemoryBlock runs, pages from 0x2000)"
    ranges, count = dump.page_ranges(max_rows)
    dtb = dump.header.directory_table_base
    lines = [
        title,
        f"  {'described':<22} {pages.described_pages:#x} page frames ({_gib(pages.described_pages)})",
        f"  {'present':<22} {pages.present_pages:#x} pages ({_gib(pages.present_pages)}) in {count} ranges",
        f"  {'pages stored':<22} [0x{pages.data_start:x}, 0x{pages.data_end:x})",
        f"  {'page tables (DTB)':<22} " + ("unset (PAGE)" if dtb is None else f"0x{dtb:x}"),
    ]
    if ranges:
        lines.append(f"  {'first frame':>14}  {'pages':>10}  {'file offset':>14}")
    for r in ranges:
        lines.append(f"  {r.first_pfn:>#14x}  {r.count:>#10x}  {r.file_offset:>#14x}")
    if count > len(ranges):
        lines.append(f"  ... {count - len(ranges)} more ranges")
    return lines


for _dump_type in MEMORY_DUMP_TYPES:
    KERNEL_READERS[_dump_type] = MemoryDump

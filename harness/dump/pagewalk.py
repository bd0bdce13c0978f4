"""x64 virtual-to-physical translation over a kernel memory dump, one address or an array of them.

The walk is the processor's (Intel SDM vol. 3A, 4.5 "4-level paging"): CR3 (DUMP_HEADER64.
DirectoryTableBase, low 12 bits = PCID, masked off) -> PML4E (VA bits 47:39) -> PDPTE (38:30, PS = a
1 GiB page) -> PDE (29:21, PS = a 2 MiB page) -> PTE (20:12). Each entry's address field is bits
51:12; for a large page only bits 51:30 / 51:21 are the frame (bit 12 is PAT there, not address).
An entry with P (bit 0) clear stops the walk, and the error says what Windows keeps in such an entry
(MMPTE_SOFTWARE as WinDbg's ``!pte`` decodes it): Prototype (bit 10) and Transition (bit 11) entries
are reported as such, never followed, since their frame is not mapped (kdmp-parser agrees).
The walk always takes at most four steps, so a page-table loop (an entry pointing at its own table,
as Windows' self-map does) cannot make it run forever; it only reads the same page again.

Both paths cache, per 2 MiB of virtual space, where its page table (or large page) is: the dump
is read-only, so a translation never changes, and a hit saves three of the four reads. What is
cached is a *step* (``STEP_*``): the file offset of the page table, or of a 2 MiB granule of a
large page whose 512 frames are all stored one after the other (then a read is one addition), or,
when some are missing, the granule's physical base. The scalar cache is a dict (cleared when it
reaches ``CACHE_LIMIT`` entries); the vector one is a direct-mapped table of ``TLB_SLOTS`` (what a
processor's paging-structure caches hold), so a batch that hits it reads one PTE per 4 KiB-page
address, and nothing but the value for an address in a large page.
"""

from __future__ import annotations

import struct

import numpy as np

from . import layout as L
from .errors import PageNotInDump
from .physical import PageIndex

ADDRESS_BITS = 0x000F_FFFF_FFFF_F000  # entry bits 51:12
PRESENT = 1 << 0
PAGE_SIZE_BIT = 1 << 7  # PS: in a PDPTE a 1 GiB page, in a PDE a 2 MiB page
PROTOTYPE = 1 << 10
TRANSITION = 1 << 11
LARGE_MASK = {30: 0x000F_FFFF_C000_0000, 21: 0x000F_FFFF_FFE0_0000}  # frame bits of 1 GiB / 2 MiB pages
LEVELS = (("PML4E", 39), ("PDPTE", 30), ("PDE", 21), ("PTE", 12))
CACHE_LIMIT = 1 << 16
TLB_BITS = 16
TLB_SLOTS = 1 << TLB_BITS  # the vector walk's upper-level cache (16 bytes a slot)

# Steps (cache values): an offset or base with the kind in its low two bits (both are 4 KiB-aligned)
STEP_TABLE, STEP_LARGE_FILE, STEP_LARGE_PHYSICAL = 0, 1, 2
STEP_KIND = 3
GRANULE = 0x1F_FFFF  # 2 MiB - 1
FIBONACCI = np.uint64(0x9E37_79B9_7F4A_7C15)

# Fault codes of the vector walk: 0 translated, 1-4 the level whose entry stopped it, then:
FAULT_OK, FAULT_PAGE, FAULT_NONCANONICAL = 0, 5, 6
FAULT_NAMES = {1: "PML4E", 2: "PDPTE", 3: "PDE", 4: "PTE", FAULT_PAGE: "page", FAULT_NONCANONICAL: "address"}

_U64 = struct.Struct("<Q")


def is_canonical(address: int) -> bool:
    top = address >> 47
    return top == 0 or top == 0x1FFFF


def describe_not_present(entry: int) -> str:
    """Why an entry with P clear maps nothing, in Windows' words (MMPTE_SOFTWARE / MMPTE_TRANSITION)."""
    if entry == 0:
        return "not present (zero entry: nothing was ever mapped here)"
    if entry & PROTOTYPE:
        return "not present: prototype entry (Prototype bit 10 set): the page is described by a prototype PTE"
    if entry & TRANSITION:
        frame = (entry & ADDRESS_BITS) >> L.PAGE_SHIFT
        return (
            f"not present: transition entry (Transition bit 11 set): page frame {frame:#x} is on a "
            "standby/modified list, not mapped"
        )
    protection, page_file = (entry >> 5) & 0x1F, entry >> 32
    if page_file:
        return (
            f"not present: paged out (software entry, Protection {protection:#x}, "
            f"PageFileHigh {page_file:#x})"
        )
    return f"not present: demand-zero or reserved (software entry, Protection {protection:#x})"


class PageWalker:
    """Translation over one dump's physical pages, with ``dtb`` the PML4 table's physical address."""

    def __init__(self, pages: PageIndex, buffer: memoryview | bytes, dtb: int, file_size: int) -> None:
        self.pages = pages
        self.dtb = dtb & ADDRESS_BITS
        self._buffer = buffer
        self._file_size = file_size
        self._cache: dict[int, int] = {}  # VA >> 21 -> (table or large-page base) << 1 | is_large
        self._steps: dict[int, int] = {}  # VA >> 21 -> step (file_offset's cache)
        self._tlb_key = np.zeros(TLB_SLOTS, dtype=np.uint64)  # VA >> 21, + 1 (0: an empty slot)
        self._tlb_step = np.zeros(TLB_SLOTS, dtype=np.int64)

    # --- physical ------------------------------------------------------------------------------------
    def physical_offset(self, physical: int) -> int | None:
        """File offset of one physical byte address, or None if its frame is not in the dump."""
        offset = self.pages.file_offset(physical >> L.PAGE_SHIFT)
        return None if offset is None else offset + (physical & 0xFFF)

    def _entry(self, va: int, size: int, level: str, entry_address: int) -> int:
        offset = self.physical_offset(entry_address)
        if offset is None:
            raise PageNotInDump(
                va,
                size,
                level,
                f"the table page holding this entry (page frame {entry_address >> L.PAGE_SHIFT:#x}, "
                f"entry at physical 0x{entry_address:x}) is not in the dump",
            )
        return _U64.unpack_from(self._buffer, offset)[0]

    # --- one address ---------------------------------------------------------------------------------
    def translate(self, va: int, size: int = 1) -> int:
        """The physical address of ``va``; PageNotInDump says which entry stopped the walk."""
        cached = self._cache.get(va >> 21)
        if cached is not None:
            if cached & 1:
                return (cached >> 1) | (va & 0x1F_FFFF)
            return self._last_step(va, size, cached >> 1)
        if not is_canonical(va):
            raise PageNotInDump(va, size, "address", "not canonical (bits 63:47 are not all equal)")
        table = self.dtb
        for level, shift in LEVELS[:3]:
            entry_address = table + ((va >> shift) & 0x1FF) * 8
            entry = self._entry(va, size, level, entry_address)
            if not entry & PRESENT:
                raise PageNotInDump(va, size, level, describe_not_present(entry), entry_address, entry)
            if shift != 39 and entry & PAGE_SIZE_BIT:
                base = (entry & LARGE_MASK[shift]) | (va & ((1 << shift) - 1) & ~0x1F_FFFF)
                self._remember(va, (base << 1) | 1)
                return base | (va & 0x1F_FFFF)
            table = entry & ADDRESS_BITS
        self._remember(va, table << 1)
        return self._last_step(va, size, table)

    def file_offset(self, va: int, size: int = 1) -> int | None:
        """File offset of the byte at ``va`` (None: its page is not in the dump; PageNotInDump:
        the walk stopped). The hot path of single reads: a cached step costs one addition (large
        page) or one entry read (page table)."""
        step = self._steps.get(va >> 21)
        if step is not None:
            kind = step & STEP_KIND
            if kind == STEP_LARGE_FILE:
                return step - STEP_LARGE_FILE + (va & GRANULE)
            if kind == STEP_TABLE:
                entry = _U64.unpack_from(self._buffer, step + ((va >> 9) & 0xFF8))[0]
                if entry & PRESENT:
                    offset = self.pages.file_offset((entry & ADDRESS_BITS) >> L.PAGE_SHIFT)
                    return None if offset is None else offset + (va & 0xFFF)
        physical = self.translate(va, size)  # raises where the walk stops; fills _cache
        cached = self._cache.get(va >> 21)
        if cached is not None:
            if len(self._steps) >= CACHE_LIMIT:
                self._steps.clear()
            self._steps[va >> 21] = self._step_of(cached >> 1, cached & 1)
        return self.physical_offset(physical)

    def _step_of(self, base: int, large: int) -> int:
        """The step for a page table at physical ``base`` (whose page is in the dump, as the walk
        that found it read it) or for the 2 MiB granule at ``base``."""
        if not large:
            offset = self.physical_offset(base)
            assert offset is not None, "the walk read this table"
            return offset | STEP_TABLE
        first = self.pages.file_offset(base >> L.PAGE_SHIFT)
        last = self.pages.file_offset((base >> L.PAGE_SHIFT) + 511)
        if first is not None and last is not None and last - first == 511 * L.PAGE_SIZE:
            return first | STEP_LARGE_FILE  # the ranks differ by 511: all 512 frames, in order
        return base | STEP_LARGE_PHYSICAL

    def _last_step(self, va: int, size: int, table: int) -> int:
        entry_address = table + ((va >> 12) & 0x1FF) * 8
        entry = self._entry(va, size, "PTE", entry_address)
        if not entry & PRESENT:
            raise PageNotInDump(va, size, "PTE", describe_not_present(entry), entry_address, entry)
        return (entry & ADDRESS_BITS) | (va & 0xFFF)

    def _remember(self, va: int, value: int) -> None:
        if len(self._cache) >= CACHE_LIMIT:
            self._cache.clear()
        self._cache[va >> 21] = value

    # --- many addresses ------------------------------------------------------------------------------
    def translate_many(self, va: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Physical addresses and fault codes (FAULT_NAMES) for an array of virtual addresses
        (every address walks from the PML4; reads go through ``file_offsets_many`` and its cache)."""
        va = np.asarray(va, dtype=np.uint64)
        top = va >> np.uint64(47)
        fault = np.where((top == 0) | (top == 0x1FFFF), FAULT_OK, FAULT_NONCANONICAL).astype(np.int8)
        live = np.flatnonzero(fault == FAULT_OK)
        step, _ = self._walk_upper(va[live], fault, live)
        physical = np.zeros(len(va), dtype=np.uint64)
        large = (step & np.uint64(1)) != 0
        walked = fault[live] == FAULT_OK
        at = live[walked & large]
        physical[at] = (step[walked & large] >> np.uint64(1)) | (va[at] & np.uint64(GRANULE))
        small = live[walked & ~large]
        index = (va[small] >> np.uint64(12)) & np.uint64(0x1FF)
        entry, found = self.gather_u64((step[walked & ~large] >> np.uint64(1)) + index * np.uint64(8))
        ok = found & ((entry & np.uint64(PRESENT)) != 0)
        fault[small[~ok]] = 4
        done = small[ok]
        physical[done] = (entry[ok] & np.uint64(ADDRESS_BITS)) | (va[done] & np.uint64(0xFFF))
        return physical, fault

    def file_offsets_many(self, va: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """File offset of the byte at each virtual address (-1 where unreadable) and a fault code
        per address (FAULT_NAMES): the vector walk, through the step cache (see the module docstring).
        """
        va = np.asarray(va, dtype=np.uint64)
        top = va >> np.uint64(47)
        fault = np.zeros(len(va), dtype=np.int8)
        key = (va >> np.uint64(21)) + np.uint64(1)
        # Fibonacci hashing: regions that differ only in their PML4 index must not share slots
        slot = ((key * FIBONACCI) >> np.uint64(64 - TLB_BITS)).view(np.int64)
        step = self._tlb_step[slot]
        miss = self._tlb_key[slot] != key
        canonical = (top == 0) | (top == 0x1FFFF)
        if not canonical.all():
            fault[~canonical] = FAULT_NONCANONICAL
            miss &= canonical
        missed = np.flatnonzero(miss)
        if len(missed):
            step[missed] = self._fill_steps(va[missed], fault, missed)
            filled = missed[fault[missed] == FAULT_OK]
            self._tlb_key[slot[filled]] = key[filled]
            self._tlb_step[slot[filled]] = step[filled]
        kind = step & STEP_KIND
        offsets = (step - kind) + (va & np.uint64(GRANULE)).view(np.int64)  # right for STEP_LARGE_FILE
        table = np.flatnonzero((kind == STEP_TABLE) & (fault == FAULT_OK))
        if len(table):
            table_offsets = step[table] + ((va[table] >> np.uint64(9)) & np.uint64(0xFF8)).view(np.int64)
            words = np.frombuffer(self._buffer, dtype=np.uint64, count=len(self._buffer) // 8)
            entry = words[table_offsets >> 3]
            present = (entry & np.uint64(PRESENT)) != 0
            fault[table[~present]] = 4
            at = self.pages.file_offsets((entry & np.uint64(ADDRESS_BITS)) >> np.uint64(L.PAGE_SHIFT))
            offsets[table] = at + (va[table] & np.uint64(0xFFF)).view(np.int64)
            fault[table[present & (at < 0)]] = FAULT_PAGE
        partial = np.flatnonzero((kind == STEP_LARGE_PHYSICAL) & (fault == FAULT_OK))
        if len(partial):
            physical = offsets[partial].view(np.uint64)
            at = self.pages.file_offsets(physical >> np.uint64(L.PAGE_SHIFT))
            offsets[partial] = at + (physical & np.uint64(0xFFF)).view(np.int64)
            fault[partial[at < 0]] = FAULT_PAGE
        offsets[fault != FAULT_OK] = -1
        return offsets, fault

    def u64_at(self, offsets: np.ndarray) -> np.ndarray:
        """The little-endian u64 at each file offset, which callers take inside a stored page (so
        each + 8 <= that page's end). Cut from the two aligned words it spans: two gathers from
        the same cache line and two shifts cost less than NumPy's unaligned gather. (NumPy
        defines a shift by 64 as 0, which makes the high word vanish for an aligned value.)
        The view of the map is made per call, so none outlives a read and keeps the map open."""
        words = np.frombuffer(self._buffer, dtype=np.uint64, count=len(self._buffer) // 8)
        index = offsets >> 3
        low = words[index]
        shift = (offsets & 7).view(np.uint64) << np.uint64(3)
        if not shift.any():
            return low
        high = words[index + 1]  # in the same stored page unless aligned: see above
        np.right_shift(low, shift, out=low)
        np.left_shift(high, np.uint64(64) - shift, out=high)
        return np.bitwise_or(low, high, out=low)

    def _fill_steps(self, va: np.ndarray, fault: np.ndarray, where: np.ndarray) -> np.ndarray:
        """The steps of ``va`` (= the addresses at ``where``) from a walk of the upper three levels;
        ``fault`` gets the level of each that stopped, PTE (4) where the page table is not in the
        dump (the scalar walk stops there too, reading the PTE)."""
        walked, ok = self._walk_upper(va, fault, where)
        steps = np.zeros(len(va), dtype=np.int64)
        large = ok & ((walked & np.uint64(1)) != 0)
        base = (walked >> np.uint64(1)).view(np.int64)
        small = np.flatnonzero(ok & ~large)
        table_at = self.pages.file_offsets(base[small].view(np.uint64) >> np.uint64(L.PAGE_SHIFT))
        steps[small] = table_at | STEP_TABLE
        fault[where[small[table_at < 0]]] = 4
        granule = np.flatnonzero(large)
        frame = base[granule].view(np.uint64) >> np.uint64(L.PAGE_SHIFT)
        first, last = self.pages.file_offsets(frame), self.pages.file_offsets(frame + np.uint64(511))
        whole = (first >= 0) & (last - first == 511 * L.PAGE_SIZE)
        steps[granule] = np.where(whole, first | STEP_LARGE_FILE, base[granule] | STEP_LARGE_PHYSICAL)
        return steps

    def _walk_upper(
        self, va: np.ndarray, fault: np.ndarray, where: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """PML4E, PDPTE, PDE for ``va`` (= the addresses at ``where``): the TLB value of each
        (page-table address << 1, or 2 MiB-granule base << 1 | 1) and which walks succeeded;
        ``fault`` gets the level of each that stopped."""
        value = np.zeros(len(va), dtype=np.uint64)
        active = np.arange(len(va))
        table = np.full(len(va), self.dtb, dtype=np.uint64)
        for code, (_, shift) in enumerate(LEVELS[:3], start=1):
            index = (va[active] >> np.uint64(shift)) & np.uint64(0x1FF)
            entry, found = self.gather_u64(table + index * np.uint64(8))
            ok = found & ((entry & np.uint64(PRESENT)) != 0)
            fault[where[active[~ok]]] = code
            active, entry = active[ok], entry[ok]
            if shift in LARGE_MASK:
                large = (entry & np.uint64(PAGE_SIZE_BIT)) != 0
                granule = va[active[large]] & np.uint64(((1 << shift) - 1) & ~0x1F_FFFF)
                base = (entry[large] & np.uint64(LARGE_MASK[shift])) | granule
                value[active[large]] = (base << np.uint64(1)) | np.uint64(1)
                active, entry = active[~large], entry[~large]
            table = entry & np.uint64(ADDRESS_BITS)
        value[active] = table << np.uint64(1)
        return value, fault[where] == FAULT_OK

    def gather_u64(self, physical: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The u64 at each physical address that is in the dump (0 elsewhere), and which were."""
        offsets = self.pages.file_offsets(physical >> np.uint64(L.PAGE_SHIFT))
        found = offsets >= 0
        if found.all():
            return gather_file_u64(
                self._buffer, offsets + (physical & np.uint64(0xFFF)).view(np.int64)
            ), found
        offsets = offsets[found] + (physical[found] & np.uint64(0xFFF)).view(np.int64)
        values = np.zeros(len(physical), dtype=np.uint64)
        values[found] = gather_file_u64(self._buffer, offsets)
        return values, found


def gather_file_u64(buffer: memoryview | bytes, offsets: np.ndarray) -> np.ndarray:
    """Little-endian u64s at arbitrary file offsets (each offset + 8 <= file size, checked by callers).

    Each value is cut from the two aligned words it spans (one, when aligned: every page-table entry),
    so a gather costs two word reads whatever the alignment; only a value in the file's last partial
    word is read byte by byte.
    """
    words = np.frombuffer(buffer, dtype=np.uint64, count=len(buffer) // 8)
    index = offsets >> 3
    shift = (offsets & 7).astype(np.uint64) << np.uint64(3)
    if not shift.any():
        return words[index]
    tail = index + 1 >= len(words)
    high = words[np.minimum(index + 1, len(words) - 1)]
    out = (words[index] >> shift) | ((high << (np.uint64(63) - shift)) << np.uint64(1))
    for i in np.flatnonzero(tail & (shift != 0)).tolist():
        out[i] = int.from_bytes(buffer[int(offsets[i]) : int(offsets[i]) + 8], "little")
    return out

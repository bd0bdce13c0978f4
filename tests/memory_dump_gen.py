"""Test tooling: writes x64 kernel memory dumps (DumpType 1, 5, 6) with real page tables, as sparse files.

Written from DUMP_FORMAT.md and the Intel SDM's 4-level paging, with its own offsets (``struct`` at
the documented positions, not ``harness.dump.layout``) and its own page-rank arithmetic (prefix sums
over the present ranges, not the reader's bitmap index), so a reader bug is not mirrored here. Only
page-table pages and the pages a plan asks to fill are written; every other present page is a hole
of the sparse file (it reads as zeros), so a 64 GiB-described / 16 GiB-present dump costs a few MiB
of disk.

The virtual layout, each region in its own PML4 slot so they never share a table:
- ``small``: 4 KiB pages, each mapping a random present frame (so PTEs are not in frame order);
- ``large``: 2 MiB pages, one per 2 MiB-aligned chunk of physical memory that overlaps a present
  range (partially present chunks are holes inside a large page);
- ``huge``: 1 GiB pages covering the whole described memory (mostly holes in a sparse dump);
- ``special``: one page table whose PTEs are zero, transition, prototype, paged-out, or point at an
  absent frame, plus a non-present PDE, a non-present PDPTE and a PML4E whose PDPT is not in the dump;
- the Windows self-map: PML4[0x1ED] points at the PML4 itself, a page-table loop.
"""

from __future__ import annotations

import random
import struct
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path

PAGE = 0x1000
P, RW, PS = 1 << 0, 1 << 1, 1 << 7
PROTOTYPE, TRANSITION = 1 << 10, 1 << 11
PAT_LARGE = 1 << 12  # PAT bit of a 2 MiB / 1 GiB entry (not part of the frame address)
SELF_MAP_INDEX = 0x1ED
REGION_PML4 = {"small": 0x140, "large": 0x150, "huge": 0x160, "special": 0x170, "absent_pdpt": 0x171}


def va_of(pml4: int, pdpt: int = 0, pd: int = 0, pt: int = 0, offset: int = 0) -> int:
    """The canonical kernel VA with these table indexes (PML4 index >= 0x100: upper half)."""
    va = (pml4 << 39) | (pdpt << 30) | (pd << 21) | (pt << 12) | offset
    return va | (0xFFFF << 48) if pml4 & 0x100 else va


@dataclass
class Plan:
    """What to generate. ``present`` holds sorted, disjoint (first_pfn, count) ranges."""

    described_pages: int
    present: list[tuple[int, int]]
    dump_type: int = 5
    seed: int = 1
    small_pages: int = 512  # 4 KiB mappings in the ``small`` region
    fill_all: bool = True  # random bytes in every present page (else only tables are written)
    fill_small: bool = False  # random bytes in the frames the ``small`` region maps (big sparse dumps)
    pat_on_large: bool = False  # set PAT (bit 12) in large/huge entries; kdmp-parser misreads those
    bugcheck: tuple[int, int, int, int, int] = (0x161, 0x1234, 0, 0, 0)


@dataclass
class Generated:
    """What the generator built: where things are, so tests know the right answers."""

    path: Path
    plan: Plan
    dtb: int
    first_page: int
    small: list[tuple[int, int]] = field(default_factory=list)  # (va, pfn) of each 4 KiB mapping
    large_va: int = 0  # start of the 2 MiB region; chunk i maps physical large_pa[i]
    large_pa: list[int] = field(default_factory=list)
    huge_va: int = 0  # start of the 1 GiB region; page i maps physical i << 30
    special: dict[str, int] = field(default_factory=dict)  # name -> VA whose walk must fail there

    def present_pfn(self, pfn: int) -> bool:
        i = bisect_right([first for first, _ in self.plan.present], pfn) - 1
        return i >= 0 and pfn < self.plan.present[i][0] + self.plan.present[i][1]


class _Builder:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.rng = random.Random(plan.seed)
        self.tables: dict[int, bytearray] = {}
        self.present = plan.present
        self._starts = [first for first, _ in plan.present]
        self._prefix = [0]
        for _, count in plan.present:
            self._prefix.append(self._prefix[-1] + count)
        self._free = self._frames()

    def _frames(self):
        """Table frames, from frame 0x1AD up where present (Windows' usual DTB is 0x1AD000)."""
        for first, count in self.present:
            yield from range(max(first, 0x1AD), first + count)
        for first, count in self.present:
            yield from range(first, min(first + count, 0x1AD))

    def new_table(self) -> int:
        pfn = next(self._free)
        self.tables[pfn] = bytearray(PAGE)
        return pfn

    def set_entry(self, table: int, index: int, value: int) -> None:
        struct.pack_into("<Q", self.tables[table], index * 8, value)

    def entry(self, table: int, index: int) -> int:
        return struct.unpack_from("<Q", self.tables[table], index * 8)[0]

    def child(self, table: int, index: int) -> int:
        """The table an entry points at, created (present, writable) on first use."""
        value = self.entry(table, index)
        if value & P:
            return (value & 0x000F_FFFF_FFFF_F000) >> 12
        pfn = self.new_table()
        self.set_entry(table, index, (pfn << 12) | P | RW)
        return pfn

    def rank(self, pfn: int) -> int:
        """Index of a present frame among all present frames (its slot in the file)."""
        i = bisect_right(self._starts, pfn) - 1
        assert i >= 0 and pfn < self._starts[i] + self.present[i][1], f"frame {pfn:#x} is not present"
        return self._prefix[i] + pfn - self._starts[i]

    def random_present_frame(self) -> int:
        slot = self.rng.randrange(self._prefix[-1])
        i = bisect_right(self._prefix, slot) - 1
        return self._starts[i] + slot - self._prefix[i]


def _build_tables(b: _Builder, out: Generated) -> None:
    plan = b.plan
    pml4 = b.new_table()
    out.dtb = pml4 << 12
    b.set_entry(pml4, SELF_MAP_INDEX, (pml4 << 12) | P | RW)
    large_flags = P | RW | PS | (PAT_LARGE if plan.pat_on_large else 0)
    # small: 4 KiB pages at random present frames
    region = REGION_PML4["small"]
    for n in range(plan.small_pages):
        pd = b.child(b.child(pml4, region), n >> 18)
        pt = b.child(pd, (n >> 9) & 0x1FF)
        pfn = b.random_present_frame()
        b.set_entry(pt, n & 0x1FF, (pfn << 12) | P | RW)
        out.small.append((va_of(region, n >> 18, (n >> 9) & 0x1FF, n & 0x1FF), pfn))
    # large: a 2 MiB page per 2 MiB chunk touching a present range
    chunks = sorted(
        {c for first, count in b.present for c in range(first >> 9, ((first + count - 1) >> 9) + 1)}
    )
    out.large_va = va_of(REGION_PML4["large"])
    for n, chunk in enumerate(chunks):
        pd = b.child(b.child(pml4, REGION_PML4["large"]), n >> 9)
        b.set_entry(pd, n & 0x1FF, (chunk << 21) | large_flags)
        out.large_pa.append(chunk << 21)
    # huge: 1 GiB pages over the described memory
    out.huge_va = va_of(REGION_PML4["huge"])
    pdpt = b.child(pml4, REGION_PML4["huge"])
    for n in range(min(512, max(2, (plan.described_pages + 0x3FFFF) >> 18))):  # one past memory at least
        b.set_entry(pdpt, n, (n << 30) | large_flags)
    _special(b, pml4, out)


def _special(b: _Builder, pml4: int, out: Generated) -> None:
    region = REGION_PML4["special"]
    pdpt = b.child(pml4, region)
    pd = b.child(pdpt, 0)
    pt = b.child(pd, 0)
    absent = b.plan.described_pages + 5  # a frame past the described memory: never present
    entries = {
        "pte_zero": 0,
        "pte_transition": (b.random_present_frame() << 12) | TRANSITION | (4 << 5),
        "pte_prototype": PROTOTYPE | 0xFFFF_A000_0000_0000,
        "pte_paged_out": (0x1234 << 32) | (4 << 5),
        "page_absent": (absent << 12) | P | RW,
    }
    for index, (name, value) in enumerate(entries.items(), start=1):
        b.set_entry(pt, index, value)
        out.special[name] = va_of(region, 0, 0, index)
    b.set_entry(pd, 1, (b.random_present_frame() << 12) | TRANSITION)  # non-present PDE
    out.special["pde_transition"] = va_of(region, 0, 1, 0)
    b.set_entry(pd, 2, (absent << 12) | P | RW)  # a present PDE whose page table is not in the dump
    out.special["pt_absent"] = va_of(region, 0, 2, 0)
    out.special["pdpte_zero"] = va_of(region, 1, 0, 0)  # PDPT entry 1 stays zero
    b.set_entry(pml4, REGION_PML4["absent_pdpt"], (absent << 12) | P | RW)
    out.special["table_absent"] = va_of(REGION_PML4["absent_pdpt"])
    out.special["pml4e_zero"] = va_of(0x180)
    out.special["self_map_pml4"] = va_of(SELF_MAP_INDEX, SELF_MAP_INDEX, SELF_MAP_INDEX, SELF_MAP_INDEX)


def _header(plan: Plan, dtb: int, file_size: int) -> bytearray:
    """DUMP_HEADER64 as DUMP_FORMAT.md lays it out, "PAGE"-filled where nothing is said."""
    h = bytearray(b"PAGE" * (0x2000 // 4))
    h[0:8] = b"PAGEDU64"
    struct.pack_into("<II", h, 0x08, 0xF, 19041)
    struct.pack_into("<Q", h, 0x10, dtb)
    struct.pack_into("<II", h, 0x30, 0x8664, 2)
    code, *params = plan.bugcheck
    struct.pack_into("<I4x4Q", h, 0x38, code, *params)
    struct.pack_into("<I", h, 0xF98, plan.dump_type)
    struct.pack_into("<qQ", h, 0xFA0, file_size, 0x01DA_1E4C_5B2F_8000)
    h[0xFB0:0x1030] = b"lkdh test memory dump".ljust(128, b"\0")
    if plan.dump_type == 6:
        struct.pack_into("<I", h, 0x1050, 1 << 4)  # LiveDumpGeneratedDump
    if plan.dump_type == 1:
        runs = plan.present
        assert len(runs) <= 42, "a full dump's PhysicalMemoryBlock holds at most 42 runs"
        struct.pack_into("<I4xQ", h, 0x88, len(runs), sum(c for _, c in runs))
        for i, (first, count) in enumerate(runs):
            struct.pack_into("<QQ", h, 0x98 + 16 * i, first, count)
    return h


def _set_bits(bits: bytearray, start: int, end: int) -> None:
    """Set bits [start, end): whole bytes by slice, the ragged ends bit by bit."""
    while start < end and start & 7:
        bits[start >> 3] |= 1 << (start & 7)
        start += 1
    whole_end = max(start, end & ~7)
    bits[start >> 3 : whole_end >> 3] = b"\xff" * ((whole_end - start) >> 3)
    for pfn in range(whole_end, end):
        bits[pfn >> 3] |= 1 << (pfn & 7)


def _bitmap_header(plan: Plan) -> tuple[bytes, int]:
    bits = bytearray((plan.described_pages + 7) // 8)
    for first, count in plan.present:
        _set_bits(bits, first, first + count)
    first_page = (0x2038 + len(bits) + PAGE - 1) // PAGE * PAGE
    total = sum(count for _, count in plan.present)
    signature = b"FDMP" if plan.dump_type == 5 else b"SDMP"
    head = signature + b"DUMP" + bytes(0x18) + struct.pack("<QQQ", first_page, total, plan.described_pages)
    return head + bytes(bits), first_page


def generate(path: Path, plan: Plan) -> Generated:
    """Write the dump ``plan`` describes to ``path`` (sparse) and say what is where."""
    b = _Builder(plan)
    out = Generated(path=path, plan=plan, dtb=0, first_page=0)
    _build_tables(b, out)
    if plan.dump_type == 1:
        bitmap, first_page = b"", 0x2000
    else:
        bitmap, first_page = _bitmap_header(plan)
    out.first_page = first_page
    total = sum(count for _, count in plan.present)
    data_end = first_page + total * PAGE
    rng = random.Random(plan.seed ^ 0x5EED)
    with path.open("wb") as f:
        f.write(_header(plan, out.dtb, data_end))
        f.write(bitmap)
        if plan.fill_all:
            for first, count in plan.present:
                f.seek(first_page + b.rank(first) * PAGE)
                f.write(rng.randbytes(count * PAGE))
        if plan.fill_small and not plan.fill_all:
            for pfn in sorted({pfn for _, pfn in out.small}):
                f.seek(first_page + b.rank(pfn) * PAGE)
                f.write(rng.randbytes(PAGE))
        for pfn, table in b.tables.items():
            f.seek(first_page + b.rank(pfn) * PAGE)
            f.write(table)
        f.truncate(data_end)
    return out

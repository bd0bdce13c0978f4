"""Kernel memory dumps (DumpType 1, 5, 6): physical reads through the bitmap / runs, the x64 page
walk, the batch API, describe/inspect, and the checks made on open. Cross-checked byte for byte
against kdmp-parser (an independent C++ reader) on dumps written by tests/memory_dump_gen.py."""

from __future__ import annotations

import json
import pickle
import random
import struct
import tracemalloc
from pathlib import Path

import kdmp_parser
import numpy as np
import pytest
from memory_dump_gen import Generated, Plan, generate, va_of

from harness.cli import main
from harness.dump import (
    AddressNotInDump,
    DumpFormatError,
    KernelDump,
    MemoryDump,
    PageNotInDump,
    describe,
    open_dump,
    summary,
)
from harness.dump.memory import _gib, memory_lines
from harness.dump.pagewalk import FAULT_NAMES, STEP_KIND, STEP_LARGE_FILE, STEP_LARGE_PHYSICAL, STEP_TABLE
from harness.dump.physical import RunIndex

# Holes everywhere: between ranges, inside 2 MiB chunks, ranges not 8- or 64-aligned, and 1 GiB
# pages that are nearly all absent. Five ranges, so the same plan is a valid full dump (<= 42 runs).
PRESENT = [(0, 0x400), (0x480, 0x80), (0x603, 0x3FD), (0x1000, 0x600), (0x1C00, 0x1FF)]
DESCRIBED = 0x2000  # 32 MiB


@pytest.fixture(scope="module", params=[5, 6, 1], ids=["bitmap-full", "bitmap-kernel", "full"])
def generated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Generated:
    folder = tmp_path_factory.mktemp(f"memdump{request.param}")
    plan = Plan(described_pages=DESCRIBED, present=PRESENT, dump_type=request.param, seed=7, small_pages=700)
    return generate(folder / "MEMORY.DMP", plan)


def _sample_virtual(g: Generated, rng: random.Random, count: int) -> list[int]:
    """VAs in every region: mapped 4 KiB pages, unmapped PTE slots, large pages (holes included),
    huge pages, the special entries and the self-map; each at an offset that stays in its page."""
    small_end = g.small[-1][0] + 0x1000
    choices = [
        lambda: rng.choice(g.small)[0],
        lambda: small_end + rng.randrange(0, 0x40) * 0x1000,  # PTEs past the mapped ones: zero
        lambda: g.large_va + rng.randrange(0, len(g.large_pa) << 21),
        lambda: g.huge_va + rng.randrange(0, 2 << 30),
        lambda: rng.choice(list(g.special.values())),
        lambda: va_of(0x1ED, 0x1ED, rng.randrange(0x200), rng.randrange(0x200)),  # through the self-map
    ]
    return [(rng.choice(choices)() & ~0xFFF) | rng.randrange(0, 0xFF8) for _ in range(count)]


def _kdmp_bytes(page: bytearray | None, address: int, size: int) -> bytes | None:
    return None if page is None else bytes(page[address & 0xFFF : (address & 0xFFF) + size])


def test_physical_reads_agree_with_kdmp_parser(generated: Generated) -> None:
    peer = kdmp_parser.KernelDumpParser(generated.path)
    rng = random.Random(1)
    addresses = [rng.randrange(0, (DESCRIBED + 0x100) << 12) & ~7 for _ in range(4000)]
    addresses += [first << 12 for first, _ in PRESENT] + [(first + count) << 12 for first, count in PRESENT]
    with open_dump(generated.path) as dump:
        assert isinstance(dump, MemoryDump)
        holes = 0
        for address in addresses:
            theirs = _kdmp_bytes(peer.read_physical_page(address & ~0xFFF), address, 8)  # it wants pages
            try:
                ours = dump.read_physical(address, 8)
            except PageNotInDump as error:
                assert error.level == "physical"
                ours = None
            assert ours == theirs, hex(address)
            holes += ours is None
        assert 500 < holes < len(addresses) - 500  # both present pages and holes were exercised


def test_virtual_reads_agree_with_kdmp_parser(generated: Generated) -> None:
    peer = kdmp_parser.KernelDumpParser(generated.path)
    addresses = _sample_virtual(generated, random.Random(2), 4000)
    outcomes = {"read": 0, "hole": 0, "walk": 0}
    with open_dump(generated.path) as dump:
        for address in addresses:
            theirs = _kdmp_bytes(peer.read_virtual_page(address & ~0xFFF), address, 8)
            try:
                ours = dump.read_virtual(address, 8)
                outcomes["read"] += 1
            except PageNotInDump as error:
                ours = None
                outcomes["hole" if error.level == "page" else "walk"] += 1
            assert ours == theirs, hex(address)
            if theirs is not None:
                assert dump.translate(address) == peer.translate_virtual(address)
        # the batch API gives the same values and fails on the same addresses
        values, faults = dump.try_read_u64(np.array(addresses, dtype=np.uint64))
        for address, value, fault in zip(addresses, values.tolist(), faults.tolist(), strict=True):
            theirs = _kdmp_bytes(peer.read_virtual_page(address & ~0xFFF), address, 8)
            assert (fault == 0) == (theirs is not None), hex(address)
            if theirs is not None:
                assert value == int.from_bytes(theirs, "little")
    assert min(outcomes.values()) > 200, outcomes


def test_large_and_huge_pages_translate_linearly(generated: Generated) -> None:
    with open_dump(generated.path) as dump:
        for n, physical in enumerate(generated.large_pa):
            for offset in (0, 0x1234, 0x1F_FFF8):
                assert dump.translate(generated.large_va + (n << 21) + offset) == physical + offset
        assert dump.translate(generated.huge_va + (1 << 30) + 0x5678) == (1 << 30) + 0x5678
        with pytest.raises(PageNotInDump) as info:  # a huge page over absent memory: the page is missing
            dump.read_virtual(generated.huge_va + (1 << 30), 8)
        assert info.value.level == "page" and "page frame 0x40000 is not in the dump" in str(info.value)


def test_walk_failures_name_the_level_and_the_entry(generated: Generated) -> None:
    special = generated.special
    expected = {
        "pte_zero": ("PTE", "zero entry"),
        "pte_transition": ("PTE", "transition entry (Transition bit 11 set)"),
        "pte_prototype": ("PTE", "prototype entry"),
        "pte_paged_out": ("PTE", "paged out (software entry, Protection 0x4, PageFileHigh 0x1234)"),
        "pde_transition": ("PDE", "transition entry"),
        "pdpte_zero": ("PDPTE", "zero entry"),
        "pml4e_zero": ("PML4E", "zero entry"),
        "table_absent": ("PDPTE", "the table page holding this entry (page frame 0x2005"),
        "pt_absent": ("PTE", "the table page holding this entry (page frame 0x2005"),
        "page_absent": ("page", "page frame 0x2005 is not in the dump"),
    }
    with open_dump(generated.path) as dump:
        for name, (level, words) in expected.items():
            with pytest.raises(PageNotInDump) as info:
                dump.read_virtual(special[name], 4)
            error = info.value
            assert (error.level, error.address, error.size) == (level, special[name], 4), name
            assert words in str(error), (name, str(error))
            if level in ("PTE", "PDE", "PDPTE", "PML4E") and not name.endswith("_absent"):
                raw = dump.read_physical(error.entry_address, 8)
                assert error.entry == int.from_bytes(raw, "little")
                assert f"= 0x{error.entry:016x}" in str(error)
        # the self-map loop: PML4[0x1ED] four times over reads the PML4 itself, and ends
        assert dump.read_virtual(special["self_map_pml4"], 0x1000) == dump.read_physical(
            generated.dtb, 0x1000
        )
        with pytest.raises(PageNotInDump, match="not canonical"):
            dump.read_virtual(0x0000_8000_0000_0000, 8)


def test_batch_matches_single_reads_including_faults_and_page_straddles(generated: Generated) -> None:
    rng = random.Random(3)
    addresses = _sample_virtual(generated, rng, 3000)
    addresses += [va + 0xFFC for va, _ in generated.small[:50]]  # values straddling two 4 KiB pages
    addresses += [0x0000_8000_0000_0000, 0x1234_0000_0000_0000]  # non-canonical
    with open_dump(generated.path) as dump:
        values, faults = dump.try_read_u64(np.array(addresses, dtype=np.uint64).reshape(-1, 1))
        assert values.shape == faults.shape == (len(addresses), 1)
        flat_values, flat_faults = values.ravel().tolist(), faults.ravel().tolist()
        for address, value, fault in zip(addresses, flat_values, flat_faults, strict=True):
            try:
                single = int.from_bytes(dump.read_virtual(address, 8), "little")
            except PageNotInDump as error:
                assert FAULT_NAMES[fault] == error.level, hex(address)
                continue
            assert (fault, value) == (0, single), hex(address)
        readable = [a for a, f in zip(addresses, faults.ravel().tolist(), strict=True) if f == 0]
        assert dump.read_u64(readable).tolist() == values.ravel()[faults.ravel() == 0].tolist()
        with pytest.raises(PageNotInDump) as info:
            dump.read_u64([readable[0], generated.special["pte_transition"]])
        assert info.value.level == "PTE" and "transition" in str(info.value)
        # a batch larger than one slice is walked in address order and answered in the caller's
        many = addresses * 4
        random.Random(5).shuffle(many)
        big_values, big_faults = dump.try_read_u64(many)
        expected = {a: (v, f) for a, v, f in zip(addresses, flat_values, flat_faults, strict=True)}
        assert len(many) > 8192
        assert list(zip(big_values.tolist(), big_faults.tolist(), strict=True)) == [expected[a] for a in many]
        # the batch went through every kind of cached step: page tables, 2 MiB granules wholly
        # stored (one addition per read) and granules with holes (a page lookup per read)
        walker = dump.walker
        kinds = set((walker._tlb_step[walker._tlb_key != 0] & STEP_KIND).tolist())
        assert kinds == {STEP_TABLE, STEP_LARGE_FILE, STEP_LARGE_PHYSICAL}
        # every kind of failed walk, alone in a batch (so the step cache is filled by it) and again
        for name, address in generated.special.items():
            for _ in range(2):
                _, (fault,) = dump.try_read_u64([address])
                try:
                    dump.read_virtual(address, 8)
                    assert fault == 0, name
                except PageNotInDump as error:
                    assert FAULT_NAMES[int(fault)] == error.level, name
        # a second pass hits the upper-level cache and must give the same answers
        again, again_faults = dump.try_read_u64(np.array(addresses, dtype=np.uint64))
        assert again.tolist() == values.ravel().tolist() and again_faults.tolist() == faults.ravel().tolist()


def test_reads_across_pages_join_the_frames(generated: Generated) -> None:
    (va, pfn), (next_va, next_pfn) = generated.small[10], generated.small[11]
    assert next_va == va + 0x1000
    with open_dump(generated.path) as dump:
        joined = dump.read_physical((pfn << 12) + 0xFF0, 0x10) + dump.read_physical(next_pfn << 12, 0x20)
        assert dump.read_virtual(va + 0xFF0, 0x30) == joined
        assert dump.read_virtual(va, 0) == b""
        with pytest.raises(ValueError, match="negative size"):
            dump.read_virtual(va, -1)


def test_pat_bit_of_a_large_page_is_not_part_of_its_frame(tmp_path: Path) -> None:
    """Intel SDM 4.5: in a 2 MiB / 1 GiB entry bit 12 is PAT; the frame is bits 51:21 / 51:30."""
    plan = Plan(described_pages=DESCRIBED, present=PRESENT, seed=9, small_pages=4, pat_on_large=True)
    g = generate(tmp_path / "pat.dmp", plan)
    with open_dump(g.path) as dump:
        assert dump.translate(g.large_va + (1 << 21) + 0x10) == g.large_pa[1] + 0x10
        assert dump.translate(g.huge_va + 0x20) == 0x20
        values = dump.try_read_u64([g.large_va + (1 << 21) + 0x10])[0]
        assert values[0] == int.from_bytes(dump.read_physical(g.large_pa[1] + 0x10, 8), "little")


def test_live_bitmap_dump_holds_the_same_memory_as_a_bitmap_full_one(tmp_path: Path) -> None:
    plans = {t: Plan(described_pages=DESCRIBED, present=PRESENT, dump_type=t, seed=11) for t in (5, 6, 1)}
    dumps = {t: generate(tmp_path / f"{t}.dmp", plan) for t, plan in plans.items()}
    addresses = _sample_virtual(dumps[5], random.Random(4), 500)
    results = {}
    for dump_type, g in dumps.items():
        with open_dump(g.path) as dump:
            results[dump_type] = [f.tolist() for f in dump.try_read_u64(addresses)]
            assert dump.header.is_live_dump == (dump_type == 6)
    assert results[5] == results[6] == results[1]


def test_describe_summary_and_inspect(generated: Generated, capsys: pytest.CaptureFixture[str]) -> None:
    with open_dump(generated.path) as dump:
        text = describe(dump, max_rows=3)
        data = summary(dump)
    present = sum(count for _, count in PRESENT)
    assert f"present                {present:#x} pages" in text and "in 5 ranges" in text
    assert "... 2 more ranges" in text and "Triage: none" in text
    assert "0x161 LIVE_SYSTEM_DUMP" in text
    memory = data["memory"]
    assert memory["present_pages"] == present and memory["range_count"] == 5
    assert [(r["first_pfn"], r["pages"]) for r in memory["ranges"]] == PRESENT
    assert memory["index"] == ("runs" if generated.plan.dump_type == 1 else "bitmap")
    assert list(memory) == [  # sorted, as summary() sorts every mapping
        "bitmap_signature",
        "data_end",
        "described_pages",
        "first_page_offset",
        "index",
        "present_pages",
        "range_count",
        "ranges",
    ]
    signature = {5: "FDMP", 6: "SDMP", 1: None}[generated.plan.dump_type]
    assert (memory["bitmap_signature"], memory["first_page_offset"]) == (signature, generated.first_page)
    assert memory["data_end"] == generated.first_page + present * 0x1000
    first = memory["ranges"][0]
    assert first == {"first_pfn": 0, "pages": 0x400, "file_offset": generated.first_page}
    assert main(["inspect", str(generated.path), "--json"]) == 0
    described = 0x1DFF if generated.plan.dump_type == 1 else DESCRIBED  # runs end at the last one
    assert json.loads(capsys.readouterr().out)["memory"]["described_pages"] == described


def test_kernel_dump_itself_reads_the_header_only(generated: Generated) -> None:
    """open_dump picks MemoryDump by DumpType; KernelDump(path) stays the header-and-triage reader."""
    with KernelDump(generated.path) as header_only:
        assert not isinstance(header_only, MemoryDump) and header_only.triage is None
    with open_dump(generated.path) as dump:
        assert isinstance(dump, MemoryDump) and isinstance(dump, KernelDump)
        assert dump.block_containing(generated.small[0][0]) is None and dump.data_blocks == []


def test_page_not_in_dump_is_an_address_not_in_dump_and_pickles() -> None:
    error = PageNotInDump(0xFFFF800000001000, 8, "PTE", "not present", 0x9008, 0x80)
    assert isinstance(error, AddressNotInDump)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.level, copy.entry, copy.entry_address, str(copy)) == ("PTE", 0x80, 0x9008, str(error))


def test_unset_directory_table_base_is_a_format_error(tmp_path: Path) -> None:
    g = generate(tmp_path / "dtb.dmp", Plan(described_pages=DESCRIBED, present=PRESENT, small_pages=4))
    raw = bytearray(g.path.read_bytes())
    raw[0x10:0x18] = b"PAGEPAGE"
    g.path.write_bytes(raw)
    with open_dump(g.path) as dump:
        assert len(dump.read_physical(0x1000, 16)) == 16
        with pytest.raises(DumpFormatError) as info:
            dump.read_virtual(g.small[0][0], 8)
        with pytest.raises(DumpFormatError):
            dump.try_read_u64([g.small[0][0]])
    assert (info.value.field, info.value.offset) == ("DUMP_HEADER64.DirectoryTableBase", 0x10)


def test_arm64_memory_dumps_read_physical_memory_only(tmp_path: Path) -> None:
    g = generate(tmp_path / "arm.dmp", Plan(described_pages=DESCRIBED, present=PRESENT, small_pages=4))
    _patched(g.path, 0x30, "<I", 0xAA64)
    with open_dump(g.path) as dump:
        assert dump.read_physical(g.dtb, 8) == dump.read_file(g.first_page + 0x1AD * 0x1000, 8)
        with pytest.raises(DumpFormatError, match=r"ARM64: only x64 \(0x8664\) page tables"):
            dump.read_virtual(g.small[0][0], 8)


def _patched(path: Path, offset: int, fmt: str, value: int) -> Path:
    raw = bytearray(path.read_bytes())
    struct.pack_into(fmt, raw, offset, value)
    path.write_bytes(raw)
    return path


@pytest.mark.parametrize(
    ("dump_type", "offset", "fmt", "value", "field", "words"),
    [
        (5, 0x2000, "<I", 0x504D4458, "BITMAP_DUMP64.Signature", "expected 'SDMP' or 'FDMP'"),
        (5, 0x2004, "<I", 0, "BITMAP_DUMP64.ValidDump", "expected 'DUMP'"),
        (5, 0x2030, "<Q", 1 << 62, "BITMAP_DUMP64.Pages", "52-bit physical address space"),
        (5, 0x2030, "<Q", 0x10_0000, "BITMAP_DUMP64.Pages", "runs past FirstPage"),
        (5, 0x2028, "<Q", 5, "BITMAP_DUMP64.TotalPresentPages", "the bitmap has 0x107c bits set"),
        (5, 0x2020, "<Q", 0x10_0000, "BITMAP_DUMP64.TotalPresentPages", "the dump is truncated"),
        (1, 0x88, "<I", 43, "DUMP_HEADER64.PhysicalMemoryBlock.NumberOfRuns", "at most 42"),
        (1, 0x90, "<Q", 7, "DUMP_HEADER64.PhysicalMemoryBlock.NumberOfPages", "the runs hold 0x107c"),
        (1, 0x98 + 16, "<Q", 0, "DUMP_HEADER64.PhysicalMemoryBlock.Run[1].BasePage", "runs must ascend"),
        (1, 0xA0, "<Q", 1 << 41, "DUMP_HEADER64.PhysicalMemoryBlock.Run[0].PageCount", "52-bit"),
    ],
)
def test_open_checks_every_count_and_offset(
    tmp_path: Path, dump_type: int, offset: int, fmt: str, value: int, field: str, words: str
) -> None:
    plan = Plan(
        described_pages=DESCRIBED, present=PRESENT, dump_type=dump_type, small_pages=4, fill_all=False
    )
    path = _patched(generate(tmp_path / "bad.dmp", plan).path, offset, fmt, value)
    with pytest.raises(DumpFormatError) as info:
        open_dump(path)
    assert info.value.field == field and words in info.value.reason, str(info.value)
    assert info.value.offset is not None


def test_truncated_full_dump_is_a_format_error(tmp_path: Path) -> None:
    plan = Plan(described_pages=DESCRIBED, present=PRESENT, dump_type=1, small_pages=4, fill_all=False)
    path = generate(tmp_path / "cut.dmp", plan).path
    with path.open("r+b") as f:
        f.truncate(path.stat().st_size - 0x1000)
    with pytest.raises(DumpFormatError, match=r"NumberOfPages.*the dump is truncated"):
        open_dump(path)


def test_memory_is_bounded_by_the_index_not_the_file(tmp_path: Path) -> None:
    """A 4 GiB-described / 512 MiB-present sparse dump: opening and 20,000 batch reads allocate a few
    MiB (the rank index is 16 bytes per 64 frames), never the file or its present pages."""
    present = [(n * 0x4000, 0x800) for n in range(0x40)]  # 8 MiB present every 64 MiB
    plan = Plan(described_pages=0x10_0000, present=present, small_pages=4096, fill_all=False)
    g = generate(tmp_path / "big.dmp", plan)
    assert g.path.stat().st_size > 512 << 20
    assert g.path.stat().st_blocks * 512 < 8 << 20  # sparse: only tables and headers are on disk
    addresses = np.array([va + 0x10 for va, _ in g.small] * 5, dtype=np.uint64)
    tracemalloc.start()
    try:
        with open_dump(g.path) as dump:
            values = dump.read_u64(addresses)
            describe(dump)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert values.shape == (len(addresses),)
    assert peak < 8 << 20, f"peak {peak / (1 << 20):.1f} MiB"


DESCRIBE_PRESENT = [(0, 0x100), (0x180, 0x41), (0x1000, 0x200), (0x1300, 3), (0x1E00, 0x1FF)]


@pytest.mark.parametrize("dump_type", [5, 1], ids=["bitmap", "runs"])
def test_memory_section_of_describe_line_by_line(tmp_path: Path, dump_type: int) -> None:
    """The physical-memory section as an engineer reads it: the index, sizes in binary units, where
    the pages are stored, the DTB, and the first ranges with their file offsets (FirstPage + rank *
    0x1000 for a bitmap dump; the pages of a full dump start at 0x2000, runs after runs)."""
    plan = Plan(
        described_pages=0x2000, present=DESCRIBE_PRESENT, dump_type=dump_type, small_pages=4, fill_all=False
    )
    g = generate(tmp_path / "describe.dmp", plan)
    first = g.first_page
    with open_dump(g.path) as dump:
        shown = memory_lines(dump, 3)
        every = memory_lines(dump, 5)
    title = {
        5: "Physical memory (BITMAP_DUMP64 'FDMP' at 0x2000)",
        1: "Physical memory (PhysicalMemoryBlock runs, pages from 0x2000)",
    }[dump_type]
    described = 0x2000 if dump_type == 5 else 0x1FFF  # a run list ends at its last run
    assert first == (0x3000 if dump_type == 5 else 0x2000)
    assert shown == [
        title,
        f"  described              {described:#x} page frames (32 MiB)",
        "  present                0x543 pages (5.262 MiB) in 5 ranges",
        f"  pages stored           [0x{first:x}, 0x{first + 0x543000:x})",
        f"  page tables (DTB)      0x{g.dtb:x}",
        "     first frame       pages     file offset",
        f"             0x0       0x100  {first:>#14x}",
        f"           0x180        0x41  {first + 0x100000:>#14x}",
        f"          0x1000       0x200  {first + 0x141000:>#14x}",
        "  ... 2 more ranges",
    ]
    assert len(every) == 5 + 1 + 5 and every[-1] == f"          0x1e00       0x1ff  {first + 0x344000:>#14x}"


def test_describe_says_when_the_page_tables_are_unset(tmp_path: Path) -> None:
    g = generate(tmp_path / "dtb.dmp", Plan(described_pages=0x2000, present=DESCRIBE_PRESENT, small_pages=4))
    raw = bytearray(g.path.read_bytes())
    raw[0x10:0x18] = b"PAGEPAGE"  # DirectoryTableBase still holds the PAGE fill
    g.path.write_bytes(raw)
    with open_dump(g.path) as dump:
        assert "  page tables (DTB)      unset (PAGE)" in memory_lines(dump, 1)


def test_sizes_are_shown_in_the_largest_binary_unit_that_fits() -> None:
    assert [_gib(p) for p in (0, 1, 0xFF, 0x100, 0x101, 0x3FFFF, 0x40000, 0x1000000)] == [
        "0 bytes",
        "4 KiB",
        "1020 KiB",
        "1 MiB",
        "1.004 MiB",
        "1024 MiB",
        "1 GiB",
        "64 GiB",
    ]


def test_bitmap_ranges_across_words_and_slices(tmp_path: Path) -> None:
    """4 GiB described: 16,384 bitmap words, so the index counts edges in two slices of 8,192 words.
    A range that crosses the slice boundary (frame 0x80000) is one range, two ranges starting in the
    same word are two, one in the last word reaches the last frame, and the total counts every
    slice however few ranges are listed."""
    present = [(0x10, 2), (0x14, 2), (0x7FFC0, 0x80), (0x90000, 1), (0xFFFC0, 0x40)]
    plan = Plan(described_pages=0x10_0000, present=present, small_pages=4, fill_all=False)
    g = generate(tmp_path / "wide.dmp", plan)
    with open_dump(g.path) as dump:
        listed, total = dump.page_ranges(10)
        one, total_of_one = dump.page_ranges(1)
    offsets, rank = [], 0
    for _, count in present:
        offsets.append(g.first_page + rank * 0x1000)
        rank += count
    assert [(r.first_pfn, r.count, r.file_offset) for r in listed] == [
        (first, count, offset) for (first, count), offset in zip(present, offsets, strict=True)
    ]
    assert (total, total_of_one) == (5, 5)
    assert [(r.first_pfn, r.count) for r in one] == [(0x10, 2)]


def test_a_full_dump_without_runs_holds_no_frame() -> None:
    index = RunIndex([], 0x2000)
    offsets = index.file_offsets(np.array([0, 5, 0x1000], dtype=np.uint64))
    assert offsets.dtype == np.int64 and offsets.tolist() == [-1, -1, -1]
    assert (index.described_pages, index.present_pages, index.ranges(5)) == (0, 0, ([], 0))


def test_run_index_lookups_stop_at_each_runs_end() -> None:
    """The frame just past a run is absent (runs are half-open), in the vector and the scalar form."""
    index = RunIndex([(0x10, 4), (0x20, 2)], 0x2000)
    pfns = [0xF, 0x10, 0x13, 0x14, 0x1F, 0x20, 0x21, 0x22, 0x100]
    expected = [-1, 0x2000, 0x5000, -1, -1, 0x6000, 0x7000, -1, -1]
    assert index.file_offsets(np.array(pfns, dtype=np.uint64)).tolist() == expected
    assert [index.file_offset(p) for p in pfns] == [None if e < 0 else e for e in expected]


def test_a_memory_dump_says_how_many_pages_it_holds(generated: Generated) -> None:
    with open_dump(generated.path) as dump:
        pages = dump.pages
        assert repr(dump) == (
            f"MemoryDump({str(generated.path)!r}, {dump.header.dump_type_name}, "
            f"{pages.present_pages:#x} of {pages.described_pages:#x} pages)"
        )
    present = sum(count for _, count in PRESENT)
    assert f"{present:#x} of" in repr(dump)


def test_bitmap_ranges_are_counted_in_every_slice_after_the_listed_ones(tmp_path: Path) -> None:
    """6 GiB described: three slices of 8,192 words. Listing one range must not stop the count:
    the ranges of the second and third slices are still counted."""
    present = [(0, 0x400), (0x90000, 1), (0x110000, 3)]  # the first range holds the page tables
    plan = Plan(described_pages=0x18_0000, present=present, small_pages=4, fill_all=False)
    g = generate(tmp_path / "wider.dmp", plan)
    with open_dump(g.path) as dump:
        listed, total = dump.page_ranges(1)
    assert ([(r.first_pfn, r.count) for r in listed], total) == ([(0, 0x400)], 3)

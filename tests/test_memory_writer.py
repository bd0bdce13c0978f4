"""The kernel memory-dump writer (harness/dump/memory_writer.py): what it writes reads back through
the project's reader (harness/dump/memory.py) and through kdmp-parser (an independent C++ reader),
with 4-level tables, 2 MiB pages, holes and the walk's evidence where nothing is mapped."""

from __future__ import annotations

import random
import struct
import uuid
from pathlib import Path

import kdmp_parser
import pytest

from harness.dump import MemoryDump, PageNotInDump, TriageDumpSpec, open_dump
from harness.dump import layout as L
from harness.dump.memory_writer import DATA_FLAGS, PS, SELF_MAP_INDEX, MemoryDumpSpec, write_memory_dump

POOL = 0xFFFF_9A26_2000_0000  # a 2 MiB-aligned chunk mapped with a large page
PAGED = 0xFFFF_C012_3456_7000  # 4 KiB pages
GUID = uuid.UUID("6f1d1c8e-5f3b-4a56-9f43-5a3c2e1d0b7a")


def _regions(seed: int = 5) -> list[tuple[int, bytes]]:
    rng = random.Random(seed)
    regions = [(POOL + 0x10 + 0x400 * i, rng.randbytes(0x3F0)) for i in range(12)]  # shared pages
    regions += [(POOL + 0x1F_F000, rng.randbytes(0x1000))]  # the large page's last 4 KiB
    regions += [(PAGED + 0x20, rng.randbytes(0x2100))]  # straddles three 4 KiB pages
    regions += [(0xFFFF_F802_8120_0000, b"MZ" + bytes(0x3E) + struct.pack("<I", 0x80))]
    return regions


def _spec(**changes) -> MemoryDumpSpec:
    header = TriageDumpSpec(
        0xD1, (0x10, 2, 1, 0xFFFFF80281201A2C), [], secondary_data=[(GUID, b"blob!" * 7)], live=False
    )
    values = {"header": header, "memory": _regions(), "large_page_ranges": [(POOL, POOL + 0x20_0000)]}
    return MemoryDumpSpec(**(values | changes))


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_memory_dump(tmp_path_factory.mktemp("mw") / "MEMORY.DMP", _spec())


def test_every_region_reads_back_by_virtual_address(written: Path) -> None:
    with open_dump(written) as dump:
        assert isinstance(dump, MemoryDump)
        assert (dump.header.dump_type, dump.bitmap_signature, dump.header.is_live_dump) == (5, "SDMP", False)
        assert (dump.header.bugcheck_code, dump.header.bugcheck_parameters[3]) == (0xD1, 0xFFFFF80281201A2C)
        for address, data in _regions():
            assert dump.read_virtual(address, len(data)) == data, hex(address)
        values = dump.read_u64([address for address, _ in _regions()])
        assert [int(v) for v in values] == [int.from_bytes(d[:8], "little") for _, d in _regions()]
        assert [dump.blob_bytes(b) for b in dump.blobs_with_guid(GUID)] == [b"blob!" * 7]
        assert dump.pages.described_pages == (4 << 30) >> 12


def _entry(dump: MemoryDump, table: int, index: int) -> int:
    return int.from_bytes(dump.read_physical(table + 8 * index, 8), "little")


def test_the_tables_are_four_levels_with_a_large_page_and_the_self_map(written: Path) -> None:
    """The walk by hand from the DTB: PML4 -> PDPT -> PD -> PDE with PS for the pool chunk (2 MiB on
    a 2 MiB-aligned frame), PD -> PT -> PTE for the paged range; PML4[0x1ED] is the self-map."""
    with open_dump(written) as dump:
        dtb = dump.header.directory_table_base
        assert _entry(dump, dtb, SELF_MAP_INDEX) & L.PAGE_SIZE * 0xFF_FFFF_FFFF == dtb

        def walk(va: int) -> list[int]:
            entries, table = [], dtb
            for shift in (39, 30, 21, 12):
                entry = _entry(dump, table, (va >> shift) & 0x1FF)
                entries.append(entry)
                if shift == 21 and entry & PS:
                    break
                table = entry & 0x000F_FFFF_FFFF_F000
            return entries

        large = walk(POOL + 0x1234)
        assert len(large) == 3 and large[2] & PS and large[2] & 0x1F_F000 == 0
        assert dump.translate(POOL + 0x1234) == (large[2] & 0x000F_FFFF_FFE0_0000) + 0x1234
        small = walk(PAGED + 0x1008)
        assert len(small) == 4 and small[3] & DATA_FLAGS == DATA_FLAGS and not small[2] & PS
        assert dump.translate(PAGED + 0x1008) == (small[3] & 0x000F_FFFF_FFFF_F000) + 8


def test_what_is_not_mapped_names_the_level_and_entry(written: Path) -> None:
    """A hole inside the large page is a missing page frame; an unmapped 4 KiB neighbour stops at its
    PTE (entry 0); another 2 MiB chunk at its PDE, another 1 GiB at its PDPTE, another 512 GiB at
    its PML4E, each with the entry's physical address and value."""
    with open_dump(written) as dump:
        with pytest.raises(PageNotInDump) as hole:
            dump.read_virtual(POOL + 0x10_0000, 8)
        assert hole.value.level == "page" and "is not in the dump" in str(hole.value)
        for va, level in (
            (PAGED + 0x3000, "PTE"),
            (PAGED + 0x20_0000, "PDE"),
            (PAGED + 0x4000_0000, "PDPTE"),
            (PAGED + (1 << 39), "PML4E"),
        ):
            with pytest.raises(PageNotInDump) as stopped:
                dump.read_virtual(va, 8)
            assert stopped.value.level == level and stopped.value.entry == 0, hex(va)
            entry_at = stopped.value.entry_address
            assert entry_at is not None and dump.read_physical(entry_at, 8) == bytes(8)


def test_kdmp_parser_reads_the_same_bytes(written: Path) -> None:
    """Independent reader: every mapped page and a hole agree, physical frames included."""
    peer = kdmp_parser.KernelDumpParser(written)
    assert peer.type == kdmp_parser.DumpType.BMPDump
    with open_dump(written) as dump:
        for address, data in _regions():
            for page in range(address & ~0xFFF, address + len(data), 0x1000):
                theirs = peer.read_virtual_page(page)
                assert theirs is not None and bytes(theirs) == dump.read_virtual(page, 0x1000), hex(page)
                physical = dump.translate(page)
                assert peer.translate_virtual(page) == physical
                assert bytes(peer.read_physical_page(physical)) == dump.read_physical(physical, 0x1000)
        assert peer.read_virtual_page(POOL + 0x10_0000) is None  # the hole in the large page
        assert peer.read_virtual_page(PAGED + 0x3000) is None


def test_a_full_live_dump_is_type_6_with_the_live_attribute(tmp_path: Path) -> None:
    spec = _spec(dump_type=L.DUMP_TYPE_BITMAP_KERNEL)
    spec.header.live = True
    with open_dump(write_memory_dump(tmp_path / "live.dmp", spec)) as dump:
        assert (dump.header.dump_type, dump.header.is_live_dump) == (6, True)
        assert kdmp_parser.KernelDumpParser(dump.path).type == kdmp_parser.DumpType.LiveKernelBitmapDump


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"dump_type": 1}, "only bitmap dumps"),
        ({"memory": [(0x0000_7FF0_0000_0000, b"user")]}, "not a canonical kernel range"),
        ({"physical_memory": 256 << 20}, "past the described RAM"),
    ],
)
def test_a_spec_that_cannot_be_written_is_refused(tmp_path: Path, changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        write_memory_dump(tmp_path / "bad.dmp", _spec(**changes))
    assert not list(tmp_path.iterdir()), "nothing half-written is left behind"

"""Reader behaviour not tied to one fixture: lookups over overlapping blocks, header-only dump types,
lifetime, and the memory bound (no whole-file read)."""

from __future__ import annotations

import struct
import tracemalloc
from pathlib import Path

import pytest

from harness.dump import AddressNotInDump, DataBlock, KernelDump, TriageDumpSpec, write_triage_dump
from harness.dump.blocks import BlockIndex


def test_block_index_prefers_the_first_block_in_file_order() -> None:
    blocks = [
        DataBlock(address=0x2000, offset=0, size=0x100),
        DataBlock(address=0x1000, offset=0, size=0x2000),  # wide block starting lower, later in file
        DataBlock(address=0x2000, offset=0, size=0x100),  # exact duplicate
    ]
    index = BlockIndex(blocks)
    assert index.containing(0x2010, 4) is blocks[0]
    assert index.containing(0x2100, 4) is blocks[1]  # past block 0's end: only the wide one holds it
    assert index.containing(0x1000) is blocks[1]
    assert index.containing(0x2FFF, 1) is blocks[1]
    assert index.containing(0x2FFF, 2) is None
    assert index.containing(0xFFF) is None


def test_block_index_reaches_past_short_neighbours() -> None:
    """A long block far below the address still contains it even with many short blocks between."""
    blocks = [DataBlock(0x10000 + 0x10 * i, 0, 4) for i in range(100)] + [DataBlock(0x1000, 0, 0x100000)]
    assert BlockIndex(blocks).containing(0x10008, 8) is blocks[-1]


def test_address_not_in_dump_names_the_nearest_blocks() -> None:
    index = BlockIndex([DataBlock(0x1000, 0, 0x10), DataBlock(0x3000, 0, 0x20)])
    with pytest.raises(AddressNotInDump) as info:
        index.require(0x2000, 4)
    assert info.value.nearest == [(0x1000, 0x10), (0x3000, 0x20)]
    assert str(info.value) == (
        "[0x2000, 0x2004) (0x4 bytes) is not inside any data block; "
        "nearest blocks: [0x1000, 0x1010), [0x3000, 0x3020)"
    )
    assert isinstance(info.value, LookupError)


def test_empty_index() -> None:
    with pytest.raises(AddressNotInDump, match="none \\(no data blocks\\)"):
        BlockIndex([]).require(0x1000, 1)


def _simulated(tmp_path: Path) -> Path:
    spec = TriageDumpSpec(0x161, (0, 0, 0, 0), data_blocks=[(0xFFFF800000001000, b"abcdefgh")])
    return write_triage_dump(tmp_path / "s.dmp", spec)


@pytest.mark.parametrize("dump_type", [1, 5, 6])
def test_bitmap_and_full_dumps_open_header_only(tmp_path: Path, dump_type: int) -> None:
    path = _simulated(tmp_path)
    raw = bytearray(path.read_bytes())
    struct.pack_into("<I", raw, 0xF98, dump_type)
    path.write_bytes(raw)
    with KernelDump(path) as dump:
        assert dump.header.dump_type == dump_type
        assert dump.triage is None
        assert (dump.data_blocks, dump.drivers, dump.secondary_data, dump.blob_chain_end) == (
            [],
            [],
            [],
            None,
        )
        assert dump.block_containing(0xFFFF800000001000) is None


def test_close_releases_the_map(tmp_path: Path) -> None:
    dump = KernelDump(_simulated(tmp_path))
    assert dump.read_virtual(0xFFFF800000001002, 3) == b"cde"
    dump.close()
    assert dump.closed
    with pytest.raises(ValueError):
        dump.read_file(0, 8)


def test_read_file_refuses_ranges_outside_the_file(tmp_path: Path) -> None:
    with KernelDump(_simulated(tmp_path)) as dump:
        with pytest.raises(ValueError, match="outside the file"):
            dump.read_file(dump.file_size - 4, 8)
        with pytest.raises(ValueError):
            dump.read_virtual(0xFFFF800000001000, -1)
        assert dump.read_virtual(0xFFFF800000001000, 0) == b""


@pytest.mark.needs_shared
def test_walking_everything_does_not_read_the_whole_file(fixture_dumps: Path) -> None:
    """Opening triage_x64.dmp and reading every block and blob stays far below the file size in
    Python memory: the reader slices an mmap instead of loading the file.

    Two bounds: what stays allocated after open (DataBlock objects and the index, proportional to
    the 1831 blocks, not to the file) is under a third of the file; walking every block and blob
    then never holds more than a couple of items at once (no accumulation, no whole-file copy).
    """
    path = fixture_dumps / "triage_x64.dmp"
    size = path.stat().st_size
    tracemalloc.start()
    try:
        with KernelDump(path) as dump:
            assert len(dump.drivers) == 151
            after_open, open_peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            largest = 0
            for block in dump.data_blocks:
                largest = max(largest, len(dump.block_bytes(block)))
            for blob in dump.secondary_data:
                largest = max(largest, len(dump.blob_bytes(blob)))
            _, walk_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert open_peak < size // 3, f"open peaked at {open_peak} bytes for a {size}-byte file"
    assert walk_peak - after_open < 2 * largest + 16 * 1024, (
        f"walk peaked {walk_peak - after_open} above open"
    )
    assert largest < size // 20  # so the bounds are about the reader, not one huge block

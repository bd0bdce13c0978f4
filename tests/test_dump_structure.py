"""One set of structural checks, run on the real fixtures and on the writer's output alike.

The checks use a deliberately naive parser written here with ``struct`` over the whole file (fine
for a test), independent of harness.dump's reader: the fixtures prove the checks, and the checks
then prove that the simulator's dumps have the layout of real ones (TRGD at ValidOffset = SizeOfDump
- 4, blocks inside SizeOfDump, a DumpBlob chain that consumes the file exactly).
"""

from __future__ import annotations

import struct
import uuid
from pathlib import Path

import pytest

from harness.dump import TriageDumpSpec, write_triage_dump


def independent_check(path: Path) -> dict[str, int]:
    """Walk a triage dump with plain struct; assert its invariants; return a few counts."""
    raw = path.read_bytes()
    assert raw[:8] == b"PAGEDU64"
    (dump_type,) = struct.unpack_from("<I", raw, 0xF98)
    assert dump_type == 4
    size_of_dump, valid_offset = struct.unpack_from("<II", raw, 0x2004)
    blocks_offset, blocks_count = struct.unpack_from("<II", raw, 0x2078)
    driver_list, driver_count, pool, pool_size = struct.unpack_from("<IIII", raw, 0x2030)
    assert valid_offset == size_of_dump - 4 and raw[valid_offset:size_of_dump] == b"TRGD"
    assert size_of_dump <= len(raw)
    assert blocks_offset + 16 * blocks_count <= size_of_dump
    for address, offset, size in struct.iter_unpack(
        "<QII", raw[blocks_offset : blocks_offset + 16 * blocks_count]
    ):
        assert address >= 0xFFFF_8000_0000_0000  # a kernel-half VA was recorded
        assert offset + size <= size_of_dump
    assert driver_list + 0x90 * driver_count <= size_of_dump and pool + pool_size <= size_of_dump
    for i in range(driver_count):
        (name_offset,) = struct.unpack_from("<I", raw, driver_list + 0x90 * i)
        (length,) = struct.unpack_from("<I", raw, name_offset)
        assert (
            raw[name_offset + 4 + 2 * length : name_offset + 6 + 2 * length] == b"\0\0"
        )  # NUL after the name
    blobs = 0
    if raw[size_of_dump : size_of_dump + 8] == b"DumpBlob":
        (header_size,) = struct.unpack_from("<I", raw, size_of_dump + 8)
        pos = size_of_dump + header_size
        while pos < len(raw):
            header_size, _tag, data_size, pre, post = struct.unpack_from("<I16sIII", raw, pos)
            assert header_size >= 0x20
            assert (data_size + post) % 8 == 0  # the padding both fixtures use, and the writer too
            pos += header_size + pre + data_size + post
            blobs += 1
        assert pos == len(raw)  # the chain ends exactly at end of file
    return {"blocks": blocks_count, "drivers": driver_count, "blobs": blobs}


@pytest.mark.needs_shared
@pytest.mark.parametrize("name", ["triage_x64.dmp", "triage_arm64.dmp"])
def test_real_fixtures_pass_the_checks(fixture_dumps: Path, name: str) -> None:
    counts = independent_check(fixture_dumps / name)
    assert (
        counts
        == {
            "triage_x64.dmp": {"blocks": 0x727, "drivers": 0x97, "blobs": 20},
            "triage_arm64.dmp": {"blocks": 0x2A7, "drivers": 0xF5, "blobs": 42},
        }[name]
    )


SPECS = {
    "blocks+blobs": TriageDumpSpec(
        bugcheck_code=0x161,
        bugcheck_parameters=(0x1234, 0xFFFFC00012345000, 0, 0),
        data_blocks=[(0xFFFFC00000001000 + 0x100 * i, bytes([i]) * (i * 7 + 1)) for i in range(12)],
        secondary_data=[(uuid.uuid4(), b"x" * n) for n in (0, 1, 7, 8, 9, 4096)],
    ),
    "no blobs": TriageDumpSpec(0x161, (1, 2, 0, 0), data_blocks=[(0xFFFFC00000002000, b"abc")]),
    "nothing": TriageDumpSpec(0xE2, (0, 0, 0, 0), data_blocks=[], drivers=[]),
}


@pytest.mark.parametrize("case", list(SPECS))
def test_writer_output_passes_the_checks(tmp_path: Path, case: str) -> None:
    spec = SPECS[case]
    counts = independent_check(write_triage_dump(tmp_path / "live.dmp", spec))
    expected = {
        "blocks": len(spec.data_blocks),
        "drivers": len(spec.drivers),
        "blobs": len(spec.secondary_data),
    }
    assert counts == expected

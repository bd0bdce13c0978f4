"""The writer's dumps read back, through the reader the real fixtures prove, as exactly what was written."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.dump import KernelDump, TriageDumpSpec, open_dump, write_triage_dump
from harness.dump import layout as L

GUID_A = uuid.UUID("9a4cb9a0-5f4d-4e2b-8d5c-1f00d0c0ffee")
GUID_B = uuid.UUID("11111111-2222-4333-8444-555555555555")


def full_spec() -> TriageDumpSpec:
    """A spec with every field away from its default, so a field the writer drops shows up."""
    return TriageDumpSpec(
        bugcheck_code=0x1C8,
        bugcheck_parameters=(0xDEAD, 0xFFFFB00012340000, 0, 0),
        data_blocks=[
            (0xFFFFB00012340000, b"collection" * 5),
            (0xFFFFB00099990010, bytes(range(256))),
            (0xFFFFB00012340000, b"duplicate insert"),  # DMF_FACTS F11: duplicates are separate entries
        ],
        secondary_data=[
            (GUID_A, b"secondary-1"),
            (uuid.UUID(int=0), b""),
            (GUID_A, b"again"),
            (GUID_B, b"z" * 9),
        ],
        drivers=[
            ("\\SystemRoot\\system32\\ntoskrnl.exe", 0xFFFFF80000000000, 0x1000000),
            ("Lkd.sys", 0xFFFFF88, 0x3000),
        ],
        machine_image_type=L.MACHINE_ARM64,
        number_processors=6,
        build=22621,
        live=True,
        system_time=0x01DA000011112222,
        system_up_time=0x123456789,
        product_type=3,
        suite_mask=0x112,
        directory_table_base=0x7FF000,
        pfn_database=0xFFFFA10000000000,
        ps_loaded_module_list=0xFFFFF80011110000,
        ps_active_process_head=0xFFFFF80022220000,
        kd_debugger_data_block=0xFFFFF80033330000,
        comment="simulated live dump",
    )


@pytest.fixture
def written(tmp_path: Path):
    spec = full_spec()
    path = write_triage_dump(tmp_path / "x.dmp", spec)
    with KernelDump(path) as dump:
        yield spec, dump


def test_header_round_trip(written) -> None:
    spec, dump = written
    h = dump.header
    assert (h.bugcheck_code, h.bugcheck_parameters) == (spec.bugcheck_code, spec.bugcheck_parameters)
    assert (h.major_version, h.minor_version, h.build) == (0xF, spec.build, spec.build)
    assert (h.machine_image_type, h.machine_name, h.number_processors) == (0xAA64, "ARM64", 6)
    assert (h.system_time, h.system_up_time) == (spec.system_time, spec.system_up_time)
    assert (h.product_type, h.suite_mask) == (spec.product_type, spec.suite_mask)
    assert (h.directory_table_base, h.pfn_database) == (spec.directory_table_base, spec.pfn_database)
    assert (h.ps_loaded_module_list, h.ps_active_process_head) == (
        spec.ps_loaded_module_list,
        spec.ps_active_process_head,
    )
    assert h.kd_debugger_data_block == spec.kd_debugger_data_block
    assert h.comment == spec.comment
    assert h.dump_type == L.DUMP_TYPE_TRIAGE
    assert h.required_dump_space == dump.file_size
    assert h.mini_dump_fields == L.TRIAGE_DUMP_DRIVER_LIST | L.TRIAGE_DUMP_DATA_BLOCKS


def test_live_flag_and_page_fill(written) -> None:
    _, dump = written
    assert dump.header.is_live_dump and dump.header.is_kernel_generated_triage
    assert dump.header.attributes == L.ATTR_LIVE_DUMP_GENERATED_DUMP | L.ATTR_KERNEL_GENERATED_TRIAGE_DUMP
    assert dump.header.secondary_data_state is None and dump.header.boot_id is None
    raw = dump.read_file(0, L.HEADER64_SIZE)
    assert raw[0x103C:0x1040] == b"PAGE"  # SecondaryDataState left as Windows leaves it
    assert raw[0x348:0x350] == b"PAGEPAGE"  # no context record is simulated


def test_not_live(tmp_path: Path) -> None:
    spec = TriageDumpSpec(0xE2, (0, 0, 0, 0), data_blocks=[(0xFFFF800000000000, b"x")], live=False)
    with KernelDump(write_triage_dump(tmp_path / "crash.dmp", spec)) as dump:
        assert not dump.header.is_live_dump
        assert dump.header.attributes is None  # "PAGE", like both real (non-live) fixtures
        assert dump.header.comment == ""


def test_blocks_round_trip(written) -> None:
    spec, dump = written
    assert [(b.address, b.size) for b in dump.data_blocks] == [(a, len(p)) for a, p in spec.data_blocks]
    assert all(b.offset % 8 == 0 for b in dump.data_blocks)  # DMF_FACTS F08: rounded up to 8
    for block, (_, payload) in zip(dump.data_blocks, spec.data_blocks, strict=True):
        assert dump.block_bytes(block) == payload
    # The duplicate address: the first block in file order wins, and it holds the whole range.
    assert dump.read_virtual(0xFFFFB00012340000, 16) == (b"collection" * 5)[:16]
    assert dump.read_virtual(0xFFFFB00099990010 + 10, 3) == bytes([10, 11, 12])


def test_blobs_round_trip(written) -> None:
    spec, dump = written
    assert [(b.guid, b.size) for b in dump.secondary_data] == [(g, len(p)) for g, p in spec.secondary_data]
    assert [dump.blob_bytes(b) for b in dump.blobs_with_guid(GUID_A)] == [b"secondary-1", b"again"]
    assert [dump.blob_bytes(b) for b in dump.blobs_with_guid(str(GUID_B))] == [b"z" * 9]
    assert dump.blob_chain_end == dump.file_size


def test_drivers_round_trip(written) -> None:
    spec, dump = written
    assert [(d.name, d.base, d.size) for d in dump.drivers] == spec.drivers


def test_triage_structure(written) -> None:
    _, dump = written
    t = dump.triage
    assert t is not None
    assert dump.read_file(t.valid_offset, 4) == b"TRGD" and t.valid_offset == t.size_of_dump - 4
    assert t.valid_offset % 8 == 0  # as in both fixtures
    assert dump.read_file(t.size_of_dump, 8) == b"DumpBlob"
    assert int.from_bytes(dump.read_file(t.size_of_dump + 12, 4), "little") == 0xF0000000 | 22621


def test_default_spec_has_drivers_and_no_blobs(tmp_path: Path) -> None:
    spec = TriageDumpSpec(0x161, (0, 0, 0, 0), data_blocks=[(0xFFFF800000001000, b"abc")])
    with open_dump(write_triage_dump(tmp_path / "d.dmp", spec)) as dump:
        assert isinstance(dump, KernelDump)
        assert [d.file_name for d in dump.drivers][:3] == ["ntoskrnl.exe", "hal.dll", "Wdf01000.sys"]
        assert dump.secondary_data == [] and dump.blob_chain_end == dump.file_size
        assert dump.triage is not None and dump.triage.size_of_dump == dump.file_size


def test_write_is_atomic_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "r.dmp"
    target.write_bytes(b"old")
    spec = TriageDumpSpec(0x161, (0, 0, 0, 0), data_blocks=[])
    assert write_triage_dump(target, spec) == target
    assert target.read_bytes()[:8] == b"PAGEDU64"
    assert [p.name for p in tmp_path.iterdir()] == ["r.dmp"]  # no temp file left behind


@pytest.mark.parametrize(
    "change",
    [
        {"bugcheck_code": 1 << 32},
        {"bugcheck_parameters": (-1, 0, 0, 0)},
        {"data_blocks": [(1 << 64, b"x")]},
        {"comment": "c" * 128},
    ],
)
def test_values_that_do_not_fit_are_refused(tmp_path: Path, change: dict) -> None:
    spec = TriageDumpSpec(0x161, (0, 0, 0, 0), data_blocks=[])
    for key, value in change.items():
        setattr(spec, key, value)
    with pytest.raises(ValueError):
        write_triage_dump(tmp_path / "bad.dmp", spec)
    assert not (tmp_path / "bad.dmp").exists()


KERNEL_VA = st.integers(min_value=0xFFFF800000000000, max_value=0xFFFF800000010000)
BLOCKS = st.lists(st.tuples(KERNEL_VA, st.binary(min_size=1, max_size=64)), max_size=20)
BLOBS = st.lists(st.tuples(st.uuids(), st.binary(max_size=40)), max_size=6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blocks=BLOCKS, blobs=BLOBS)
def test_round_trip_property(blocks: list[tuple[int, bytes]], blobs: list[tuple[uuid.UUID, bytes]]) -> None:
    """Any blocks (overlapping or not) and blobs come back; lookups pick the first block in file order."""
    spec = TriageDumpSpec(0x161, (0, 0, 0, 0), data_blocks=blocks, secondary_data=blobs)
    with (
        tempfile.TemporaryDirectory() as folder,
        KernelDump(write_triage_dump(Path(folder) / "p.dmp", spec)) as dump,
    ):
        assert [(b.address, dump.block_bytes(b)) for b in dump.data_blocks] == blocks
        assert [(b.guid, dump.blob_bytes(b)) for b in dump.secondary_data] == blobs
        assert dump.blob_chain_end == dump.file_size
        for address, payload in blocks:
            j = next(
                j for j, (a, p) in enumerate(blocks) if a <= address and address + len(payload) <= a + len(p)
            )
            start = address - blocks[j][0]
            assert dump.block_containing(address, len(payload)) == dump.data_blocks[j]
            assert dump.read_virtual(address, len(payload)) == blocks[j][1][start : start + len(payload)]

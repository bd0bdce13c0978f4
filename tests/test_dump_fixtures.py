"""The reader on real Windows dumps reports exactly what an independent parser reports.

Expected values are rizin's recorded ``iH`` output for these very files: repository rizinorg/rizin,
file ``test/db/formats/dmp/dmp``, tests "Triage Dump Debug x64" (bins/dmp/triage_x64.dmp) and
"Triage Dump Debug arm64" (bins/dmp/triage_arm64.dmp). rizin prints raw values; where it prints the
"PAGE" fill 0x45474150 (SecondaryDataState) our model says None (unset, DUMP_FORMAT.md).

Other facts (first driver, blob GUIDs) were checked by hand with ``xxd`` before being written here:
the first driver-list entry of both files points at the DUMP_STRING
``21 00 00 00 5c 00 53 00 ...`` = 33 chars "\\SystemRoot\\system32\\ntoskrnl.exe".
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import pytest

from harness.dump import AddressNotInDump, DumpFormatError, KernelDump, UserModeMinidump, open_dump

pytestmark = pytest.mark.needs_shared

PAGE = None  # how the reader reports a field rizin prints as 0x45474150

RIZIN_HEADER = {
    "triage_x64.dmp": {
        "MajorVersion": 0xF,
        "MinorVersion": 0x4A61,
        "DirectoryTableBase": 0x1AD000,
        "PfnDataBase": 0xFFFFF8047C6FC500,
        "PsLoadedModuleList": 0xFFFFF8047C62A390,
        "PsActiveProcessHead": 0xFFFFF8047C61E200,
        "MachineImageType": 0x8664,
        "NumberProcessors": 0x10,
        "BugCheckCode": 0x1000007E,
        "BugCheckParameter1": 0xFFFFFFFFC0000005,
        "BugCheckParameter2": 0xFFFFF8048B58334C,
        "BugCheckParameter3": 0xFFFF850429891EE8,
        "BugCheckParameter4": 0xFFFF850429891720,
        "KdDebuggerDataBlock": 0xFFFFF8047C600B20,
        "SecondaryDataState": PAGE,
        "ProductType": 1,
        "SuiteMask": 0x110,
    },
    "triage_arm64.dmp": {
        "MajorVersion": 0xF,
        "MinorVersion": 0x55F0,
        "DirectoryTableBase": 0x946AA000,
        "PfnDataBase": 0xFFFFF803F3B19960,
        "PsLoadedModuleList": 0xFFFFF803F3A2AA20,
        "PsActiveProcessHead": 0xFFFFF803F3A1D1C0,
        "MachineImageType": 0xAA64,
        "NumberProcessors": 8,
        "BugCheckCode": 0x1C8,
        "BugCheckParameter1": 0x1B58,
        "BugCheckParameter2": 0xFFFFF803F3A20860,
        "BugCheckParameter3": 0,
        "BugCheckParameter4": 0,
        "KdDebuggerDataBlock": 0xFFFFF803F3A00D00,
        "SecondaryDataState": PAGE,
        "ProductType": 1,
        "SuiteMask": 0x110,
    },
}

_TRIAGE_COMMON = {
    "ServicePackBuild": 0,
    "ContextOffset": 0x348,
    "ExceptionOffset": 0xF00,
    "MmOffset": 0x2080,
    "UnloadedDriversOffset": 0x20D0,
    "BrokenDriverOffset": 0,
    "TriageOptions": 0xFFFFFFFF,
    "BStoreOffset": 0,
    "SizeOfBStore": 0,
    "LimitOfBStore": 0,
    "DataPageAddress": 0,
    "DataPageOffset": 0,
    "DataPageSize": 0,
    "DebuggerDataSize": 0x380,
}

RIZIN_TRIAGE = {
    "triage_x64.dmp": {
        **_TRIAGE_COMMON,
        "SizeOfDump": 0x13A28C,
        "ValidOffset": 0x13A288,
        "PrcbOffset": 0x21B8,
        "ProcessOffset": 0xD0B8,
        "ThreadOffset": 0xDAF8,
        "CallStackOffset": 0xE390,
        "SizeOfCallStack": 0x2118,
        "DriverListOffset": 0x10828,
        "DriverCount": 0x97,
        "StringPoolOffset": 0x15D18,
        "StringPoolSize": 0x3720,
        "TopOfStack": 0xFFFF850429890EE8,
        "DebuggerDataOffset": 0x104A8,
        "DataBlocksOffset": 0x19438,
        "DataBlocksCount": 0x727,
    },
    "triage_arm64.dmp": {
        **_TRIAGE_COMMON,
        "SizeOfDump": 0xAC46C,
        "ValidOffset": 0xAC468,
        "PrcbOffset": 0x2340,
        "ProcessOffset": 0xB9C0,
        "ThreadOffset": 0xC640,
        "CallStackOffset": 0xCF50,
        "SizeOfCallStack": 0xB60,
        "DriverListOffset": 0xDE30,
        "DriverCount": 0xF5,
        "StringPoolOffset": 0x16800,
        "StringPoolSize": 0x6EB0,
        "TopOfStack": 0xFFFFE00E0E4BC4A0,
        "DebuggerDataOffset": 0xDAB0,
        "DataBlocksOffset": 0x1D6B0,
        "DataBlocksCount": 0x2A7,
    },
}

TRIAGE_FILES = sorted(RIZIN_HEADER)


def _snake(rizin_name: str) -> str:
    special = {
        "PfnDataBase": "pfn_database",
        "BugCheckCode": "bugcheck_code",
        "BStoreOffset": "bstore_offset",
    }
    special |= {"SizeOfBStore": "size_of_bstore", "LimitOfBStore": "limit_of_bstore"}
    if rizin_name in special:
        return special[rizin_name]
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in rizin_name).lstrip("_")


@pytest.fixture(params=TRIAGE_FILES)
def triage_file(request: pytest.FixtureRequest, fixture_dumps: Path) -> Path:
    return fixture_dumps / request.param


@pytest.fixture
def dump(triage_file: Path):
    with KernelDump(triage_file) as opened:
        yield opened


def test_header_matches_rizin(dump: KernelDump) -> None:
    expected = RIZIN_HEADER[dump.path.name]
    params = dict(
        zip([f"BugCheckParameter{i}" for i in range(1, 5)], dump.header.bugcheck_parameters, strict=True)
    )
    actual = {
        name: params[name] if name in params else getattr(dump.header, _snake(name)) for name in expected
    }
    assert actual == expected
    assert dump.header.dump_type == 4
    assert not dump.header.is_live_dump  # DUMP_FORMAT.md: neither fixture is a live dump


def test_triage_matches_rizin(dump: KernelDump) -> None:
    expected = RIZIN_TRIAGE[dump.path.name]
    assert dump.triage is not None
    actual = {name: getattr(dump.triage, _snake(name)) for name in expected}
    assert actual == expected
    assert len(expected) == 29  # every TRIAGE_DUMP64 field is compared


def test_machine_names(fixture_dumps: Path) -> None:
    with (
        open_dump(fixture_dumps / "triage_x64.dmp") as x64,
        open_dump(fixture_dumps / "triage_arm64.dmp") as arm,
    ):
        assert (x64.header.machine_name, arm.header.machine_name) == ("x64", "ARM64")
        assert (x64.header.build, arm.header.build) == (19041, 22000)  # DUMP_FORMAT.md fixture table


def test_trgd_at_valid_offset(dump: KernelDump, triage_file: Path) -> None:
    assert dump.triage is not None
    raw = triage_file.read_bytes()
    assert raw[dump.triage.valid_offset : dump.triage.valid_offset + 4] == b"TRGD"
    assert dump.triage.valid_offset == dump.triage.size_of_dump - 4


def test_every_data_block_inside_size_of_dump(dump: KernelDump) -> None:
    assert dump.triage is not None
    assert len(dump.data_blocks) == dump.triage.data_blocks_count
    table_end = dump.triage.data_blocks_offset + 16 * dump.triage.data_blocks_count
    for block in dump.data_blocks:
        assert table_end <= block.offset
        assert block.offset + block.size <= dump.triage.size_of_dump


def test_drivers(dump: KernelDump) -> None:
    assert dump.triage is not None
    assert len(dump.drivers) == dump.triage.driver_count
    assert all(d.name and d.name.isprintable() for d in dump.drivers)
    first = dump.drivers[0]
    assert first.name == "\\SystemRoot\\system32\\ntoskrnl.exe"
    assert first.file_name == "ntoskrnl.exe"
    assert dump.drivers[1].file_name == "hal.dll"
    expected_base = {
        "triage_x64.dmp": (0xFFFFF8047BA00000, 0x1046000),
        "triage_arm64.dmp": (0xFFFFF803F2E00000, 0x103E000),
    }
    assert (first.base, first.size) == expected_base[dump.path.name]


def test_blob_chain_ends_at_end_of_file(dump: KernelDump) -> None:
    """The walk consumes the file exactly; found by hand: x64 20 blobs, ARM64 42, one zero GUID each."""
    assert dump.blob_chain_end == dump.file_size
    counts = {"triage_x64.dmp": 20, "triage_arm64.dmp": 42}
    assert len(dump.secondary_data) == counts[dump.path.name]
    zero = [b for b in dump.secondary_data if b.guid == uuid.UUID(int=0)]
    assert len(zero) == 1 and zero[0].size == 0
    for blob in dump.secondary_data:
        assert dump.triage is not None and dump.triage.size_of_dump < blob.data_offset
        assert blob.data_offset + blob.size <= dump.file_size


def test_known_blobs_of_x64(fixture_dumps: Path) -> None:
    """Two blobs whose content identifies them: a WDF driver's name and a KMDF IFR "DriverLog"."""
    with KernelDump(fixture_dumps / "triage_x64.dmp") as dump:
        first = dump.secondary_data[0]
        assert first.guid == uuid.UUID("54c84888-01d1-4c1e-bed6-282c98241303")
        assert first.size == 0x1000
        (amd,) = dump.blobs_with_guid(uuid.UUID("67fc721a-2852-4f62-a3b1-2afc53953777"))
        assert dump.blob_bytes(amd).startswith(b"AmdPPM\0")
        (log,) = dump.blobs_with_guid("67fc721a-2853-4f62-a3b1-2afc53953777")
        assert dump.blob_bytes(log).startswith(b"DriverLog\0")


def test_read_virtual_inside_a_block(dump: KernelDump, triage_file: Path) -> None:
    raw = triage_file.read_bytes()
    blocks = [b for b in dump.data_blocks if b.size >= 32][:50]
    assert blocks
    for block in blocks:
        got = dump.read_virtual(block.address + 8, block.size - 16)
        assert got == raw[block.offset + 8 : block.offset + block.size - 8]
        assert dump.block_bytes(block) == raw[block.offset : block.offset + block.size]


def test_block_containing_finds_each_block(dump: KernelDump) -> None:
    for block in dump.data_blocks:
        assert dump.block_containing(block.address, block.size) == block
        assert dump.block_containing(block.address + block.size - 1) == block


def test_read_across_a_block_end_raises(dump: KernelDump) -> None:
    block = max(dump.data_blocks, key=lambda b: b.size)
    with pytest.raises(AddressNotInDump) as info:
        dump.read_virtual(block.address + block.size - 4, 8)
    assert f"0x{block.address:x}" in str(info.value)  # the nearest block is named
    assert info.value.address == block.address + block.size - 4


def test_read_outside_every_block_raises(dump: KernelDump) -> None:
    with pytest.raises(AddressNotInDump):
        dump.read_virtual(0x1000, 4)  # user-mode page zero+1: never captured in a kernel triage dump


def test_calc_is_a_user_mode_minidump(fixture_dumps: Path) -> None:
    with open_dump(fixture_dumps / "calc.dmp") as dump:
        assert isinstance(dump, UserModeMinidump)
        assert dump.architecture == "AMD64"
        assert dump.thread_count == 5
        assert dump.module_count == 28
        assert any(name.lower().endswith("\\calc.exe") for name in dump.module_names)
        assert dump.exception_code == 0x80000003  # EXCEPTION_BREAKPOINT


def test_kernel_reader_rejects_calc(fixture_dumps: Path) -> None:
    with pytest.raises(DumpFormatError) as info:
        KernelDump(fixture_dumps / "calc.dmp")
    assert info.value.field == "DUMP_HEADER64.Signature"
    assert "MDMP" in str(info.value) and "4d444d50" in str(info.value)


def test_user_mode_open_leaves_logging_alone(fixture_dumps: Path, caplog: pytest.LogCaptureFixture) -> None:
    """minidump logs a PEB traceback on the root logger for calc.dmp; the reader drops exactly that
    record and restores the root logger's handlers and filters."""
    root = logging.getLogger()
    before = (list(root.handlers), list(root.filters))
    with caplog.at_level(logging.DEBUG), open_dump(fixture_dumps / "calc.dmp"):
        pass
    assert "PEB parsing error" not in caplog.text
    assert (list(root.handlers), list(root.filters)) == before

"""Every on-disk structure's size and field offsets, asserted against the tables of DUMP_FORMAT.md.

The expected numbers are copied from /work/shared/reference/DUMP_FORMAT.md (and, for fields that
document leaves implicit, from mindumpdef.h / ntiodump.h as published in the Windows SDK), not
computed from harness.dump.layout: a wrong field type or order there fails here.
"""

from __future__ import annotations

import ctypes
import dataclasses

import pytest

from harness.dump import layout as L
from harness.dump.records import TriageDump64

HEADER64 = {
    "Signature": 0x000,
    "ValidDump": 0x004,
    "MajorVersion": 0x008,
    "MinorVersion": 0x00C,
    "DirectoryTableBase": 0x010,
    "PfnDataBase": 0x018,
    "PsLoadedModuleList": 0x020,
    "PsActiveProcessHead": 0x028,
    "MachineImageType": 0x030,
    "NumberProcessors": 0x034,
    "BugCheckCode": 0x038,
    "BugCheckParameter1": 0x040,
    "BugCheckParameter2": 0x048,
    "BugCheckParameter3": 0x050,
    "BugCheckParameter4": 0x058,
    "VersionUser": 0x060,  # mindumpdef.h; DUMP_FORMAT.md skips it
    "KdDebuggerDataBlock": 0x080,
    "PhysicalMemory": 0x088,
    "ContextRecord": 0x348,
    "Exception": 0xF00,
    "DumpType": 0xF98,
    "RequiredDumpSpace": 0xFA0,
    "SystemTime": 0xFA8,
    "Comment": 0xFB0,
    "SystemUpTime": 0x1030,
    "MiniDumpFields": 0x1038,
    "SecondaryDataState": 0x103C,
    "ProductType": 0x1040,
    "SuiteMask": 0x1044,
    "WriterStatus": 0x1048,
    "Unused1": 0x104C,
    "KdSecondaryVersion": 0x104D,
    "Unused2": 0x104E,
    "Attributes": 0x1050,
    "BootId": 0x1054,
    "Reserved0": 0x1058,
}

TRIAGE64 = {
    "ServicePackBuild": 0x00,
    "SizeOfDump": 0x04,
    "ValidOffset": 0x08,
    "ContextOffset": 0x0C,
    "ExceptionOffset": 0x10,
    "MmOffset": 0x14,
    "UnloadedDriversOffset": 0x18,
    "PrcbOffset": 0x1C,
    "ProcessOffset": 0x20,
    "ThreadOffset": 0x24,
    "CallStackOffset": 0x28,
    "SizeOfCallStack": 0x2C,
    "DriverListOffset": 0x30,
    "DriverCount": 0x34,
    "StringPoolOffset": 0x38,
    "StringPoolSize": 0x3C,
    "BrokenDriverOffset": 0x40,
    "TriageOptions": 0x44,
    "TopOfStack": 0x48,
    "BStoreOffset": 0x50,
    "SizeOfBStore": 0x54,
    "LimitOfBStore": 0x58,
    "DataPageAddress": 0x60,
    "DataPageOffset": 0x68,
    "DataPageSize": 0x6C,
    "DebuggerDataOffset": 0x70,
    "DebuggerDataSize": 0x74,
    "DataBlocksOffset": 0x78,
    "DataBlocksCount": 0x7C,
}

DATA_BLOCK = {"Address": 0x0, "Offset": 0x8, "Size": 0xC}
DRIVER_ENTRY = {"DriverNameOffset": 0x0, "Alignment": 0x4, "LdrEntry": 0x8}
# KLDR_DATA_TABLE_ENTRY64 inside the driver entry (offsets relative to the entry, +8 for LdrEntry).
LDR_ENTRY_IN_DRIVER = {
    "DllBase": 0x38,
    "EntryPoint": 0x40,
    "SizeOfImage": 0x48,
    "CheckSum": 0x80,
    "TimeDateStamp": 0x88,
}
BLOB_FILE_HEADER = {"Signature": 0x0, "HeaderSize": 0x8, "BuildNumber": 0xC}
BLOB_HEADER = {"HeaderSize": 0x0, "Tag": 0x4, "DataSize": 0x14, "PrePad": 0x18, "PostPad": 0x1C}
EXCEPTION_RECORD = {"ExceptionCode": 0x0, "ExceptionAddress": 0x10, "NumberParameters": 0x18}
PHYSICAL_MEMORY = {"NumberOfRuns": 0x0, "NumberOfPages": 0x8, "Run": 0x10}  # +0x88: 0x88, 0x90, 0x98

CASES = [
    (L.DUMP_HEADER64, 0x2000, HEADER64),
    (L.TRIAGE_DUMP64, 0x80, TRIAGE64),
    (L.TRIAGE_DATA_BLOCK, 0x10, DATA_BLOCK),
    (L.DUMP_DRIVER_ENTRY64, 0x90, DRIVER_ENTRY),
    (L.DUMP_BLOB_FILE_HEADER, 0x10, BLOB_FILE_HEADER),
    (L.DUMP_BLOB_HEADER, 0x20, BLOB_HEADER),
    (L.EXCEPTION_RECORD64, 0x98, EXCEPTION_RECORD),
    (L.PHYSICAL_MEMORY_DESCRIPTOR64, 0x20, PHYSICAL_MEMORY),
]


@pytest.mark.parametrize(("struct", "size", "offsets"), CASES, ids=[c[0].__name__ for c in CASES])
def test_structure_size_and_offsets(
    struct: type[ctypes.Structure], size: int, offsets: dict[str, int]
) -> None:
    assert ctypes.sizeof(struct) == size
    actual = {name: getattr(struct, name).offset for name in offsets}
    assert actual == offsets


@pytest.mark.parametrize(("struct", "size", "offsets"), CASES[:2], ids=["DUMP_HEADER64", "TRIAGE_DUMP64"])
def test_every_field_is_in_the_table(
    struct: type[ctypes.Structure], size: int, offsets: dict[str, int]
) -> None:
    """No field of the two big structures goes unasserted."""
    assert [name for name, _ in struct._fields_] == list(offsets)


def test_driver_entry_documented_fields() -> None:
    """DUMP_FORMAT.md: name offset u32 @+0, DllBase u64 @+0x38, SizeOfImage u32 @+0x48."""
    ldr = L.DUMP_DRIVER_ENTRY64.LdrEntry.offset
    actual = {name: ldr + getattr(L.KLDR_DATA_TABLE_ENTRY64, name).offset for name in LDR_ENTRY_IN_DRIVER}
    assert actual == LDR_ENTRY_IN_DRIVER
    assert (L.DRIVER_ENTRY_DLL_BASE, L.DRIVER_ENTRY_SIZE_OF_IMAGE) == (0x38, 0x48)
    assert ctypes.sizeof(L.KLDR_DATA_TABLE_ENTRY64) == 0x88


def test_physical_memory_block_rounds_to_704() -> None:
    """700 bytes in the table, but ContextRecord sits at 0x348 = 0x88 + 704: the union is 8-aligned."""
    assert ctypes.sizeof(L.PHYSICAL_MEMORY_BLOCK64) == 704


def test_constants() -> None:
    assert L.PAGE_FILL_U32 == int.from_bytes(b"PAGE", "little") == 0x45474150
    assert L.PAGE_FILL_U64 == int.from_bytes(b"PAGEPAGE", "little") == 0x4547415045474150
    assert (L.SIGNATURE_64, L.SIGNATURE_32, L.TRIAGE_VALID) == (b"PAGEDU64", b"PAGEDUMP", b"TRGD")
    assert L.DUMP_BLOB_SIGNATURE == b"DumpBlob"
    assert (L.ATTR_KERNEL_GENERATED_TRIAGE_DUMP, L.ATTR_LIVE_DUMP_GENERATED_DUMP) == (1 << 3, 1 << 4)
    assert L.TRIAGE_DUMP_DATA_BLOCKS == 0x800
    assert L.TRIAGE_DUMP_DRIVER_LIST == 0x40
    assert L.TRIAGE_OPTION_OVERFLOWED == 0x100
    assert (L.DUMP_TYPE_FULL, L.DUMP_TYPE_TRIAGE, L.DUMP_TYPE_BITMAP_FULL, L.DUMP_TYPE_BITMAP_KERNEL) == (
        1,
        4,
        5,
        6,
    )


def test_triage_record_follows_the_on_disk_order() -> None:
    """TriageDump64.from_raw copies fields by position: its names must match TRIAGE_DUMP64's, in order."""
    record = [f.name.replace("_", "") for f in dataclasses.fields(TriageDump64)]
    on_disk = [name.lower() for name, _ in L.TRIAGE_DUMP64._fields_]
    assert record == on_disk


def test_field_offset_helpers() -> None:
    assert L.triage_field_offset("DataBlocksOffset") == 0x2078
    assert L.header_field_offset("DumpType") == 0xF98

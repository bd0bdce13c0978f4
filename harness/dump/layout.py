"""Every on-disk structure of a Windows kernel dump, stated once.

The layouts are those of /work/shared/reference/DUMP_FORMAT.md, which agrees with the Windows SDK's
``mindumpdef.h`` / ``ntiodump.h``, rizin (``librz/bin/format/dmp/dmp_specs.h``) and kdmp-parser.
Each structure is a ctypes ``LittleEndianStructure`` with natural alignment (the C compiler's, which
is how Windows lays them out), so ``Struct.Field.offset`` and ``ctypes.sizeof(Struct)`` are the
on-disk offsets and sizes; ``tests/test_dump_layout.py`` asserts each one against the table.
The reader decodes with ``Struct.from_buffer_copy(mmap, offset)`` (a copy of exactly that many
bytes) and the writer encodes with ``bytes(struct)``: one definition serves both directions.
"""

from __future__ import annotations

import ctypes

u8 = ctypes.c_uint8
u16 = ctypes.c_uint16
u32 = ctypes.c_uint32
u64 = ctypes.c_uint64
i64 = ctypes.c_int64

# --- signatures -------------------------------------------------------------------------------------
SIGNATURE_64 = b"PAGEDU64"  # Signature "PAGE" + ValidDump "DU64": DUMP_HEADER64
SIGNATURE_32 = b"PAGEDUMP"  # 32-bit DUMP_HEADER32 (0x1000 bytes): not supported yet
SIGNATURE_MDMP = b"MDMP"  # user-mode minidump (MINIDUMP_HEADER)
PAGE = b"PAGE"
VALID_DUMP_64 = b"DU64"
TRIAGE_VALID = b"TRGD"  # at TRIAGE_DUMP64.ValidOffset
DUMP_BLOB_SIGNATURE = b"DumpBlob"  # "Dump" "Blob": the secondary-data file header

# Windows fills the header with "PAGE" before writing it: a field still holding the fill is unset.
PAGE_FILL_U32 = 0x45474150
PAGE_FILL_U64 = 0x4547415045474150

# --- DumpType (DUMP_HEADER64.DumpType) --------------------------------------------------------------
DUMP_TYPE_FULL = 1
DUMP_TYPE_SUMMARY = 2
DUMP_TYPE_HEADER = 3
DUMP_TYPE_TRIAGE = 4
DUMP_TYPE_BITMAP_FULL = 5
DUMP_TYPE_BITMAP_KERNEL = 6
DUMP_TYPE_AUTOMATIC = 7
DUMP_TYPE_NAMES = {
    DUMP_TYPE_FULL: "full",
    DUMP_TYPE_SUMMARY: "summary",
    DUMP_TYPE_HEADER: "header-only",
    DUMP_TYPE_TRIAGE: "triage",
    DUMP_TYPE_BITMAP_FULL: "bitmap full",
    DUMP_TYPE_BITMAP_KERNEL: "bitmap kernel",
    DUMP_TYPE_AUTOMATIC: "automatic",
}

# --- MiniDumpFields (which TRIAGE_DUMP64 sections are present) -------------------------------------
TRIAGE_DUMP_CONTEXT = 0x0001
TRIAGE_DUMP_EXCEPTION = 0x0002
TRIAGE_DUMP_PRCB = 0x0004
TRIAGE_DUMP_PROCESS = 0x0008
TRIAGE_DUMP_THREAD = 0x0010
TRIAGE_DUMP_STACK = 0x0020
TRIAGE_DUMP_DRIVER_LIST = 0x0040
TRIAGE_DUMP_BROKEN_DRIVER = 0x0080
TRIAGE_DUMP_MMINFO = 0x0100
TRIAGE_DUMP_DATAPAGE = 0x0200
TRIAGE_DUMP_DEBUGGER_DATA = 0x0400
TRIAGE_DUMP_DATA_BLOCKS = 0x0800
TRIAGE_OPTION_OVERFLOWED = 0x0100  # TRIAGE_DUMP64.TriageOptions

# --- Attributes (DUMP_FILE_ATTRIBUTES bit field) ------------------------------------------------------
ATTR_HIBER_CRASH = 1 << 0
ATTR_DUMP_DEVICE_POWER_OFF = 1 << 1
ATTR_INSUFFICIENT_DUMPFILE_SIZE = 1 << 2
ATTR_KERNEL_GENERATED_TRIAGE_DUMP = 1 << 3
ATTR_LIVE_DUMP_GENERATED_DUMP = 1 << 4
ATTR_DUMP_IS_GENERATED_OFFLINE = 1 << 5
ATTR_FILTER_DUMP_FILE = 1 << 6
ATTR_EARLY_BOOT_CRASH = 1 << 7
ATTR_ENCRYPTED_DUMP_DATA = 1 << 8
ATTR_DECRYPTED_DUMP = 1 << 9

# --- MachineImageType ---------------------------------------------------------------------------------
MACHINE_AMD64 = 0x8664
MACHINE_ARM64 = 0xAA64
MACHINE_I386 = 0x14C
MACHINE_NAMES = {MACHINE_AMD64: "x64", MACHINE_ARM64: "ARM64", MACHINE_I386: "x86"}

# --- sizes ----------------------------------------------------------------------------------------------
HEADER64_SIZE = 0x2000
TRIAGE_DUMP64_OFFSET = 0x2000  # TRIAGE_DUMP64 follows the header in a DumpType-4 file
PHYSICAL_MEMORY_BLOCK_SIZE = 700
CONTEXT_RECORD_SIZE = 3000
COMMENT_SIZE = 128
EXCEPTION_MAXIMUM_PARAMETERS = 15


class EXCEPTION_RECORD64(ctypes.LittleEndianStructure):
    """The bugcheck's exception record, at DUMP_HEADER64 + 0xF00 (0x98 bytes)."""

    _fields_ = [
        ("ExceptionCode", u32),
        ("ExceptionFlags", u32),
        ("ExceptionRecord", u64),
        ("ExceptionAddress", u64),
        ("NumberParameters", u32),
        ("UnusedAlignment", u32),
        ("ExceptionInformation", u64 * EXCEPTION_MAXIMUM_PARAMETERS),
    ]


class PHYSICAL_MEMORY_RUN64(ctypes.LittleEndianStructure):
    _fields_ = [("BasePage", u64), ("PageCount", u64)]


class PHYSICAL_MEMORY_DESCRIPTOR64(ctypes.LittleEndianStructure):
    _fields_ = [("NumberOfRuns", u32), ("NumberOfPages", u64), ("Run", PHYSICAL_MEMORY_RUN64 * 1)]


class PHYSICAL_MEMORY_BLOCK64(ctypes.Union):
    """700 bytes in C, but the u64 members make the union 8-aligned: 704, so ContextRecord is at 0x348."""

    _fields_ = [
        ("PhysicalMemoryBlock", PHYSICAL_MEMORY_DESCRIPTOR64),
        ("PhysicalMemoryBlockBuffer", u8 * PHYSICAL_MEMORY_BLOCK_SIZE),
    ]


# --- kernel memory dumps (DumpType 1, 5, 6): where the physical pages are -----------------------------
PAGE_SIZE = 0x1000
PAGE_SHIFT = 12
BITMAP_DUMP_OFFSET = 0x2000  # BITMAP_DUMP64 follows the header in a DumpType-5/6 file
BITMAP_SIGNATURES = (b"SDMP", b"FDMP")  # kernel (summary) bitmap / full bitmap
BITMAP_VALID_DUMP = b"DUMP"
FULL_DUMP_FIRST_PAGE = 0x2000  # DumpType 1: the runs' pages follow the header, run after run
PHYSICAL_MEMORY_RUNS_OFFSET = 0x98  # Run[0] of DUMP_HEADER64.PhysicalMemoryBlock


class BITMAP_DUMP64(ctypes.LittleEndianStructure):
    """At 0x2000 of a bitmap dump (DUMP_FORMAT.md "Bitmap dumps"; kdmp-parser's BMP_HEADER64, rizin's
    dmp_bmp_header): bit N of the bitmap (``Pages`` bits, from +0x38) says page frame N is present;
    present pages are stored in PFN order from file offset ``FirstPage``. The 0x18 bytes at +0x8 are
    not documented by any of the public parsers and are not read."""

    _fields_ = [
        ("Signature", u8 * 4),
        ("ValidDump", u8 * 4),
        ("Undocumented", u8 * 0x18),
        ("FirstPage", u64),
        ("TotalPresentPages", u64),
        ("Pages", u64),
    ]


BITMAP_DUMP64_SIZE = ctypes.sizeof(BITMAP_DUMP64)  # 0x38: the bitmap starts right after


def bitmap_field_offset(name: str) -> int:
    """Absolute file offset of a BITMAP_DUMP64 field."""
    return BITMAP_DUMP_OFFSET + getattr(BITMAP_DUMP64, name).offset


class DUMP_HEADER64(ctypes.LittleEndianStructure):
    """The first 0x2000 bytes of every 64-bit kernel dump (DUMP_FORMAT.md, "DUMP_HEADER64")."""

    _fields_ = [
        ("Signature", u8 * 4),
        ("ValidDump", u8 * 4),
        ("MajorVersion", u32),
        ("MinorVersion", u32),  # the build number
        ("DirectoryTableBase", u64),
        ("PfnDataBase", u64),
        ("PsLoadedModuleList", u64),
        ("PsActiveProcessHead", u64),
        ("MachineImageType", u32),
        ("NumberProcessors", u32),
        ("BugCheckCode", u32),
        ("BugCheckParameter1", u64),
        ("BugCheckParameter2", u64),
        ("BugCheckParameter3", u64),
        ("BugCheckParameter4", u64),
        ("VersionUser", u8 * 32),
        ("KdDebuggerDataBlock", u64),
        ("PhysicalMemory", PHYSICAL_MEMORY_BLOCK64),
        ("ContextRecord", u8 * CONTEXT_RECORD_SIZE),
        ("Exception", EXCEPTION_RECORD64),
        ("DumpType", u32),
        ("RequiredDumpSpace", i64),
        ("SystemTime", u64),
        ("Comment", u8 * COMMENT_SIZE),
        ("SystemUpTime", i64),
        ("MiniDumpFields", u32),
        ("SecondaryDataState", u32),
        ("ProductType", u32),
        ("SuiteMask", u32),
        ("WriterStatus", u32),
        ("Unused1", u8),
        ("KdSecondaryVersion", u8),
        ("Unused2", u8 * 2),
        ("Attributes", u32),
        ("BootId", u32),
        ("Reserved0", u8 * 4008),
    ]


class TRIAGE_DUMP64(ctypes.LittleEndianStructure):
    """At file offset 0x2000 of a triage dump (0x80 bytes); every ``*Offset`` is an absolute file offset.

    The 0x10 bytes at 0x50 are the architecture-specific union; only its IA-64 member
    (backing store) was ever defined, so it is named after that member and is zero on x64/ARM64.
    """

    _fields_ = [
        ("ServicePackBuild", u32),
        ("SizeOfDump", u32),
        ("ValidOffset", u32),
        ("ContextOffset", u32),
        ("ExceptionOffset", u32),
        ("MmOffset", u32),
        ("UnloadedDriversOffset", u32),
        ("PrcbOffset", u32),
        ("ProcessOffset", u32),
        ("ThreadOffset", u32),
        ("CallStackOffset", u32),
        ("SizeOfCallStack", u32),
        ("DriverListOffset", u32),
        ("DriverCount", u32),
        ("StringPoolOffset", u32),
        ("StringPoolSize", u32),
        ("BrokenDriverOffset", u32),
        ("TriageOptions", u32),
        ("TopOfStack", u64),
        ("BStoreOffset", u32),
        ("SizeOfBStore", u32),
        ("LimitOfBStore", u64),
        ("DataPageAddress", u64),
        ("DataPageOffset", u32),
        ("DataPageSize", u32),
        ("DebuggerDataOffset", u32),
        ("DebuggerDataSize", u32),
        ("DataBlocksOffset", u32),
        ("DataBlocksCount", u32),
    ]


class TRIAGE_DATA_BLOCK(ctypes.LittleEndianStructure):
    """One entry of the data-block table: kernel VA it was captured from, and where its bytes are."""

    _fields_ = [("Address", u64), ("Offset", u32), ("Size", u32)]


class LIST_ENTRY64(ctypes.LittleEndianStructure):
    _fields_ = [("Flink", u64), ("Blink", u64)]


class UNICODE_STRING64(ctypes.LittleEndianStructure):
    _fields_ = [("Length", u16), ("MaximumLength", u16), ("Buffer", u64)]


class KLDR_DATA_TABLE_ENTRY64(ctypes.LittleEndianStructure):
    """The kernel loader entry copied into each driver-list entry (0x88 bytes).

    Field names follow ntiodump.h's published ``LDR_DATA_TABLE_ENTRY`` (whose unused fields are
    renamed ``__Undefined*``); in a dump the list links and UNICODE_STRING buffers are target
    addresses, often zero: the name comes from the string pool, not from here.
    """

    _fields_ = [
        ("InLoadOrderLinks", LIST_ENTRY64),
        ("Undefined1", u64),
        ("Undefined2", u64),
        ("Undefined3", u64),
        ("NonPagedDebugInfo", u64),
        ("DllBase", u64),
        ("EntryPoint", u64),
        ("SizeOfImage", u32),
        ("FullDllName", UNICODE_STRING64),
        ("BaseDllName", UNICODE_STRING64),
        ("Flags", u32),
        ("LoadCount", u16),
        ("Undefined5", u16),
        ("Undefined6", u64),
        ("CheckSum", u32),
        ("Padding1", u32),
        ("TimeDateStamp", u32),
        ("Padding2", u32),
    ]


class DUMP_DRIVER_ENTRY64(ctypes.LittleEndianStructure):
    """One driver-list entry (0x90 bytes): DriverNameOffset is an absolute offset of a DUMP_STRING."""

    _fields_ = [("DriverNameOffset", u32), ("Alignment", u32), ("LdrEntry", KLDR_DATA_TABLE_ENTRY64)]


# Offsets of the documented driver-entry fields, relative to the entry (DUMP_FORMAT.md).
DRIVER_ENTRY_DLL_BASE = DUMP_DRIVER_ENTRY64.LdrEntry.offset + KLDR_DATA_TABLE_ENTRY64.DllBase.offset
DRIVER_ENTRY_SIZE_OF_IMAGE = DUMP_DRIVER_ENTRY64.LdrEntry.offset + KLDR_DATA_TABLE_ENTRY64.SizeOfImage.offset


class DUMP_STRING_HEADER(ctypes.LittleEndianStructure):
    """A string-pool entry: Length in UTF-16 code units (not bytes, despite ntiodump.h's comment),
    then Length WCHARs, then a NUL WCHAR."""

    _fields_ = [("Length", u32)]


class DUMP_BLOB_FILE_HEADER(ctypes.LittleEndianStructure):
    """Secondary-data file header at SizeOfDump (0x10 bytes): "DumpBlob", HeaderSize, BuildNumber."""

    _fields_ = [("Signature", u8 * 8), ("HeaderSize", u32), ("BuildNumber", u32)]


class DUMP_BLOB_HEADER(ctypes.LittleEndianStructure):
    """One secondary-data blob header (0x20 bytes); data at hdr + HeaderSize + PrePad."""

    _fields_ = [
        ("HeaderSize", u32),
        ("Tag", u8 * 16),  # GUID in Windows byte order: uuid.UUID(bytes_le=...)
        ("DataSize", u32),
        ("PrePad", u32),
        ("PostPad", u32),
    ]


DUMP_BLOB_FILE_HEADER_SIZE = ctypes.sizeof(DUMP_BLOB_FILE_HEADER)
DUMP_BLOB_HEADER_SIZE = ctypes.sizeof(DUMP_BLOB_HEADER)
TRIAGE_DUMP64_SIZE = ctypes.sizeof(TRIAGE_DUMP64)
TRIAGE_DATA_BLOCK_SIZE = ctypes.sizeof(TRIAGE_DATA_BLOCK)
DUMP_DRIVER_ENTRY64_SIZE = ctypes.sizeof(DUMP_DRIVER_ENTRY64)


def triage_field_offset(name: str) -> int:
    """Absolute file offset of a TRIAGE_DUMP64 field: what error messages point at."""
    return TRIAGE_DUMP64_OFFSET + getattr(TRIAGE_DUMP64, name).offset


def header_field_offset(name: str) -> int:
    """File offset of a DUMP_HEADER64 field (the header starts the file)."""
    return getattr(DUMP_HEADER64, name).offset

"""The kernel structures a current-thread triage dump carries besides its tables: the CONTEXT of the
current thread, the bugcheck's exception record, the MM information block, the unloaded-driver
list, copies of the current KPRCB, EPROCESS and ETHREAD, the call stack and the
KDDEBUGGER_DATA64 copy (MiniDumpFields 0xCFF, as both real fixtures carry).

Layouts are public: CONTEXT (x64) and EXCEPTION_RECORD64 are the SDK's winnt.h ones;
KDDEBUGGER_DATA64's header and first pointers are wdbgexts.h's; DUMP_MM_STORAGE64 and
DUMP_UNLOADED_DRIVERS64 are those rizin's dmp parser reads. The field offsets inside KPRCB,
EPROCESS and ETHREAD change with every Windows build; the ones here are those of Windows 10 build
19041 x64 and are proven on the real fixture ``triage_x64.dmp`` (tests/test_dump_sections.py),
which is the build the simulator writes. Other builds get registers and bounds checks only.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

u8 = ctypes.c_uint8
u16 = ctypes.c_uint16
u32 = ctypes.c_uint32
u64 = ctypes.c_uint64

CONTEXT_AMD64_SIZE = 0x4D0
CONTEXT_AMD64_FULL = 0x0010001F
"""CONTEXT_AMD64 | CONTROL | INTEGER | SEGMENTS | FLOATING_POINT (the fixture's ContextFlags)."""

AMD64_REGISTERS = (
    "Rax", "Rcx", "Rdx", "Rbx", "Rsp", "Rbp", "Rsi", "Rdi",
    "R8", "R9", "R10", "R11", "R12", "R13", "R14", "R15",
)  # fmt: skip


class CONTEXT_AMD64(ctypes.LittleEndianStructure):
    """winnt.h CONTEXT for x64 (0x4D0 bytes; in a triage dump at ContextOffset, 0x348: the header's
    ContextRecord field)."""

    _fields_ = [
        ("PHome", u64 * 6),
        ("ContextFlags", u32),
        ("MxCsr", u32),
        ("SegCs", u16),
        ("SegDs", u16),
        ("SegEs", u16),
        ("SegFs", u16),
        ("SegGs", u16),
        ("SegSs", u16),
        ("EFlags", u32),
        ("Dr", u64 * 6),
        *((name, u64) for name in AMD64_REGISTERS),
        ("Rip", u64),
        ("FltSave", u8 * 512),
        ("VectorRegister", u8 * 26 * 16),
        ("VectorControl", u64),
        ("DebugControl", u64),
        ("LastBranchToRip", u64),
        ("LastBranchFromRip", u64),
        ("LastExceptionToRip", u64),
        ("LastExceptionFromRip", u64),
    ]


class DUMP_MM_STORAGE64(ctypes.LittleEndianStructure):
    """At MmOffset (0x50 bytes; the fixture's Version 1, Size 0x50)."""

    _fields_ = [
        ("Version", u32),
        ("Size", u32),
        ("MmSpecialPoolTag", u32),
        ("MiTriageActionTaken", u32),
        ("MmVerifyDriverLevel", u32),
        ("KernelVerifier", u32),
        ("MmMaximumNonPagedPool", u64),
        ("MmAllocatedNonPagedPool", u64),
        ("PagedPoolMaximum", u64),
        ("PagedPoolAllocated", u64),
        ("CommittedPages", u64),
        ("CommittedPagesPeak", u64),
        ("CommitLimitMaximum", u64),
    ]


class UNICODE_STRING64(ctypes.LittleEndianStructure):
    _fields_ = [("Length", u16), ("MaximumLength", u16), ("Buffer", u64)]


UNLOADED_NAME_CHARS = 12


class DUMP_UNLOADED_DRIVERS64(ctypes.LittleEndianStructure):
    """One unloaded driver (0x38 bytes); the list is a u32 count (8-byte slot) then the entries."""

    _fields_ = [
        ("Name", UNICODE_STRING64),
        ("DriverName", u16 * UNLOADED_NAME_CHARS),
        ("StartAddress", u64),
        ("EndAddress", u64),
    ]


UNLOADED_LIST_HEADER = 8


class KDDEBUGGER_DATA64_HEAD(ctypes.LittleEndianStructure):
    """The first fields of KDDEBUGGER_DATA64 (wdbgexts.h); the copy in a triage dump is 0x380 bytes."""

    _fields_ = [
        ("ListFlink", u64),
        ("ListBlink", u64),
        ("OwnerTag", u32),
        ("Size", u32),
        ("KernBase", u64),
        ("BreakpointWithStatus", u64),
        ("SavedContext", u64),
        ("ThCallbackStack", u16),
        ("NextCallback", u16),
        ("FramePointer", u16),
        ("PaeEnabled", u16),
        ("KiCallUserMode", u64),
        ("KeUserCallbackDispatcher", u64),
        ("PsLoadedModuleList", u64),
        ("PsActiveProcessHead", u64),
        ("PspCidTable", u64),
    ]


KDDEBUGGER_DATA64_SIZE = 0x380
KDDEBUGGER_MM_PFN_DATABASE = 0xC0
"""wdbgexts.h: MmPfnDatabase's offset in KDDEBUGGER_DATA64 (the header's PfnDataBase, in the fixture)."""
KDBG_OWNER_TAG = int.from_bytes(b"KDBG", "little")


@dataclass(frozen=True)
class KernelOffsets:
    """Where the fields the debugger view needs sit in one build's KPRCB / EPROCESS / ETHREAD."""

    prcb_size: int
    process_size: int
    thread_size: int
    prcb_current_thread: int
    process_directory_table_base: int
    process_unique_id: int
    process_active_links: int
    process_image_file_name: int
    thread_stack_limit: int
    thread_stack_base: int
    thread_process: int
    thread_cid: int


X64_19041 = KernelOffsets(
    prcb_size=0xAF00,
    process_size=0xA40,
    thread_size=0x898,
    prcb_current_thread=0x8,
    process_directory_table_base=0x28,
    process_unique_id=0x440,
    process_active_links=0x448,
    process_image_file_name=0x5A8,
    thread_stack_limit=0x30,
    thread_stack_base=0x38,
    thread_process=0x220,
    thread_cid=0x478,
)
"""Windows 10 2004 (build 19041) x64: every offset read back from triage_x64.dmp by a test."""

KERNEL_OFFSETS: dict[tuple[int, int], KernelOffsets] = {(0x8664, 19041): X64_19041}

IMAGE_FILE_NAME_SIZE = 15

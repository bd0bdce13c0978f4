"""Writing the current-thread sections of a triage dump (the writer's part of ``kernel_layout``).

A real current-thread triage dump (both fixtures: MiniDumpFields 0xCFF) carries, in this file
order after TRIAGE_DUMP64: the MM information, the unloaded-driver list, the current KPRCB,
EPROCESS and ETHREAD, the call stack and the KDDEBUGGER_DATA64 copy, then the driver list; the
CONTEXT and the exception record live in the header's own ContextRecord and Exception fields
(ContextOffset 0x348, ExceptionOffset 0xF00). The simulator's dumps follow that order, so a reader
in debugger mode finds registers, the current thread and process, the stack and the debugger data
where it finds them in a real one, instead of "PAGE" fill.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field

from . import kernel_layout as K
from . import layout as L

USER_SEGMENTS = {"SegCs": 0x10, "SegDs": 0x2B, "SegEs": 0x2B, "SegFs": 0x53, "SegGs": 0x2B, "SegSs": 0x18}
"""Kernel-mode segment selectors, as the fixture's CONTEXT holds them."""


@dataclass(frozen=True)
class ThreadState:
    """The current thread (and its process and processor) as the dump captures them."""

    rip: int
    rsp: int
    stack: bytes
    """The stack copy from Rsp upward (the dump's call stack section)."""
    process_name: str
    process_id: int
    thread_id: int
    prcb_address: int
    process_address: int
    thread_address: int
    registers: dict[str, int] = field(default_factory=dict)
    exception_code: int = 0x80000003
    exception_address: int = 0
    unloaded_drivers: tuple[tuple[str, int, int], ...] = ()
    verify_driver_level: int = 0
    """MmVerifyDriverLevel: Driver Verifier's flags for the verified driver, 0 when off."""

    @property
    def stack_base(self) -> int:
        return (self.rsp + len(self.stack) + 0xFFF) & ~0xFFF

    @property
    def stack_limit(self) -> int:
        return self.stack_base - 0x6000


def context_bytes(thread: ThreadState) -> bytes:
    """The x64 CONTEXT of the current thread (0x4D0 bytes)."""
    ctx = K.CONTEXT_AMD64(ContextFlags=K.CONTEXT_AMD64_FULL, MxCsr=0x1F80, EFlags=0x00040246)
    for name, value in USER_SEGMENTS.items():
        setattr(ctx, name, value)
    for name, value in thread.registers.items():
        setattr(ctx, name, value)
    ctx.Rsp, ctx.Rip = thread.rsp, thread.rip
    # FltSave (XMM_SAVE_AREA32) holds MxCsr again at +0x18, equal to CONTEXT.MxCsr as in the real
    # fixture (kdmp-parser refuses a header whose two copies differ: "MxCsr doesn't match MxCsr2")
    ctx.FltSave[0x18:0x1C] = list(ctx.MxCsr.to_bytes(4, "little"))
    return bytes(ctx)


def exception_bytes(thread: ThreadState) -> bytes:
    record = L.EXCEPTION_RECORD64(ExceptionCode=thread.exception_code, ExceptionFlags=1)
    record.ExceptionAddress = thread.exception_address or thread.rip
    return bytes(record)


def _mm(thread: ThreadState) -> bytes:
    mm = K.DUMP_MM_STORAGE64(Version=1, Size=ctypes.sizeof(K.DUMP_MM_STORAGE64))
    mm.MmVerifyDriverLevel = thread.verify_driver_level
    mm.MmMaximumNonPagedPool, mm.PagedPoolMaximum = 0x2_0000_0000, 0x2_0000_0000
    mm.CommittedPages, mm.CommittedPagesPeak, mm.CommitLimitMaximum = 0x9_4A10, 0xA_1B22, 0x23_F000
    return bytes(mm)


def _unloaded(thread: ThreadState) -> bytes:
    out = bytearray(len(thread.unloaded_drivers).to_bytes(4, "little") + bytes(4))
    for name, start, end in thread.unloaded_drivers:
        entry = K.DUMP_UNLOADED_DRIVERS64(StartAddress=start, EndAddress=end)
        chars = name[: K.UNLOADED_NAME_CHARS].encode("utf-16-le")
        entry.Name.Length = entry.Name.MaximumLength = min(len(name) * 2, 0xFFFF)
        ctypes.memmove(
            ctypes.addressof(entry) + K.DUMP_UNLOADED_DRIVERS64.DriverName.offset, chars, len(chars)
        )
        out += bytes(entry)
    return bytes(out)


def _put(buffer: bytearray, offset: int, value: int, size: int = 8) -> None:
    buffer[offset : offset + size] = value.to_bytes(size, "little")


def _kernel_objects(thread: ThreadState, dtb: int, process_head: int) -> tuple[bytes, bytes, bytes]:
    """KPRCB, EPROCESS and ETHREAD copies with the fields a debugger follows (build 19041 x64)."""
    o = K.X64_19041
    prcb, process, ethread = bytearray(o.prcb_size), bytearray(o.process_size), bytearray(o.thread_size)
    _put(prcb, 0, 0x1F80, 4)
    _put(prcb, o.prcb_current_thread, thread.thread_address)
    _put(process, o.process_directory_table_base, dtb)
    _put(process, o.process_unique_id, thread.process_id)
    _put(process, o.process_active_links, process_head)  # Flink
    _put(process, o.process_active_links + 8, process_head)  # Blink
    name = thread.process_name.encode("ascii", errors="replace")[: K.IMAGE_FILE_NAME_SIZE]
    process[o.process_image_file_name : o.process_image_file_name + len(name)] = name
    _put(ethread, o.thread_stack_limit, thread.stack_limit)
    _put(ethread, o.thread_stack_base, thread.stack_base)
    _put(ethread, o.thread_process, thread.process_address)
    _put(ethread, o.thread_cid, thread.process_id)
    _put(ethread, o.thread_cid + 8, thread.thread_id)
    return bytes(prcb), bytes(process), bytes(ethread)


def _debugger_data(kdbg: int, kern_base: int, module_list: int, process_head: int, pfn: int) -> bytes:
    head = K.KDDEBUGGER_DATA64_HEAD(ListFlink=kdbg, ListBlink=kdbg, OwnerTag=K.KDBG_OWNER_TAG)
    head.Size, head.KernBase = K.KDDEBUGGER_DATA64_SIZE, kern_base
    head.PsLoadedModuleList, head.PsActiveProcessHead = module_list, process_head
    data = bytearray(K.KDDEBUGGER_DATA64_SIZE)
    data[: ctypes.sizeof(head)] = bytes(head)
    _put(data, K.KDDEBUGGER_MM_PFN_DATABASE, pfn)
    return bytes(data)


def append_sections(
    thread: ThreadState, header: L.DUMP_HEADER64, kern_base: int, t: L.TRIAGE_DUMP64, data: bytearray
) -> None:
    """Append MM, unloaded drivers, PRCB, process, thread, stack and debugger data to ``data``
    (which starts right after TRIAGE_DUMP64) and point ``t``'s offsets at them."""
    base = L.TRIAGE_DUMP64_OFFSET + L.TRIAGE_DUMP64_SIZE
    prcb, process, ethread = _kernel_objects(thread, header.DirectoryTableBase, header.PsActiveProcessHead)
    kdbg = _debugger_data(
        header.KdDebuggerDataBlock,
        kern_base,
        header.PsLoadedModuleList,
        header.PsActiveProcessHead,
        header.PfnDataBase,
    )
    placed = {}
    for name, blob in (
        ("MmOffset", _mm(thread)),
        ("UnloadedDriversOffset", _unloaded(thread)),
        ("PrcbOffset", prcb),
        ("ProcessOffset", process),
        ("ThreadOffset", ethread),
        ("CallStackOffset", thread.stack),
        ("DebuggerDataOffset", kdbg),
    ):
        placed[name] = base + len(data)
        data += blob
        data += bytes(-len(data) % 8)
    for name, offset in placed.items():
        setattr(t, name, offset)
    t.ContextOffset = L.DUMP_HEADER64.ContextRecord.offset
    t.ExceptionOffset = L.DUMP_HEADER64.Exception.offset
    t.SizeOfCallStack, t.TopOfStack = len(thread.stack), thread.rsp
    t.DebuggerDataSize = len(kdbg)
    t.TriageOptions = 0xFFFFFFFF  # as both fixtures


CURRENT_THREAD_FIELDS = (
    L.TRIAGE_DUMP_CONTEXT
    | L.TRIAGE_DUMP_EXCEPTION
    | L.TRIAGE_DUMP_PRCB
    | L.TRIAGE_DUMP_PROCESS
    | L.TRIAGE_DUMP_THREAD
    | L.TRIAGE_DUMP_STACK
    | L.TRIAGE_DUMP_DRIVER_LIST
    | L.TRIAGE_DUMP_BROKEN_DRIVER
    | L.TRIAGE_DUMP_DEBUGGER_DATA
    | L.TRIAGE_DUMP_DATA_BLOCKS
)
"""0xCFF: what both real fixtures claim (BROKEN_DRIVER set with BrokenDriverOffset 0, as there)."""

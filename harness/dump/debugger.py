"""The current-thread sections of a triage dump, bounds-checked and decoded the way a debugger
opens them: registers from the CONTEXT, the current thread through KPRCB.CurrentThread, its process
(id, image name, its ActiveProcessLinks into the process list), the call stack, the unloaded
drivers and the KDDEBUGGER_DATA64 copy (``kernel_layout`` states every layout).

``check_sections`` runs when a triage dump is opened (each section's offset and size must lie
inside SizeOfDump, with the TRIAGE_DUMP64 field named in the error); ``debugger_view`` decodes on
demand. KPRCB/EPROCESS/ETHREAD fields are decoded only for builds whose offsets are known
(``KERNEL_OFFSETS``); registers for x64 only.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import kernel_layout as K
from . import layout as L
from .errors import DumpFormatError
from .records import DumpHeader64, TriageDump64
from .secondary import ReadAt


def _section_sizes(triage: TriageDump64, offsets: K.KernelOffsets | None, read_at: ReadAt) -> dict[str, int]:
    """Bytes each present section occupies (0 = not checked: size unknown for this build)."""
    sizes = {
        "MmOffset": ctypes.sizeof(K.DUMP_MM_STORAGE64),
        "CallStackOffset": triage.size_of_call_stack,
        "DebuggerDataOffset": triage.debugger_data_size,
    }
    if offsets is not None:
        sizes.update(
            PrcbOffset=offsets.prcb_size, ProcessOffset=offsets.process_size, ThreadOffset=offsets.thread_size
        )
    if triage.unloaded_drivers_offset:
        sizes["UnloadedDriversOffset"] = K.UNLOADED_LIST_HEADER
    return sizes


def check_sections(path: Path, read_at: ReadAt, triage: TriageDump64, header: DumpHeader64) -> None:
    """Every present current-thread section lies inside SizeOfDump (DUMP_FORMAT.md's rule for the
    tables, applied to these sections too); the unloaded-driver list's count fits as well."""
    limit = triage.size_of_dump
    offsets = K.KERNEL_OFFSETS.get((header.machine_image_type or 0, header.build or 0))
    sizes = _section_sizes(triage, offsets, read_at)
    for name, size in sizes.items():
        start = getattr(triage, _snake(name))
        if start and start + size > limit:
            raise _fail(path, name, f"section [0x{start:x}+0x{size:x}] runs past SizeOfDump (0x{limit:x})")
    if triage.unloaded_drivers_offset:
        count = int.from_bytes(read_at(triage.unloaded_drivers_offset, 4), "little")
        end = (
            triage.unloaded_drivers_offset
            + K.UNLOADED_LIST_HEADER
            + count * ctypes.sizeof(K.DUMP_UNLOADED_DRIVERS64)
        )
        if end > limit:
            raise _fail(
                path,
                "UnloadedDriversOffset",
                f"{count} unloaded drivers end at 0x{end:x}, past SizeOfDump (0x{limit:x})",
            )
    for name in ("ContextOffset", "ExceptionOffset"):
        start = getattr(triage, _snake(name))
        if start and start + (K.CONTEXT_AMD64_SIZE if name == "ContextOffset" else 0x98) > limit:
            raise _fail(path, name, f"0x{start:x} is outside the dump (SizeOfDump 0x{limit:x})")


def _snake(name: str) -> str:
    return {
        "MmOffset": "mm_offset",
        "UnloadedDriversOffset": "unloaded_drivers_offset",
        "PrcbOffset": "prcb_offset",
        "ProcessOffset": "process_offset",
        "ThreadOffset": "thread_offset",
        "CallStackOffset": "call_stack_offset",
        "DebuggerDataOffset": "debugger_data_offset",
        "ContextOffset": "context_offset",
        "ExceptionOffset": "exception_offset",
    }[name]


def _fail(path: Path, field_name: str, reason: str) -> DumpFormatError:
    return DumpFormatError(path, f"TRIAGE_DUMP64.{field_name}", L.triage_field_offset(field_name), reason)


@dataclass(frozen=True)
class DebuggerView:
    """What a debugger would show first about the stopped (or captured) thread."""

    registers: dict[str, int] = field(default_factory=dict)
    thread: dict[str, int] = field(default_factory=dict)
    process: dict[str, Any] = field(default_factory=dict)
    stack: dict[str, int] = field(default_factory=dict)
    unloaded_drivers: list[dict[str, Any]] = field(default_factory=list)
    debugger_data: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _u64(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 8], "little")


def debugger_view(read_at: ReadAt, triage: TriageDump64, header: DumpHeader64) -> DebuggerView:
    """Decode the sections ``check_sections`` accepted (call it only on a checked dump)."""
    view = DebuggerView()
    if triage.context_offset and header.machine_image_type == L.MACHINE_AMD64:
        ctx = K.CONTEXT_AMD64.from_buffer_copy(read_at(triage.context_offset, K.CONTEXT_AMD64_SIZE))
        if ctx.ContextFlags == L.PAGE_FILL_U32:
            view.notes.append("context record is unset (PAGE fill)")
        else:
            view.registers.update(
                {name: getattr(ctx, name) for name in (*K.AMD64_REGISTERS, "Rip", "EFlags")}
            )
    elif triage.context_offset:
        view.notes.append(f"registers: no CONTEXT decoder for machine {header.machine_name}")
    offsets = K.KERNEL_OFFSETS.get((header.machine_image_type or 0, header.build or 0))
    if offsets is None:
        view.notes.append(f"KPRCB/EPROCESS/ETHREAD: field offsets unknown for build {header.build}")
    else:
        _kernel_objects(view, read_at, triage, offsets)
    if triage.call_stack_offset:
        view.stack.update(
            top=triage.top_of_stack, size=triage.size_of_call_stack, offset=triage.call_stack_offset
        )
    if triage.unloaded_drivers_offset:
        view.unloaded_drivers.extend(_unloaded(read_at, triage.unloaded_drivers_offset))
    if triage.debugger_data_offset and triage.debugger_data_size >= ctypes.sizeof(K.KDDEBUGGER_DATA64_HEAD):
        kd = K.KDDEBUGGER_DATA64_HEAD.from_buffer_copy(
            read_at(triage.debugger_data_offset, ctypes.sizeof(K.KDDEBUGGER_DATA64_HEAD))
        )
        view.debugger_data.update(
            owner_tag_ok=int(kd.OwnerTag == K.KDBG_OWNER_TAG),
            size=kd.Size,
            kern_base=kd.KernBase,
            ps_loaded_module_list=kd.PsLoadedModuleList,
            ps_active_process_head=kd.PsActiveProcessHead,
        )
    return view


def _kernel_objects(view: DebuggerView, read_at: ReadAt, triage: TriageDump64, o: K.KernelOffsets) -> None:
    if triage.prcb_offset:
        view.thread["address"] = _u64(
            read_at(triage.prcb_offset, o.prcb_current_thread + 8), o.prcb_current_thread
        )
    if triage.thread_offset:
        thread = read_at(triage.thread_offset, o.thread_size)
        view.thread.update(
            process=_u64(thread, o.thread_process),
            process_id=_u64(thread, o.thread_cid),
            thread_id=_u64(thread, o.thread_cid + 8),
            stack_base=_u64(thread, o.thread_stack_base),
            stack_limit=_u64(thread, o.thread_stack_limit),
        )
    if triage.process_offset:
        process = read_at(triage.process_offset, o.process_size)
        name = process[o.process_image_file_name : o.process_image_file_name + K.IMAGE_FILE_NAME_SIZE]
        view.process.update(
            process_id=_u64(process, o.process_unique_id),
            image_file_name=name.split(b"\0", 1)[0].decode("ascii", errors="replace"),
            directory_table_base=_u64(process, o.process_directory_table_base),
            active_process_links_flink=_u64(process, o.process_active_links),
            active_process_links_blink=_u64(process, o.process_active_links + 8),
        )


def _unloaded(read_at: ReadAt, offset: int) -> list[dict[str, Any]]:
    count = int.from_bytes(read_at(offset, 4), "little")
    size = ctypes.sizeof(K.DUMP_UNLOADED_DRIVERS64)
    out = []
    for index in range(count):
        entry = K.DUMP_UNLOADED_DRIVERS64.from_buffer_copy(
            read_at(offset + K.UNLOADED_LIST_HEADER + index * size, size)
        )
        chars = min(entry.Name.Length // 2, K.UNLOADED_NAME_CHARS)
        name = bytes(entry)[0x10 : 0x10 + 2 * chars].decode("utf-16-le", errors="replace")
        out.append({"name": name, "start": entry.StartAddress, "end": entry.EndAddress})
    return out

"""Writing triage live dumps in the real Windows format, for the simulated machine.

The output follows DUMP_FORMAT.md and copies what the real fixtures show wherever the document is
silent, so the reader cannot tell a simulated dump from a real one by its layout:

- the header starts as "PAGE" fill and only the fields we know are set (unset fields stay "PAGE",
  as SecondaryDataState, BootId and the context record do in the fixtures);
- TRIAGE_DUMP64 at 0x2000 with absolute offsets; then the driver list (0x90-byte entries), the string
  pool (``{u32 length in chars; WCHAR[]; NUL}``, each 8-aligned, as in the fixtures), the data-block
  table and the block bytes, each block 8-aligned (DMF_FACTS.md F08: size rounded up to 8);
- "TRGD" at an 8-aligned ValidOffset with SizeOfDump = ValidOffset + 4 (both fixtures do this);
- the "DumpBlob" chain right at SizeOfDump: BuildNumber = 0xF0000000 | build (as in the fixtures),
  one blob per item with PrePad 0 and PostPad rounding DataSize up to 8 (the fixtures' padding; so
  blob headers are 8 apart relative to the chain start, which itself is 4 mod 8, as in real files).

Attributes: a live dump gets LiveDumpGeneratedDump (bit 4) and KernelGeneratedTriageDump (bit 3),
since a live triage report is a kernel-generated triage dump; a non-live one leaves Attributes as
"PAGE", like both (non-live) fixtures. With a ``thread`` (a ``sections.ThreadState``) the dump carries
what a real current-thread triage dump carries (CONTEXT, exception, MM information, unloaded
drivers, PRCB, process, thread, call stack, debugger data: ``sections``) and MiniDumpFields is the
fixtures' 0xCFF; without one, MiniDumpFields claims only what is written (DRIVER_LIST, DATA_BLOCKS)
and the context record stays "PAGE" fill.

The file is written to a temporary name in the target folder and renamed, so a reader polling the
folder never sees half a dump. The writer is proven by the reader, never the other way round: the
reader is proven by the real fixtures (tests/test_dump_fixtures.py).
"""

from __future__ import annotations

import ctypes
import os
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from . import layout as L
from .sections import CURRENT_THREAD_FIELDS, ThreadState, append_sections, context_bytes, exception_bytes

DEFAULT_DRIVERS: tuple[tuple[str, int, int], ...] = (
    ("\\SystemRoot\\system32\\ntoskrnl.exe", 0xFFFFF80270A00000, 0x1046000),
    ("\\SystemRoot\\system32\\hal.dll", 0xFFFFF8026E440000, 0x6000),
    ("\\SystemRoot\\system32\\drivers\\Wdf01000.sys", 0xFFFFF8026E900000, 0xE3000),
    ("\\SystemRoot\\System32\\drivers\\LkdhTestDriver.sys", 0xFFFFF80281200000, 0x12000),
)


def _align(value: int, to: int = 8) -> int:
    return (value + to - 1) // to * to


def _pad8(data: bytearray) -> None:
    """Zero-fill ``data`` up to a multiple of 8 bytes."""
    data += bytes(_align(len(data)) - len(data))


_U32_FIELDS = (
    "bugcheck_code",
    "build",
    "machine_image_type",
    "number_processors",
    "product_type",
    "suite_mask",
)
_U64_FIELDS = (
    "directory_table_base",
    "pfn_database",
    "ps_loaded_module_list",
    "ps_active_process_head",
    "kd_debugger_data_block",
    "system_time",
)


def check_spec(spec: TriageDumpSpec) -> None:
    """Refuse values the on-disk fields cannot hold (ctypes would silently truncate them)."""
    u32, u64 = (1 << 32) - 1, (1 << 64) - 1
    checks = [(name, getattr(spec, name), u32) for name in _U32_FIELDS]
    checks += [(name, getattr(spec, name), u64) for name in _U64_FIELDS]
    checks += [("system_up_time", spec.system_up_time, u64 >> 1)]  # LARGE_INTEGER
    checks += [(f"bugcheck_parameters[{i}]", p, u64) for i, p in enumerate(spec.bugcheck_parameters)]
    checks += [(f"data_blocks[{i}] address", a, u64) for i, (a, _) in enumerate(spec.data_blocks)]
    checks += [(f"drivers[{i}] base", b, u64) for i, (_, b, _) in enumerate(spec.drivers)]
    checks += [(f"drivers[{i}] size", s, u32) for i, (_, _, s) in enumerate(spec.drivers)]
    for name, value, limit in checks:
        if not 0 <= value <= limit:
            raise ValueError(
                f"TriageDumpSpec.{name} = {value:#x} does not fit its on-disk field (max {limit:#x})"
            )
    if len(spec.bugcheck_parameters) != 4:
        raise ValueError(f"bugcheck_parameters needs 4 values, got {len(spec.bugcheck_parameters)}")


@dataclass
class TriageDumpSpec:
    """What a simulated live dump contains; the defaults are plausible Windows 10 x64 values.

    As in real dumps, a header value equal to the "PAGE" fill (0x45474150) reads back as unset.
    """

    bugcheck_code: int
    bugcheck_parameters: tuple[int, int, int, int]
    data_blocks: list[tuple[int, bytes]]  # (kernel VA, captured bytes), in insertion order
    secondary_data: list[tuple[uuid.UUID, bytes]] = field(default_factory=list)
    drivers: list[tuple[str, int, int]] = field(default_factory=lambda: list(DEFAULT_DRIVERS))
    machine_image_type: int = L.MACHINE_AMD64
    number_processors: int = 2
    build: int = 19041
    live: bool = True
    system_time: int = 0x01DA_1E4C_5B2F_8000  # FILETIME, late 2023
    system_up_time: int = 0x2_540B_E400  # 100-ns units: 1000 s
    product_type: int = 1  # VER_NT_WORKSTATION
    suite_mask: int = 0x110  # VER_SUITE_SINGLEUSERTS | VER_SUITE_TERMINAL, as in the fixtures
    directory_table_base: int = 0x1AD000
    pfn_database: int = 0xFFFFF802712FC500
    ps_loaded_module_list: int = 0xFFFFF8027122A390
    ps_active_process_head: int = 0xFFFFF8027121E200
    kd_debugger_data_block: int = 0xFFFFF80271200B20
    comment: str = ""
    thread: ThreadState | None = None
    """The current thread's state; None writes the minimal dump (no context, PRCB or stack)."""


@dataclass
class _Body:
    """The bytes from 0x2080 up to SizeOfDump, and the TRIAGE_DUMP64 that describes them."""

    triage: L.TRIAGE_DUMP64
    data: bytearray


def header_for(spec: TriageDumpSpec, fields: int, file_size: int) -> L.DUMP_HEADER64:
    """DUMP_HEADER64 for ``spec`` (DumpType 4; the memory-dump writer sets its own DumpType)."""
    h = L.DUMP_HEADER64.from_buffer_copy(L.PAGE * (L.HEADER64_SIZE // 4))
    h.ValidDump = (L.u8 * 4)(*L.VALID_DUMP_64)
    h.MajorVersion, h.MinorVersion = 0xF, spec.build
    h.DirectoryTableBase, h.PfnDataBase = spec.directory_table_base, spec.pfn_database
    h.PsLoadedModuleList, h.PsActiveProcessHead = spec.ps_loaded_module_list, spec.ps_active_process_head
    h.MachineImageType, h.NumberProcessors = spec.machine_image_type, spec.number_processors
    h.BugCheckCode = spec.bugcheck_code
    (h.BugCheckParameter1, h.BugCheckParameter2, h.BugCheckParameter3, h.BugCheckParameter4) = (
        spec.bugcheck_parameters
    )
    h.KdDebuggerDataBlock = spec.kd_debugger_data_block
    h.DumpType = L.DUMP_TYPE_TRIAGE
    h.RequiredDumpSpace = file_size
    h.SystemTime, h.SystemUpTime = spec.system_time, spec.system_up_time
    comment = spec.comment.encode("ascii") + b"\0"
    if len(comment) > L.COMMENT_SIZE:
        raise ValueError(f"comment is {len(comment) - 1} characters; the header holds {L.COMMENT_SIZE - 1}")
    ctypes.memmove(ctypes.addressof(h) + L.DUMP_HEADER64.Comment.offset, comment, len(comment))
    h.MiniDumpFields = fields
    h.ProductType, h.SuiteMask, h.WriterStatus = spec.product_type, spec.suite_mask, 0
    h.KdSecondaryVersion = 0
    if spec.live:
        h.Attributes = L.ATTR_LIVE_DUMP_GENERATED_DUMP | L.ATTR_KERNEL_GENERATED_TRIAGE_DUMP
    if spec.thread is not None:
        context = context_bytes(spec.thread)
        ctypes.memmove(ctypes.addressof(h) + L.DUMP_HEADER64.ContextRecord.offset, context, len(context))
        h.Exception = L.EXCEPTION_RECORD64.from_buffer_copy(exception_bytes(spec.thread))
    return h


def _driver_list(spec: TriageDumpSpec, t: L.TRIAGE_DUMP64, data: bytearray) -> None:
    """Append the driver list and its string pool to ``data`` (which starts at file offset 0x2080)."""
    base = L.TRIAGE_DUMP64_OFFSET + L.TRIAGE_DUMP64_SIZE
    t.DriverListOffset, t.DriverCount = base + len(data), len(spec.drivers)
    entries = L.DUMP_DRIVER_ENTRY64 * len(spec.drivers)
    table = entries()
    data += bytes(ctypes.sizeof(entries))
    t.StringPoolOffset = base + len(data)
    for entry, (name, dll_base, size) in zip(table, spec.drivers, strict=True):
        entry.DriverNameOffset = base + len(data)
        entry.LdrEntry.DllBase, entry.LdrEntry.SizeOfImage = dll_base, size
        encoded = name.encode("utf-16-le")
        data += (len(encoded) // 2).to_bytes(4, "little")
        data += encoded + b"\0\0"
        _pad8(data)
    t.StringPoolSize = base + len(data) - t.StringPoolOffset
    start = t.DriverListOffset - base
    data[start : start + ctypes.sizeof(entries)] = bytes(table)


def _data_blocks(spec: TriageDumpSpec, t: L.TRIAGE_DUMP64, data: bytearray) -> None:
    """Append the data-block table, then each block's bytes at an 8-aligned offset."""
    base = L.TRIAGE_DUMP64_OFFSET + L.TRIAGE_DUMP64_SIZE
    t.DataBlocksOffset, t.DataBlocksCount = base + len(data), len(spec.data_blocks)
    table = (L.TRIAGE_DATA_BLOCK * len(spec.data_blocks))()
    data += bytes(ctypes.sizeof(table))
    for entry, (address, payload) in zip(table, spec.data_blocks, strict=True):
        entry.Address, entry.Offset, entry.Size = address, base + len(data), len(payload)
        data += payload
        _pad8(data)
    start = t.DataBlocksOffset - base
    data[start : start + ctypes.sizeof(table)] = bytes(table)


def _body(spec: TriageDumpSpec, header: L.DUMP_HEADER64) -> _Body:
    t = L.TRIAGE_DUMP64()
    data = bytearray()
    if spec.thread is not None:
        kern_base = spec.drivers[0][1] if spec.drivers else 0
        append_sections(spec.thread, header, kern_base, t, data)
    if spec.drivers:
        _driver_list(spec, t, data)
    if spec.data_blocks:
        _data_blocks(spec, t, data)
    _pad8(data)  # "TRGD" at an 8-aligned ValidOffset, as in the fixtures
    t.ValidOffset = L.TRIAGE_DUMP64_OFFSET + L.TRIAGE_DUMP64_SIZE + len(data)
    t.SizeOfDump = t.ValidOffset + len(L.TRIAGE_VALID)
    data += L.TRIAGE_VALID
    return _Body(triage=t, data=data)


def blob_chain(spec: TriageDumpSpec) -> bytes:
    """The DumpBlob file header and one blob per secondary-data item (empty when there are none)."""
    if not spec.secondary_data:
        return b""
    signature = (L.u8 * 8)(*L.DUMP_BLOB_SIGNATURE)
    out = bytearray(
        L.DUMP_BLOB_FILE_HEADER(signature, L.DUMP_BLOB_FILE_HEADER_SIZE, 0xF000_0000 | spec.build)
    )
    for guid, payload in spec.secondary_data:
        post_pad = _align(len(payload)) - len(payload)
        tag = (L.u8 * 16)(*guid.bytes_le)
        out += bytes(L.DUMP_BLOB_HEADER(L.DUMP_BLOB_HEADER_SIZE, tag, len(payload), 0, post_pad))
        out += payload + bytes(post_pad)
    return bytes(out)


def write_triage_dump(path: str | Path, spec: TriageDumpSpec) -> Path:
    """Write ``spec`` as a triage live dump at ``path`` (atomically: temp file + rename); return the path."""
    path = Path(path)
    check_spec(spec)
    fields = (L.TRIAGE_DUMP_DRIVER_LIST if spec.drivers else 0) | (
        L.TRIAGE_DUMP_DATA_BLOCKS if spec.data_blocks else 0
    )
    if spec.thread is not None:
        fields = CURRENT_THREAD_FIELDS
    header = header_for(spec, fields, 0)
    body = _body(spec, header)
    blobs = blob_chain(spec)
    file_size = body.triage.SizeOfDump + len(blobs)
    if file_size > 0xFFFF_FFFF:
        raise ValueError(f"a triage dump of 0x{file_size:x} bytes does not fit 32-bit file offsets")
    header.RequiredDumpSpace = file_size
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in (bytes(header), bytes(body.triage), body.data, blobs):
                f.write(chunk)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path

"""One description of a dump, used by ``lkdh inspect`` and by report attachments alike.

``summary`` is the machine form (JSON-ready: ints stay ints, keys sorted, lists in file order so two
runs over the same file give the same document); ``describe`` is the human form, built from the same
objects so the two never disagree.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from . import layout as L
from .bugcheck_names import bugcheck_name
from .memory import MemoryDump, memory_lines
from .reader import KernelDump
from .usermode import UserModeMinidump

FIRST_BYTES = 16  # bytes of each data block shown by describe()


def _sorted(mapping: dict[str, Any]) -> dict[str, Any]:
    return dict(sorted(mapping.items()))


def summary(dump: KernelDump | UserModeMinidump) -> dict[str, Any]:
    """The dump as a JSON-serialisable dict with keys file, kind, header, triage, data_blocks,
    secondary_data, drivers (and minidump for user-mode dumps)."""
    base: dict[str, Any] = {"file": dump.path.name, "file_size": dump.file_size, "kind": dump.kind}
    if isinstance(dump, UserModeMinidump):
        empty = {"header": None, "triage": None, "data_blocks": [], "secondary_data": [], "drivers": []}
        empty["blob_chain_end"] = None
        empty["debugger"] = None
        empty["memory"] = None
        return _sorted({**base, **empty, "minidump": _sorted(dump.summary())})
    header = dataclasses.asdict(dump.header)
    header["bugcheck_parameters"] = list(dump.header.bugcheck_parameters)
    header.update(
        bugcheck_name=bugcheck_name(dump.header.bugcheck_code),
        dump_type_name=dump.header.dump_type_name,
        is_live_dump=dump.header.is_live_dump,
        machine=dump.header.machine_name,
    )
    return _sorted(
        {
            **base,
            "header": _sorted(header),
            "triage": None if dump.triage is None else _sorted(dataclasses.asdict(dump.triage)),
            "data_blocks": [
                {"address": b.address, "offset": b.offset, "size": b.size} for b in dump.data_blocks
            ],
            "secondary_data": [
                {"guid": str(b.guid), "offset": b.data_offset, "size": b.size} for b in dump.secondary_data
            ],
            "blob_chain_end": dump.blob_chain_end,
            "drivers": [{"base": d.base, "name": d.name, "size": d.size} for d in dump.drivers],
            "debugger": None
            if getattr(dump, "debugger", None) is None
            else _sorted(dataclasses.asdict(dump.debugger)),
            "memory": _sorted(dump.memory_summary()) if isinstance(dump, MemoryDump) else None,
        }
    )


def _hex(value: int | None) -> str:
    return "unset (PAGE)" if value is None else f"0x{value:x}"


def _row(label: str, text: str) -> str:
    return f"  {label:<22} {text}"


# Header fields describe() shows in its own words first; the rest follow as plain hex rows.
_HEADER_HEADLINE = {
    "dump_type",
    "attributes",
    "machine_image_type",
    "number_processors",
    "major_version",
    "minor_version",
    "bugcheck_code",
    "bugcheck_parameters",
    "comment",
}


def _header_lines(dump: KernelDump) -> list[str]:
    h = dump.header
    name = bugcheck_name(h.bugcheck_code)
    lines = [
        "Header (DUMP_HEADER64)",
        _row("dump type", f"{h.dump_type} ({h.dump_type_name})"),
        _row("live dump", f"{'yes' if h.is_live_dump else 'no'} (Attributes {_hex(h.attributes)})"),
        _row("machine", f"{_hex(h.machine_image_type)} ({h.machine_name}), {h.number_processors} processors"),
        _row("version", f"{_hex(h.major_version)} build {h.minor_version}"),
        _row("bugcheck", _hex(h.bugcheck_code) + (f" {name}" if name else "")),
        _row("parameters", " ".join(_hex(p) for p in h.bugcheck_parameters)),
    ]
    for f in dataclasses.fields(h):
        if f.name not in _HEADER_HEADLINE:
            lines.append(_row(f.name, _hex(getattr(h, f.name))))
    lines.append(_row("comment", "unset (PAGE)" if h.comment is None else repr(h.comment)))
    return lines


def _triage_lines(dump: KernelDump) -> list[str]:
    if isinstance(dump, MemoryDump):
        return [f"Triage: none (DumpType {dump.header.dump_type}: a kernel memory dump, read by page)"]
    if dump.triage is None:
        return [f"Triage: none (DumpType {dump.header.dump_type}: only the header is decoded)"]
    lines = ["Triage (TRIAGE_DUMP64 at 0x2000)"]
    # On-disk names, in on-disk order (records.TriageDump64 keeps the same order), as rizin prints them.
    for (name, _), value in zip(L.TRIAGE_DUMP64._fields_, dataclasses.astuple(dump.triage), strict=True):
        lines.append(_row(name, f"0x{value:x}"))
    return lines


def _block_lines(dump: KernelDump, max_rows: int) -> list[str]:
    lines = [f"Data blocks: {len(dump.data_blocks)}"]
    if dump.data_blocks:
        lines.append(f"  {'#':>5}  {'address':<18}  {'size':>8}  {'offset':>8}  first bytes")
    for index, block in enumerate(dump.data_blocks[:max_rows]):
        first = dump.read_file(block.offset, min(block.size, FIRST_BYTES)).hex(" ")
        lines.append(f"  {index:>5}  0x{block.address:016x}  {block.size:>#8x}  {block.offset:>#8x}  {first}")
    if len(dump.data_blocks) > max_rows:
        lines.append(f"  ... {len(dump.data_blocks) - max_rows} more")
    return lines


def _blob_lines(dump: KernelDump, max_rows: int) -> list[str]:
    blobs = dump.secondary_data
    if dump.blob_chain_end is None:
        return ["Secondary data: none"]
    at_eof = (
        "end of file" if dump.blob_chain_end == dump.file_size else f"0x{dump.file_size:x} is end of file"
    )
    lines = [f"Secondary data: {len(blobs)} blobs, chain ends at 0x{dump.blob_chain_end:x} ({at_eof})"]
    for blob in blobs[:max_rows]:
        lines.append(f"  {{{blob.guid}}}  size {blob.size:>#8x}  at {blob.data_offset:#x}")
    if len(blobs) > max_rows:
        lines.append(f"  ... {len(blobs) - max_rows} more")
    return lines


def _driver_lines(dump: KernelDump, max_rows: int) -> list[str]:
    lines = [f"Drivers: {len(dump.drivers)}"]
    for driver in dump.drivers[:max_rows]:
        lines.append(f"  0x{driver.base:016x}  {driver.size:>#9x}  {driver.name}")
    if len(dump.drivers) > max_rows:
        lines.append(f"  ... {len(dump.drivers) - max_rows} more")
    return lines


def _debugger_lines(dump: KernelDump, max_rows: int) -> list[str]:
    view = dump.debugger
    if view is None:
        return []
    lines = ["Current thread (debugger view)"]
    if view.registers:
        regs = [f"{name.lower()}={value:016x}" for name, value in view.registers.items()]
        lines += ["  " + " ".join(regs[i : i + 4]) for i in range(0, len(regs), 4)]
    if view.process:
        p = view.process
        lines.append(_row("process", f"{p['image_file_name']} (pid 0x{p['process_id']:x})"))
    if view.thread:
        t = view.thread
        lines.append(_row("thread", f"0x{t.get('address', 0):x} (tid 0x{t.get('thread_id', 0):x})"))
    if view.stack:
        lines.append(_row("stack", f"top 0x{view.stack['top']:x}, 0x{view.stack['size']:x} bytes"))
    if view.debugger_data:
        kd = view.debugger_data
        lines.append(_row("KdDebuggerData", f"KernBase 0x{kd['kern_base']:x}, size 0x{kd['size']:x}"))
    names = ", ".join(u["name"] for u in view.unloaded_drivers[:max_rows])
    lines.append(_row("unloaded drivers", names or "none"))
    lines += [f"  note: {note}" for note in view.notes]
    return lines


def _user_lines(dump: UserModeMinidump, max_rows: int) -> list[str]:
    code = dump.exception_code
    lines = [
        _row("architecture", str(dump.architecture)),
        _row("threads", str(dump.thread_count)),
        _row("exception code", "none" if code is None else f"0x{code:08x}"),
        f"Modules: {dump.module_count}",
    ]
    lines += [f"  {name}" for name in dump.module_names[:max_rows]]
    if dump.module_count > max_rows:
        lines.append(f"  ... {dump.module_count - max_rows} more")
    return lines


def describe(dump: KernelDump | UserModeMinidump, *, max_rows: int = 20) -> str:
    """A readable multi-line description; tables are cut after ``max_rows`` rows."""
    title = f"{dump.path.name}: {dump.kind}-mode dump, 0x{dump.file_size:x} bytes"
    if isinstance(dump, UserModeMinidump):
        return "\n".join([title + " (MDMP)", *_user_lines(dump, max_rows)])
    parts = [
        [title],
        _header_lines(dump),
        _triage_lines(dump),
        memory_lines(dump, max_rows) if isinstance(dump, MemoryDump) else [],
        _block_lines(dump, max_rows),
        _blob_lines(dump, max_rows),
        _driver_lines(dump, max_rows),
        _debugger_lines(dump, max_rows),
    ]
    return "\n".join(line for part in parts for line in part)

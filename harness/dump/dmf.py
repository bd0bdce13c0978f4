"""Decoding the DMF data a live dump carries (what DMF's own debugger extension shows, without a
debugger): the DMF_MODULE_COLLECTION found through the dump's P2, its top-level module handles,
and for each module its instance name, config and context blocks (DMF_FACTS.md F16, F32, F35).

It reads through the dump's block face only (``data_blocks``, ``block_bytes``, ``block_containing``,
``read_virtual`` and the header's parameters). A kernel memory dump (DumpType 1, 5, 6) has no data
blocks: there the collection is found from P2 by address and the modules through its pointers, all
through ``read_virtual`` (``dmf_memory``); the decoded result has the same shape. Layouts:
``dmf_layout``.

P2 is a WDFMEMORY handle, not an address (F32): the collection is the block whose first 8 bytes
equal P2. Modules below the top level are found by DMF_OBJECT's signature, since the child list's
offset lies in the part of DMF_OBJECT that is not decoded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from . import dmf_layout as D
from . import layout as L
from .dmf_memory import find_collection, scan_dmf_objects
from .errors import AddressNotInDump, DumpFormatError
from .records import DataBlock, DumpHeader64

MEMORY_DUMP_TYPES = (L.DUMP_TYPE_FULL, L.DUMP_TYPE_BITMAP_FULL, L.DUMP_TYPE_BITMAP_KERNEL)
MAX_MODULES = 4096
"""More top-level modules than this is not a collection (the handle array would be read whole)."""


class BlockFace(Protocol):
    """What the decoder needs from a dump."""

    header: DumpHeader64
    data_blocks: list[DataBlock]

    def block_bytes(self, block: DataBlock) -> bytes: ...

    def block_containing(self, address: int, size: int = 1) -> DataBlock | None: ...

    def read_virtual(self, address: int, size: int) -> bytes: ...


@dataclass(frozen=True)
class DmfModule:
    """One DMF_OBJECT found in the dump, with what its pointers lead to."""

    object_address: int
    top_level: bool
    instance_name: str | None
    state: str
    config_address: int
    config_size: int
    config_in_dump: bool
    context_address: int
    context_size: int | None
    """Size of the block at ModuleContext (DMF_OBJECT does not record it); None when absent, and
    in a memory dump, where no block bounds it (``context_in_dump`` then says whether it is there)."""
    context_in_dump: bool = False


@dataclass(frozen=True)
class DmfData:
    """The decoded DMF data, or why there is none (`absent`)."""

    absent: str | None = None
    collection_handle: int = 0
    collection_address: int = 0
    module_count: int = 0
    handles_in_dump: bool = False
    modules: list[DmfModule] = field(default_factory=list)
    found_by: str = "data blocks"
    """"data blocks" (a triage dump) or "virtual address" (a memory dump, read through its pages)."""

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


MAX_STRUCTURE = 1 << 20
"""A DMF structure (name, config) is never this big: a larger size read from a dump is not trusted
(a memory dump would otherwise be read page by page for as long as the size says)."""


def _read(dump: BlockFace, address: int, size: int) -> bytes | None:
    if address == 0 or size <= 0 or size > MAX_STRUCTURE:
        return None
    try:
        return dump.read_virtual(address, size)
    except AddressNotInDump:
        return None


def decode_dmf(dump: BlockFace) -> DmfData:
    """The DMF data of `dump`, found through P2."""
    p2 = dump.header.bugcheck_parameters[1]
    if not p2:
        return DmfData(
            absent="P2 is 0: the dump was created with ExcludeDmfData (F02), or it is not a DMF dump"
        )
    if dump.header.dump_type in MEMORY_DUMP_TYPES:
        return _decode_by_address(dump, p2)
    first8 = p2.to_bytes(8, "little")
    collection = next(
        (
            b
            for b in dump.data_blocks
            if b.size >= D.DMF_MODULE_COLLECTION_SIZE and dump.block_bytes(b)[:8] == first8
        ),
        None,
    )
    if collection is None:
        return DmfData(
            absent=f"no data block starts with P2 (0x{p2:x}): no DMF_MODULE_COLLECTION in this dump "
            "(excluded, evicted from the ring, F10/F35, or P2 is not a DMF collection)",
            collection_handle=p2,
        )
    head = D.DMF_MODULE_COLLECTION.from_buffer_copy(
        dump.block_bytes(collection)[: D.DMF_MODULE_COLLECTION_SIZE]
    )
    count = max(head.NumberOfClientDriverDmfModules, 0)
    handles = _read(dump, head.ClientDriverDmfModules, 8 * count)
    top = (
        {int.from_bytes(handles[i : i + 8], "little") for i in range(0, len(handles), 8)}
        if handles
        else set()
    )
    objects = [b.address for b in dump.data_blocks if _is_dmf_object(dump, b)]
    modules = [_module(dump, address, address in top) for address in dict.fromkeys([*sorted(top), *objects])]
    return DmfData(
        collection_handle=p2,
        collection_address=collection.address,
        module_count=count,
        handles_in_dump=handles is not None,
        modules=modules,
    )


def _decode_by_address(dump: BlockFace, p2: int) -> DmfData:
    """A memory dump's DMF data: the collection from P2, modules through its pointers (dmf_memory)."""
    try:
        address, reason = find_collection(dump, p2)
    except DumpFormatError as error:  # no x64 page tables to read it through (ARM64, DTB unset)
        return DmfData(absent=str(error), collection_handle=p2, found_by="virtual address")
    if address is None:
        return DmfData(absent=reason, collection_handle=p2, found_by="virtual address")
    head = D.DMF_MODULE_COLLECTION.from_buffer_copy(dump.read_virtual(address, D.DMF_MODULE_COLLECTION_SIZE))
    count = max(head.NumberOfClientDriverDmfModules, 0)
    handles = _read(dump, head.ClientDriverDmfModules, 8 * count) if count <= MAX_MODULES else None
    top = [int.from_bytes(handles[i : i + 8], "little") for i in range(0, len(handles), 8)] if handles else []
    objects = scan_dmf_objects(dump, [address, *top])
    modules = [
        _module(dump, object_address, object_address in top, by_address=True)
        for object_address in dict.fromkeys([*sorted(top), *objects])
    ]
    return DmfData(
        collection_handle=p2,
        collection_address=address,
        module_count=count,
        handles_in_dump=handles is not None,
        modules=modules,
        found_by="virtual address",
    )


def _is_dmf_object(dump: BlockFace, block: DataBlock) -> bool:
    if block.size < D.DMF_OBJECT_HEAD_SIZE:
        return False
    data = dump.block_bytes(block)
    return int.from_bytes(data[D.DMF_OBJECT_HEAD.Signature.offset :][:8], "little") == D.DMF_OBJECT_SIGNATURE


def _module(dump: BlockFace, address: int, top_level: bool, *, by_address: bool = False) -> DmfModule:
    raw = _read(dump, address, D.DMF_OBJECT_HEAD_SIZE)
    if raw is None:
        return DmfModule(address, top_level, None, "not in dump", 0, 0, False, 0, None)
    head = D.DMF_OBJECT_HEAD.from_buffer_copy(raw)
    name_bytes = _read(dump, head.ClientModuleInstanceName, head.ClientModuleInstanceNameSizeBytes)
    name = None if name_bytes is None else name_bytes.split(b"\0", 1)[0].decode("ascii", errors="replace")
    context = dump.block_containing(head.ModuleContext) if head.ModuleContext and not by_address else None
    return DmfModule(
        object_address=address,
        top_level=top_level,
        instance_name=name,
        state=D.MODULE_STATE_NAMES.get(head.ModuleState, str(head.ModuleState)),
        config_address=head.ModuleConfig,
        config_size=head.ModuleConfigSize,
        config_in_dump=_read(dump, head.ModuleConfig, head.ModuleConfigSize) is not None,
        context_address=head.ModuleContext,
        context_size=None if context is None else context.end - head.ModuleContext,
        context_in_dump=context is not None
        or (by_address and _read(dump, head.ModuleContext, 1) is not None),
    )


def describe_dmf(data: DmfData) -> str:
    """The human form of `decode_dmf`."""
    if data.absent is not None:
        return f"DMF data: none ({data.absent})"
    lines = [
        f"DMF data: DMF_MODULE_COLLECTION at 0x{data.collection_address:x} "
        f"(P2 = WDFMEMORY 0x{data.collection_handle:x})",
        f"  found by: {data.found_by}",
        f"  top-level modules: {data.module_count}"
        + ("" if data.handles_in_dump else " (handle array not in the dump)"),
        f"  {'module':<28} {'object':<18} {'state':<8} {'config':<26} context",
    ]
    for m in data.modules:
        name = (m.instance_name or "?") + ("" if m.top_level else "  (child)")
        config = f"0x{m.config_address:x}+0x{m.config_size:x}" + ("" if m.config_in_dump else " absent")
        context = "none" if not m.context_address else f"0x{m.context_address:x}"
        if m.context_address and m.context_size:
            context += f"+0x{m.context_size:x}"
        elif m.context_address:
            context += " (in dump)" if m.context_in_dump else " absent"
        lines.append(f"  {name:<28} 0x{m.object_address:016x} {m.state:<8} {config:<26} {context}")
    return "\n".join(lines)


__all__ = ["DmfData", "DmfModule", "decode_dmf", "describe_dmf"]

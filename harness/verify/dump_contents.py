"""Expectations on a live dump's contents, checked byte for byte against the file itself.

Every check reads the dump through `harness.dump` (the same reader that reads real Windows dumps),
never through what the machine says it wrote. A kernel memory dump (a full live dump, DumpType 6)
is checked by virtual address through its page tables instead of by data block
(`memory_contents`); the triage path is unchanged. Messages carry the evidence: the blocks near a
missing range, the first differing byte, the blobs that were found instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from harness.dump import KernelDump
from harness.dump.dmf import decode_dmf
from harness.scenario.model import BufferSlice, CountRange, CrashDumpExpect, DumpExpect, SecondaryDataExpect
from harness.verify import memory_contents as by_page
from harness.verify.mismatch import Mismatch, YamlPath

DUMP_TYPE_TRIAGE = 4
SHOWN_BYTES = 16


@dataclass(frozen=True)
class BufferView:
    """A buffer as the runner knows it: its kernel address on this boot and its current bytes."""

    name: str
    address: int
    data: bytes


@dataclass(frozen=True)
class DumpContext:
    """What the checks need to know beyond the dump: buffers, the collection handle, the GUID."""

    buffers: Mapping[str, BufferView]
    collection_handle: int
    secondary_data_guid: uuid.UUID
    create_bugcheck_code: int | None
    """The code the create asked for; None when raw IOCTL bytes were too short to say."""


@dataclass(frozen=True)
class ResolvedRange:
    """A BufferSlice turned into an address range and, where known, the bytes it should hold."""

    label: str
    address: int
    length: int
    data: bytes | None


def resolve(slice_: BufferSlice, context: DumpContext) -> ResolvedRange:
    """Turn `ring_a[8:+16]` or a raw address into an address range with its expected bytes."""
    if slice_.buffer is None:
        assert slice_.address is not None and slice_.length is not None  # enforced by the model
        return ResolvedRange(slice_.describe(), slice_.address + slice_.offset, slice_.length, None)
    view = context.buffers[slice_.buffer]
    length = len(view.data) - slice_.offset if slice_.length is None else slice_.length
    data = view.data[slice_.offset : slice_.offset + length]
    return ResolvedRange(slice_.describe(), view.address + slice_.offset, length, data)


def check_dump(expect: DumpExpect | None, dump: KernelDump, context: DumpContext) -> list[Mismatch]:
    """Every expectation on one live dump; an empty list means the dump is as expected."""
    base: YamlPath = ("expect", "dump")
    found = _check_kind(dump) + _check_code(expect, dump, context, base)
    if expect is None:
        return found
    found += _check_parameters(expect, dump, context, base)
    paged = by_page.is_memory_dump(dump)
    contains, excludes = (
        (_contains_by_page, _excludes_by_page) if paged else (_check_contains, _check_excludes)
    )
    for index, item in enumerate(expect.contains):
        path = (*base, "contains", index)
        found += _missing_buffer(item, context, path) or contains(
            dump, resolve(item, context), item.bytes, path
        )
    for index, item in enumerate(expect.excludes):
        path = (*base, "excludes", index)
        found += _missing_buffer(item, context, path) or excludes(dump, resolve(item, context), path)
    for index, item in enumerate(expect.secondary_data):
        found += _check_secondary(dump, item, context, (*base, "secondary_data", index))
    if expect.block_count is not None:
        path = (*base, "block_count")
        found += (
            by_page.check_block_count(dump, path)
            if paged
            else _check_block_count(dump, expect.block_count, path)
        )
    if expect.dmf_collection is not None:
        found += _check_dmf_collection(dump, expect.dmf_collection, (*base, "dmf_collection"))
    return found


def check_crash_dump_contents(
    expect: CrashDumpExpect, dump: KernelDump, context: DumpContext
) -> list[Mismatch]:
    """`expect.crash_dump`: the ranges a bugcheck's crash dump must (not) hold, byte for byte, with the
    addresses of the boot that crashed (F22: DMF_CrashDump adds the stored buffers)."""
    base: YamlPath = ("expect", "crash_dump")
    found: list[Mismatch] = []
    for index, item in enumerate(expect.contains):
        path = (*base, "contains", index)
        found += _missing_buffer(item, context, path) or _check_contains(
            dump, resolve(item, context), item.bytes, path
        )
    for index, item in enumerate(expect.excludes):
        path = (*base, "excludes", index)
        found += _missing_buffer(item, context, path) or _check_excludes(dump, resolve(item, context), path)
    return found


def _check_dmf_collection(dump: KernelDump, want: bool, path: YamlPath) -> list[Mismatch]:
    """Whether the DMF_MODULE_COLLECTION block (first 8 bytes = P2, F32) is in the dump (F35)."""
    data = decode_dmf(dump)
    present = data.absent is None
    if present == want:
        return []
    found = f"the collection block at 0x{data.collection_address:X}" if present else f"none: {data.absent}"
    wanted = (
        "the DMF_MODULE_COLLECTION block (first 8 bytes = P2)" if want else "no DMF_MODULE_COLLECTION block"
    )
    return [
        Mismatch(
            path, "the dump's DMF collection block is " + ("missing" if want else "present"), wanted, found
        )
    ]


def _contains_by_page(
    dump: KernelDump, target: ResolvedRange, explicit: bytes | None, path: YamlPath
) -> list[Mismatch]:
    want = explicit if explicit is not None else target.data
    return by_page.check_contains(dump, target.label, target.address, target.length, want, path)


def _excludes_by_page(dump: KernelDump, target: ResolvedRange, path: YamlPath) -> list[Mismatch]:
    return by_page.check_excludes(dump, target.label, target.address, target.length, path)


def _missing_buffer(slice_: BufferSlice | None, context: DumpContext, path: YamlPath) -> list[Mismatch]:
    """A named buffer the machine no longer has (allocated before a reboot) cannot be looked for."""
    if slice_ is None or slice_.buffer is None or slice_.buffer in context.buffers:
        return []
    return [
        Mismatch(
            path,
            f"buffer {slice_.buffer} does not exist on this boot (it was allocated before a reboot)",
            "a buffer allocated since the last reboot",
            "no address for it on this boot",
        )
    ]


def _check_kind(dump: KernelDump) -> list[Mismatch]:
    """A live dump: a triage one (what LkmdTelCreateReport writes, F01) or a full live dump (a
    kernel memory dump, DumpType 1/5/6, read by page), either with LiveDumpGeneratedDump set."""
    header = dump.header
    paged = by_page.is_memory_dump(dump)
    if header.is_live_dump and (header.dump_type == DUMP_TYPE_TRIAGE or paged):
        return []
    kind, wanted = ("full live dump", "DumpType 1, 5 or 6") if paged else ("live triage dump", "DumpType 4")
    return [
        Mismatch(
            ("expect", "dump"),
            f"{dump.path.name} is not a {kind}",
            f"{wanted} with the LiveDumpGeneratedDump attribute",
            f"DumpType {header.dump_type}, Attributes {header.attributes}",
        )
    ]


def _check_code(
    expect: DumpExpect | None, dump: KernelDump, context: DumpContext, base: YamlPath
) -> list[Mismatch]:
    want = (
        context.create_bugcheck_code
        if expect is None or expect.bugcheck_code is None
        else expect.bugcheck_code
    )
    got = dump.header.bugcheck_code
    if want is None or got == want:
        return []
    return [
        Mismatch(
            (*base, "bugcheck_code"), "the dump's BugCheckCode differs", f"0x{want:X}", _hex_or_unset(got)
        )
    ]


def _check_parameters(
    expect: DumpExpect, dump: KernelDump, context: DumpContext, base: YamlPath
) -> list[Mismatch]:
    if expect.parameters is None:
        return []
    found = []
    actual = dump.header.bugcheck_parameters
    for index, wanted in enumerate(expect.parameters):
        if wanted == "any":
            continue
        value = context.collection_handle if wanted == "collection" else wanted
        label = f"0x{value:X}" + (" (the DmfCollection handle)" if wanted == "collection" else "")
        if actual[index] != value:
            found.append(
                Mismatch(
                    (*base, "parameters", index),
                    f"BugCheckParameter{index + 1} differs",
                    label,
                    _hex_or_unset(actual[index]),
                )
            )
    return found


def _check_contains(
    dump: KernelDump, target: ResolvedRange, explicit: bytes | None, path: YamlPath
) -> list[Mismatch]:
    want = explicit if explicit is not None else target.data
    span = f"{target.label} (0x{target.address:X}+0x{target.length:X})"
    block = dump.block_containing(target.address, max(target.length, 1))
    if block is None:
        return [
            Mismatch(
                path,
                f"the dump does not contain {span}",
                "a data block covering the range",
                _nearby(dump, target),
            )
        ]
    if want is None:
        return []
    got = dump.read_virtual(target.address, len(want))
    if got == want:
        return []
    first = next(i for i, (a, b) in enumerate(zip(got, want, strict=True)) if a != b)
    return [
        Mismatch(
            path,
            f"the dump holds {span} but its bytes differ from offset +0x{first:X}",
            _hex(want[first : first + SHOWN_BYTES]),
            _hex(got[first : first + SHOWN_BYTES]),
        )
    ]


def _check_excludes(dump: KernelDump, target: ResolvedRange, path: YamlPath) -> list[Mismatch]:
    end = target.address + max(target.length, 1)
    overlapping = [b for b in dump.data_blocks if b.address < end and target.address < b.address + b.size]
    if not overlapping:
        return []
    blocks = ", ".join(f"0x{b.address:X}+0x{b.size:X}" for b in overlapping[:4])
    return [
        Mismatch(
            path,
            f"the dump contains {target.label} (0x{target.address:X}+0x{target.length:X}), which it must not",
            "no data block overlapping the range",
            f"{len(overlapping)} overlapping block(s): {blocks}",
        )
    ]


def _check_secondary(
    dump: KernelDump, item: SecondaryDataExpect, context: DumpContext, path: YamlPath
) -> list[Mismatch]:
    if missing := _missing_buffer(item.buffer, context, path):
        return missing
    guid = item.guid or context.secondary_data_guid
    blobs = dump.blobs_with_guid(guid)
    present = ", ".join(f"{b.guid} ({b.size} bytes)" for b in dump.secondary_data) or "none"
    if item.absent:
        if not blobs:
            return []
        return [Mismatch(path, f"secondary data {guid} is present", "no blob with that GUID", present)]
    if len(blobs) != 1:
        return [
            Mismatch(
                path,
                f"expected exactly one secondary-data blob {guid}",
                "1 blob",
                f"{len(blobs)}; blobs: {present}",
            )
        ]
    data = dump.blob_bytes(blobs[0])
    want = item.hex if item.hex is not None else (resolve(item.buffer, context).data if item.buffer else None)
    if item.size is not None and len(data) != item.size:
        return [
            Mismatch(
                (*path, "size"), f"secondary data {guid} has another size", str(item.size), str(len(data))
            )
        ]
    if want is not None and data != want:
        at = next(
            (i for i, (a, b) in enumerate(zip(want, data, strict=False)) if a != b), min(len(want), len(data))
        )
        start = at - at % SHOWN_BYTES
        where = f"first difference at byte {at} of {len(want)} expected / {len(data)} found"
        return [
            Mismatch(
                path,
                f"secondary data {guid} differs ({where}; bytes from {start})",
                _hex(want[start : start + SHOWN_BYTES]),
                _hex(data[start : start + SHOWN_BYTES]),
            )
        ]
    return []


def _check_block_count(dump: KernelDump, want: int | CountRange, path: YamlPath) -> list[Mismatch]:
    count = len(dump.data_blocks)
    if isinstance(want, int):
        ok, text = count == want, str(want)
    else:
        ok = count >= want.min and (want.max is None or count <= want.max)
        text = f"between {want.min} and {'any' if want.max is None else want.max}"
    return [] if ok else [Mismatch(path, "the dump holds another number of data blocks", text, str(count))]


def _nearby(dump: KernelDump, target: ResolvedRange) -> str:
    blocks = sorted(dump.data_blocks, key=lambda b: abs(b.address - target.address))[:3]
    if not blocks:
        return "the dump has no data blocks at all"
    listed = ", ".join(f"0x{b.address:X}+0x{b.size:X}" for b in blocks)
    return f"no block covers it; {len(dump.data_blocks)} blocks, nearest: {listed}"


def _hex(data: bytes) -> str:
    return data.hex(" ").upper() if data else "(empty)"


def _hex_or_unset(value: int | None) -> str:
    return "unset (PAGE fill)" if value is None else f"0x{value:X}"

"""Structured evidence of one dump as the verifier read it: every data block and secondary-data blob
it holds, and every expectation of the scenario with its verdict and the blocks it concerns.

Additive beside `check_dump`: the Mismatch list stays the pass/fail answer and its wording; this is
the picture-ready form of the same reading, which the dump map (`harness/report/dump_map.py`) draws
without opening the dump again (DESIGN.md: the map is fed by the verifier's evidence). The verdicts
follow `check_dump`'s rules exactly (tests/test_dump_map.py holds the two to agreement):

- `contains`: found (a block wholly covers the range and holds the bytes), differs (covered, other
  bytes), missing (no block covers it);
- `excludes`: absent (no block overlaps it), unexpected (a block overlaps it);
- `secondary_data`: found, differs (content or size), missing (no blob, or more than one), absent
  (`absent: true` and none), unexpected (`absent: true` and one is there).

Costs follow F08: each block takes a 16-byte descriptor plus its size rounded up to 8 from the
256 KiB (0x40000) buffer the OS builds the dump in; secondary data is appended after it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness.dump import DumpFormatError, KernelDump
from harness.dump.dmf import decode_dmf
from harness.scenario.model import BufferSlice, DumpExpect, SecondaryDataExpect
from harness.verify import memory_contents as by_page
from harness.verify.dump_contents import BufferView, DumpContext, resolve
from harness.verify.mismatch import YamlPath

HEAD_BYTES = 16
"""How many leading bytes of each block and blob the evidence keeps (shown on hover)."""
DUMP_BUFFER_BYTES = 0x40000
"""F08: the live dump is built in a 256 KiB non-paged buffer."""
BLOCK_DESCRIPTOR_BYTES = 16
"""F08: each inserted block costs a 16-byte descriptor plus its size rounded up to 8."""

Verdict = Literal["found", "differs", "missing", "absent", "unexpected"]
GOOD_VERDICTS: frozenset[str] = frozenset({"found", "absent"})


@dataclass(frozen=True)
class BlockEvidence:
    """One TRIAGE_DATA_BLOCK: where it was captured, how big, its first bytes, and whose it is."""

    address: int
    size: int
    head: bytes
    owner: str | None = None
    """The scenario buffer whose range the block covers, when the runner knows one."""
    module: str | None = None
    """The DMF module the block belongs to, when DMF data can be decoded (`dmf_module_labels`)."""

    @property
    def end(self) -> int:
        return self.address + self.size

    @property
    def cost(self) -> int:
        """What the block takes from the 256 KiB buffer (F08)."""
        return BLOCK_DESCRIPTOR_BYTES + (self.size + 7) // 8 * 8


@dataclass(frozen=True)
class BlobEvidence:
    """One secondary-data blob (DumpBlob): its GUID, size and first bytes."""

    guid: str
    size: int
    head: bytes


@dataclass(frozen=True)
class ExpectationEvidence:
    """One `contains` / `excludes` / `secondary_data` item and what the dump showed for it."""

    kind: Literal["contains", "excludes", "secondary_data"]
    path: YamlPath
    label: str
    verdict: Verdict
    address: int | None = None
    length: int | None = None
    blocks: tuple[int, ...] = ()
    """Addresses of the blocks that cover (contains) or overlap (excludes) the range."""
    guid: str | None = None
    expected_head: bytes | None = None
    found_head: bytes | None = None
    detail: str = ""
    where: str = ""
    """The YAML position of the expectation (`file:line:col`), filled in by the runner."""

    @property
    def met(self) -> bool:
        return self.verdict in GOOD_VERDICTS


@dataclass(frozen=True)
class DumpEvidence:
    """Everything the dump map draws for one dump."""

    path: Path
    kind: str
    dump_type: str
    bugcheck_code: int | None
    parameters: tuple[int | None, ...]
    build: int | None
    size_of_dump: int | None
    file_size: int
    blocks: tuple[BlockEvidence, ...]
    blobs: tuple[BlobEvidence, ...]
    expectations: tuple[ExpectationEvidence, ...] = ()

    @property
    def block_cost(self) -> int:
        return sum(block.cost for block in self.blocks)

    @property
    def checked(self) -> bool:
        return bool(self.expectations)

    def located(self, where: Callable[[YamlPath], str]) -> DumpEvidence:
        """A copy whose expectations carry their YAML positions (`where(path)`)."""
        located = tuple(dataclasses.replace(item, where=where(item.path)) for item in self.expectations)
        return dataclasses.replace(self, expectations=located)


def dmf_module_labels(dump: KernelDump) -> Mapping[int, str]:
    """The DMF module each DMF-data block belongs to, by block address (F16, F35).

    Decoded by `harness.dump.dmf` through P2 (F32): the DMF_MODULE_COLLECTION block, then per module
    its DMF_OBJECT, config and context blocks, labelled with the module's instance name. A dump
    without DMF data (ExcludeDmfData, an evicted collection) labels nothing; a malformed one too,
    since the map must never fail where the checks already said what is wrong.
    """
    try:
        data = decode_dmf(dump)
    except DumpFormatError:
        return {}
    if data.absent is not None:
        return {}
    labels = {data.collection_address: "DMF collection"}
    for module in data.modules:
        name = module.instance_name or f"module 0x{module.object_address:X}"
        labels[module.object_address] = name
        if module.config_in_dump and module.config_address:
            labels[module.config_address] = name
        if module.context_size is not None and module.context_address:
            labels[module.context_address] = name
    return labels


def dump_evidence(
    dump: KernelDump, expect: DumpExpect | None, context: DumpContext | None, *, kind: str = "live"
) -> DumpEvidence:
    """Read what the map needs from an open dump and judge `expect` (None: the layout only)."""
    buffers = context.buffers if context is not None else {}
    modules = dmf_module_labels(dump)
    blocks = tuple(
        BlockEvidence(
            block.address,
            block.size,
            dump.read_file(block.offset, min(block.size, HEAD_BYTES)),
            _owner(block.address, block.size, buffers),
            modules.get(block.address),
        )
        for block in dump.data_blocks
    )
    blobs = tuple(
        BlobEvidence(str(blob.guid), blob.size, dump.read_file(blob.data_offset, min(blob.size, HEAD_BYTES)))
        for blob in dump.secondary_data
    )
    header = dump.header
    expectations = _expectations(dump, expect, context) if expect is not None and context else ()
    return DumpEvidence(
        path=dump.path,
        kind=kind,
        dump_type=header.dump_type_name,
        bugcheck_code=header.bugcheck_code,
        parameters=tuple(header.bugcheck_parameters),
        build=header.build,
        size_of_dump=dump.triage.size_of_dump if dump.triage is not None else None,
        file_size=dump.file_size,
        blocks=blocks,
        blobs=blobs,
        expectations=expectations,
    )


def _owner(address: int, size: int, buffers: Mapping[str, BufferView]) -> str | None:
    """The buffer a block lies in (a stored buffer or client structure is captured from its range)."""
    for view in buffers.values():
        if view.address <= address and address + size <= view.address + max(len(view.data), 1):
            return view.name
    return None


def _expectations(
    dump: KernelDump, expect: DumpExpect, context: DumpContext
) -> tuple[ExpectationEvidence, ...]:
    base: YamlPath = ("expect", "dump")
    found: list[ExpectationEvidence] = []
    paged = by_page.is_memory_dump(dump)
    contains, excludes = (_contains_by_page, _excludes_by_page) if paged else (_contains, _excludes)
    for index, item in enumerate(expect.contains):
        if _known(item, context):
            found.append(contains(dump, item, context, (*base, "contains", index)))
    for index, item in enumerate(expect.excludes):
        if _known(item, context):
            found.append(excludes(dump, item, context, (*base, "excludes", index)))
    for index, item in enumerate(expect.secondary_data):
        if item.buffer is None or _known(item.buffer, context):
            found.append(_secondary(dump, item, context, (*base, "secondary_data", index)))
    return tuple(found)


def _known(slice_: BufferSlice, context: DumpContext) -> bool:
    """A buffer allocated before a reboot has no address on this boot: nothing to draw for it."""
    return slice_.buffer is None or slice_.buffer in context.buffers


def _contains(
    dump: KernelDump, item: BufferSlice, context: DumpContext, path: YamlPath
) -> ExpectationEvidence:
    target = resolve(item, context)
    explicit = getattr(item, "bytes", None)
    want = explicit if explicit is not None else target.data
    common = {"kind": "contains", "path": path, "label": target.label, "address": target.address}
    common["length"] = target.length
    block = dump.block_containing(target.address, max(target.length, 1))
    if block is None:
        near = sorted(dump.data_blocks, key=lambda b: abs(b.address - target.address))[:3]
        return ExpectationEvidence(
            **common,
            verdict="missing",
            blocks=tuple(b.address for b in near),
            expected_head=want[:HEAD_BYTES] if want else None,
            detail="no block covers it; nearest: "
            + (", ".join(f"0x{b.address:X}+0x{b.size:X}" for b in near) or "none"),
        )
    got = dump.read_virtual(target.address, len(want)) if want is not None else None
    if want is None or got == want:
        return ExpectationEvidence(
            **common, verdict="found", blocks=(block.address,), found_head=(got or b"")[:HEAD_BYTES]
        )
    first = next(i for i, (a, b) in enumerate(zip(got or b"", want, strict=True)) if a != b)
    return ExpectationEvidence(
        **common,
        verdict="differs",
        blocks=(block.address,),
        expected_head=want[first : first + HEAD_BYTES],
        found_head=(got or b"")[first : first + HEAD_BYTES],
        detail=f"bytes differ from offset +0x{first:X}",
    )


def _contains_by_page(
    dump: KernelDump, item: BufferSlice, context: DumpContext, path: YamlPath
) -> ExpectationEvidence:
    """A memory dump's `contains`, read by virtual address (memory_contents): no blocks to name."""
    target = resolve(item, context)
    explicit = getattr(item, "bytes", None)
    want = explicit if explicit is not None else target.data
    common = {"kind": "contains", "path": path, "label": target.label, "address": target.address}
    common["length"] = target.length
    reading = by_page.read_range(dump, target.address, target.length, want)
    if reading.error is not None:
        head = want[:HEAD_BYTES] if want else None
        return ExpectationEvidence(**common, verdict="missing", expected_head=head, detail=str(reading.error))
    got = reading.data or b""
    if want is None or got == want:
        return ExpectationEvidence(**common, verdict="found", found_head=got[:HEAD_BYTES])
    first = next(i for i, (a, b) in enumerate(zip(got, want, strict=True)) if a != b)
    return ExpectationEvidence(
        **common,
        verdict="differs",
        expected_head=want[first : first + HEAD_BYTES],
        found_head=got[first : first + HEAD_BYTES],
        detail=f"bytes differ from offset +0x{first:X}",
    )


def _excludes_by_page(
    dump: KernelDump, item: BufferSlice, context: DumpContext, path: YamlPath
) -> ExpectationEvidence:
    target = resolve(item, context)
    found = by_page.mapped_pages(dump, target.address, target.length)
    return ExpectationEvidence(
        kind="excludes",
        path=path,
        label=target.label,
        verdict="unexpected" if found.present else "absent",
        address=target.address,
        length=target.length,
        detail=f"{found.present} of {found.pages} page(s) in the dump"
        if found.present
        else "no page of the range in the dump",
    )


def _excludes(
    dump: KernelDump, item: BufferSlice, context: DumpContext, path: YamlPath
) -> ExpectationEvidence:
    target = resolve(item, context)
    end = target.address + max(target.length, 1)
    overlapping = [b for b in dump.data_blocks if b.address < end and target.address < b.address + b.size]
    return ExpectationEvidence(
        kind="excludes",
        path=path,
        label=target.label,
        verdict="unexpected" if overlapping else "absent",
        address=target.address,
        length=target.length,
        blocks=tuple(b.address for b in overlapping),
        detail=f"{len(overlapping)} overlapping block(s)" if overlapping else "no block overlaps the range",
    )


def _secondary(
    dump: KernelDump, item: SecondaryDataExpect, context: DumpContext, path: YamlPath
) -> ExpectationEvidence:
    guid = str(item.guid or context.secondary_data_guid)
    blobs = dump.blobs_with_guid(guid)
    label = f"secondary data {guid}"
    if item.absent:
        verdict: Verdict = "unexpected" if blobs else "absent"
        return ExpectationEvidence(
            "secondary_data", path, label, verdict, guid=guid, detail=f"{len(blobs)} blob(s)"
        )
    if len(blobs) != 1:
        return ExpectationEvidence(
            "secondary_data", path, label, "missing", guid=guid, detail=f"{len(blobs)} blobs, expected 1"
        )
    data = dump.blob_bytes(blobs[0])
    want = item.hex if item.hex is not None else (resolve(item.buffer, context).data if item.buffer else None)
    if item.size is not None and len(data) != item.size:
        detail = f"size {len(data)}, expected {item.size}"
        return ExpectationEvidence("secondary_data", path, label, "differs", guid=guid, detail=detail)
    if want is not None and data != want:
        return ExpectationEvidence(
            "secondary_data",
            path,
            label,
            "differs",
            guid=guid,
            expected_head=want[:HEAD_BYTES],
            found_head=data[:HEAD_BYTES],
            detail=f"{len(data)} bytes found, {len(want)} expected, content differs",
        )
    return ExpectationEvidence(
        "secondary_data", path, label, "found", guid=guid, found_head=data[:HEAD_BYTES]
    )

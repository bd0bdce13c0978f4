"""`lkdh inspect --dmf` on kernel memory dumps (harness/dump/dmf_memory.py): the DMF data found by
virtual address, on a dump from the independent generator (tests/memory_dump_gen.py, DMF structures
patched into pages it maps) and on a full live dump the simulator wrote."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import kdmp_parser
import pytest
from memory_dump_gen import Generated, Plan, generate

from harness.cli import main
from harness.dump import dmf_layout as D
from harness.dump import open_dump
from harness.dump.dmf import decode_dmf
from harness.target.ops import Alloc, Create, Store
from harness.target.sim import SimSettings, SimulatedMachine

PRESENT = [(0x100, 0x3000)]


def _offset(g: Generated, pfn: int) -> int:
    """Where frame ``pfn`` is in the generated file, from the plan's present ranges."""
    before = 0
    for first, count in g.plan.present:
        if first <= pfn < first + count:
            return g.first_page + (before + pfn - first) * 0x1000
        before += count
    raise AssertionError(f"frame {pfn:#x} is not present")


def _object(config: int, context: int, name: int, name_size: int) -> bytes:
    head = D.DMF_OBJECT_HEAD(
        ModuleConfig=config,
        ModuleConfigSize=0x20,
        ModuleContext=context,
        ModuleState=D.MODULE_STATE_OPENED,
        ClientModuleInstanceName=name,
        ClientModuleInstanceNameSizeBytes=name_size,
        Signature=D.DMF_OBJECT_SIGNATURE,
    )
    return bytes(head)


@pytest.fixture(scope="module")
def generated_dmf(tmp_path_factory: pytest.TempPathFactory) -> tuple[Generated, dict[str, int]]:
    """A generated DumpType 6 dump with a DMF collection, two top-level modules and a child in four
    of its 4 KiB pages, and P2 set to the collection's WDFMEMORY handle."""
    plan = Plan(described_pages=0x40000, present=PRESENT, dump_type=6, seed=3, small_pages=64)
    g = generate(tmp_path_factory.mktemp("dmfgen") / "full.dmp", plan)
    pages = {}
    for va, pfn in g.small:  # four pages on distinct frames well above the page tables
        if pfn > 0x400 and pfn not in pages.values():
            pages[va] = pfn
        if len(pages) == 4:
            break
    (v0, f0), (v1, f1), (v2, f2), (v3, f3) = pages.items()
    memory_object = v0 + 0x100
    handle = D.wdf_handle(memory_object)
    at = {"collection": memory_object + 0x70, "a": v1 + 0x80, "b": v2 + 0x40, "child": v3 + 0x200}
    collection = D.DMF_MODULE_COLLECTION(
        ModuleCollectionHandleMemory=handle,
        ClientDriverDmfModules=v0 + 0x400,
        NumberOfClientDriverDmfModules=2,
    )
    writes = [
        (f0, 0x170, bytes(collection)),
        (f0, 0x400, struct.pack("<2Q", at["a"], at["b"])),
        (f1, 0x80, _object(v1 + 0x900, v1 + 0xA00, v1 + 0x800, 8)),
        (f1, 0x800, b"ModuleA\0"),
        (f2, 0x40, _object(v2 + 0x900, 0, v2 + 0x800, 8)),
        (f2, 0x800, b"ModuleB\0"),
        (f3, 0x200, _object(v3 + 0x900, v3 + 0xA00, v3 + 0x800, 7)),
        (f3, 0x800, b"ChildC\0"),
    ]
    with g.path.open("r+b") as f:
        for pfn, offset, data in writes:
            f.seek(_offset(g, pfn) + offset)
            f.write(data)
        f.seek(0x48)  # DUMP_HEADER64.BugCheckParameter2
        f.write(struct.pack("<Q", handle))
    at["a_file_offset"] = _offset(g, f1) + 0x80
    return g, at


def test_the_generated_dumps_dmf_data_is_found_by_virtual_address(generated_dmf) -> None:
    g, at = generated_dmf
    peer = kdmp_parser.KernelDumpParser(g.path)  # the patch landed where an independent walk reads
    page = peer.read_virtual_page(at["a"] & ~0xFFF)
    assert page is not None and bytes(page)[0x800:0x808] == b"ModuleA\0"
    with open_dump(g.path) as dump:
        data = decode_dmf(dump)
    assert data.absent is None and data.found_by == "virtual address"
    assert (data.collection_address, data.module_count, data.handles_in_dump) == (at["collection"], 2, True)
    found = [
        (m.object_address, m.top_level, m.instance_name, m.state, m.config_in_dump) for m in data.modules
    ]
    assert found == [
        (at["a"], True, "ModuleA", "Opened", True),
        (at["b"], True, "ModuleB", "Opened", True),
        (at["child"], False, "ChildC", "Opened", True),
    ]
    assert [m.context_in_dump for m in data.modules] == [True, False, True]


def test_inspect_dmf_prints_it(generated_dmf, capsys: pytest.CaptureFixture[str]) -> None:
    g, at = generated_dmf
    assert main(["inspect", "--dmf", str(g.path)]) == 0
    text = capsys.readouterr().out
    assert f"DMF_MODULE_COLLECTION at 0x{at['collection']:x}" in text and "found by: virtual address" in text
    assert "ModuleA" in text and "ChildC  (child)" in text
    assert main(["inspect", "--dmf", "--json", str(g.path)]) == 0
    assert json.loads(capsys.readouterr().out)["modules"][2]["instance_name"] == "ChildC"


def test_a_p2_that_leads_nowhere_says_where_the_walk_stopped(generated_dmf, tmp_path: Path) -> None:
    g, _ = generated_dmf
    broken = tmp_path / "broken.dmp"
    broken.write_bytes(g.path.read_bytes())
    with broken.open("r+b") as f:
        f.seek(0x48)
        f.write(struct.pack("<Q", D.wdf_handle(g.special["pte_transition"])))
    with open_dump(broken) as dump:
        data = decode_dmf(dump)
    assert data.absent is not None and data.found_by == "virtual address"
    assert "no DMF_MODULE_COLLECTION there" in data.absent and ": PTE (entry at physical 0x" in data.absent
    assert "transition entry" in data.absent


def test_inspect_on_a_simulator_written_full_live_dump_and_memory_dmp(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = SimulatedMachine(tmp_path, SimSettings(live_dump="kernel", crash_dump="kernel"))
    sim.prepare()
    sim.execute(Alloc("ring_a", 64, b"ring"))
    sim.execute(Store("ring_a", 64))
    sim.execute(Create(0x1A2))
    (live,) = sim.collect_dumps()
    assert main(["inspect", "--dmf", str(live.path)]) == 0
    text = capsys.readouterr().out
    for name in (
        "LiveKernelDump",
        "LkdhControl",
        "Bridge",
        "DataBufferSource  (child)",
        "BufferPoolConsumer",
    ):
        assert name in text
    assert main(["inspect", str(live.path)]) == 0
    summary = capsys.readouterr().out
    assert "dump type              6 (bitmap kernel)" in summary and "BITMAP_DUMP64 'SDMP'" in summary


def _patched(source: Path, target: Path, offset: int, data: bytes) -> Path:
    target.write_bytes(source.read_bytes())
    with target.open("r+b") as f:
        f.seek(offset)
        f.write(data)
    return target


def test_hostile_sizes_and_a_dump_without_x64_tables_are_reported_not_followed(
    generated_dmf, tmp_path: Path
) -> None:
    """A name size of 2^40 is not read (page by page, for ever); an ARM64 memory dump has no x64
    tables to find the collection through: the reason is MachineImageType, from the reader."""
    g, at = generated_dmf
    name_size = at["a_file_offset"] + D.DMF_OBJECT_HEAD.ClientModuleInstanceNameSizeBytes.offset
    huge = _patched(g.path, tmp_path / "huge.dmp", name_size, struct.pack("<Q", 1 << 40))
    with open_dump(huge) as dump:
        data = decode_dmf(dump)
    assert [m.instance_name for m in data.modules] == [None, "ModuleB", "ChildC"]
    arm = _patched(g.path, tmp_path / "arm.dmp", 0x30, struct.pack("<I", 0xAA64))
    with open_dump(arm) as dump:
        data = decode_dmf(dump)
    assert data.absent is not None and "MachineImageType" in data.absent
    assert main(["inspect", "--dmf", str(arm)]) == 0

"""`lkdh inspect --dmf` and harness/dump/dmf.py: DMF's data decoded from a dump, found through P2
(DMF_FACTS.md F32, F35), the layouts pinned to the x64 offsets of DMF bfac434."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import shared_dir

from harness.cli import main
from harness.dump import KernelDump
from harness.dump import dmf_layout as D
from harness.dump.dmf import DmfData, DmfModule, decode_dmf, describe_dmf
from harness.target.ops import Alloc, Create, Store, Wait
from harness.target.sim import SimSettings, SimulatedMachine

FIXTURE = shared_dir() / "fixtures" / "dumps" / "triage_x64.dmp"


def test_layouts_are_the_x64_ones() -> None:
    """DMF_MODULE_COLLECTION is 0x68 with the handle first (F32, F35); DMF_OBJECT's head ends with
    Signature at 0x70; KMDF handles are the address XOR ~7."""
    assert (
        D.DMF_MODULE_COLLECTION_SIZE == 0x68
        and D.DMF_MODULE_COLLECTION.ModuleCollectionHandleMemory.offset == 0
    )
    assert D.DMF_MODULE_COLLECTION.NumberOfClientDriverDmfModules.offset == 0x18
    assert (
        D.DMF_MODULE_COLLECTION.DmfObjectFeature.offset == 0x20
        and D.DMF_MODULE_COLLECTION.ClientDevice.offset == 0x60
    )
    assert D.DMF_OBJECT_HEAD.ModuleConfig.offset == 0x10 and D.DMF_OBJECT_HEAD.ModuleContext.offset == 0x20
    assert (
        D.DMF_OBJECT_HEAD.ClientModuleInstanceName.offset == 0x60
        and D.DMF_OBJECT_HEAD.Signature.offset == 0x70
    )
    assert D.wdf_handle(0xFFFF_9A00_0000_1000) == 0x0000_65FF_FFFF_EFF8
    assert D.wdf_object_address(D.wdf_handle(0xFFFF_9A00_0000_1000)) == 0xFFFF_9A00_0000_1000


def _live_dumps(tmp_path: Path, *creates: Create, stores: int = 0) -> list[Path]:
    sim = SimulatedMachine(tmp_path / "sim", SimSettings())
    sim.prepare()
    sim.execute(Alloc("a", 8, b"a"))
    for _ in range(stores):
        sim.execute(Store("a", 8))
    for create in creates:
        sim.execute(create)
        sim.execute(Wait(61))
    return sorted(d.path for d in sim.collect_dumps() if d.kind == "live")


def test_f35_decodes_the_eight_modules_of_the_test_driver(tmp_path: Path) -> None:
    """F35: three top-level modules (LiveKernelDump, LkdhControl, Bridge) and five children, each
    with its config and context block in the dump."""
    (path,) = _live_dumps(tmp_path, Create(1))
    with KernelDump(path) as dump:
        data = decode_dmf(dump)
    assert data.absent is None and data.module_count == 3 and data.handles_in_dump
    assert [m.instance_name for m in data.modules if m.top_level] == [
        "LiveKernelDump",
        "LkdhControl",
        "Bridge",
    ]
    assert sorted(m.instance_name for m in data.modules if not m.top_level) == sorted(
        [
            "DataBufferSource",
            "IoctlHandler",
            "BufferPoolProducer",
            "BufferPoolConsumer",
            "LiveKernelDumpBufferQueue",
        ]
    )
    by_name = {m.instance_name: m for m in data.modules}
    assert by_name["DataBufferSource"].config_size == 0xC and by_name["DataBufferSource"].context_size == 0x40
    assert all(m.config_in_dump and m.context_size and m.state == "Opened" for m in data.modules)
    assert "LkdhControl" in describe_dmf(data)


def test_no_dmf_data_is_said_so(tmp_path: Path) -> None:
    """ExcludeDmfData (P2 = 0) and an evicted collection block both say why there is no DMF data."""
    excluded, evicted = _live_dumps(tmp_path, Create(1, exclude_dmf_data=1), Create(2), stores=223)
    with KernelDump(excluded) as dump:
        assert "ExcludeDmfData" in (decode_dmf(dump).absent or "")
    with KernelDump(evicted) as dump:
        assert "no data block starts with P2" in (decode_dmf(dump).absent or "")


@pytest.mark.needs_shared
def test_a_real_non_dmf_dump_has_no_dmf_data() -> None:
    with KernelDump(FIXTURE) as dump:
        assert decode_dmf(dump).absent is not None


def test_cli_inspect_dmf_text_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (path,) = _live_dumps(tmp_path, Create(1))
    assert main(["inspect", "--dmf", str(path)]) == 0
    assert "DMF_MODULE_COLLECTION" in capsys.readouterr().out
    assert main(["inspect", "--dmf", "--json", str(path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["absent"] is None and len(data["modules"]) == 8


def test_describe_dmf_line_by_line() -> None:
    """Every column of the table in each of its forms: a top-level module and a child, a module
    whose name is not in the dump, a config block absent, no context, a context whose block is
    not in the dump; and a handle array that was not captured."""
    modules = [
        DmfModule(
            0xFFFF_9A00_0000_1000,
            True,
            "LiveKernelDump",
            "Opened",
            0xFFFF_9A00_0000_2000,
            0x18,
            True,
            0xFFFF_9A00_0000_3000,
            0x40,
        ),
        DmfModule(
            0xFFFF_9A00_0000_4000,
            False,
            "IoctlHandler",
            "Created",
            0xFFFF_9A00_0000_5000,
            0xC,
            False,
            0,
            None,
        ),
        DmfModule(0xFFFF_9A00_0000_6000, True, None, "not in dump", 0, 0, False, 0xFFFF_9A00_0000_7000, None),
    ]
    data = DmfData(
        collection_handle=0x65FF_FFFF_EFF8,
        collection_address=0xFFFF_9A00_0000_0800,
        module_count=2,
        handles_in_dump=False,
        modules=modules,
    )
    assert describe_dmf(data).split("\n") == [
        "DMF data: DMF_MODULE_COLLECTION at 0xffff9a0000000800 (P2 = WDFMEMORY 0x65ffffffeff8)",
        "  found by: data blocks",
        "  top-level modules: 2 (handle array not in the dump)",
        "  module                       object             state    config                     context",
        "  LiveKernelDump               0xffff9a0000001000 Opened   0xffff9a0000002000+0x18    "
        "0xffff9a0000003000+0x40",
        "  IoctlHandler  (child)        0xffff9a0000004000 Created  0xffff9a0000005000+0xc absent none",
        "  ?                            0xffff9a0000006000 not in dump 0x0+0x0 absent             "
        "0xffff9a0000007000 absent",
    ]
    captured = describe_dmf(DmfData(collection_address=0x10, collection_handle=0x20, handles_in_dump=True))
    assert captured.split("\n")[2] == "  top-level modules: 0"
    assert describe_dmf(DmfData(absent="P2 is 0")) == "DMF data: none (P2 is 0)"

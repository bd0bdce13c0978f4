"""The simulator set up for kernel memory dumps (harness/target/sim/kernel_dump.py): a bugcheck
writes %SystemRoot%\\MEMORY.DMP beside the minidump; `live_dump: kernel` makes Create write a full
live dump. Read back by the project's reader and by kdmp-parser."""

from __future__ import annotations

import ctypes
import uuid
from pathlib import Path

import kdmp_parser
import pytest
from pydantic import ValidationError

from harness.dump import KernelDump, MemoryDump, PageNotInDump, open_dump
from harness.dump.dmf import decode_dmf
from harness.dump.kernel_layout import CONTEXT_AMD64
from harness.target.irql import Irql
from harness.target.ops import Alloc, Create, Free, SecondaryData, Store
from harness.target.sim import SimSettings, SimulatedMachine
from harness.target.sim.config import SimConfig
from harness.target.sim.memory import USER_MODE
from harness.target.status import STATUS_SUCCESS

GUID = uuid.UUID("0b3c4f0e-9d7a-4f1a-8f3e-5b2a1c0d9e8f")


def machine(tmp_path: Path, **settings: object) -> SimulatedMachine:
    sim = SimulatedMachine(tmp_path, SimSettings(**settings))  # type: ignore[arg-type]
    sim.prepare()
    return sim


def _crash_with_buffers(sim: SimulatedMachine) -> dict[str, tuple[int, bytes]]:
    """Allocate in three pools, free one, then store at DISPATCH_LEVEL: 0xD1 under Verifier (F38)."""
    for name, size, pool in (
        ("nx", 64, "NonPagedPoolNx"),
        ("paged", 0x1800, "PagedPool"),
        ("gone", 0x3000, "PagedPool"),
    ):
        assert sim.execute(Alloc(name, size, name.encode(), pool)).status == STATUS_SUCCESS
    kept = {
        name: (sim.buffers[name][0], sim.memory.read(sim.buffers[name][0], sim.buffers[name][1]))
        for name in ("nx", "paged")
    }
    kept["gone"] = (sim.buffers["gone"][0] + 0x1000, b"")  # a page no live allocation shares
    kept["user"] = (sim.memory.allocate(16, USER_MODE, b"user"), b"")
    kept["collection"] = (
        sim.framework.collection_address,
        sim.memory.read(sim.framework.collection_address, 0x68),
    )
    assert sim.execute(Free("gone")).status == STATUS_SUCCESS  # special pool under Verifier: unmapped (F45)
    result = sim.execute(Store("nx", 64, irql=Irql.DISPATCH_LEVEL))
    assert result.crash is not None and result.crash.bugcheck_code == 0xD1
    return kept


def test_a_bugcheck_writes_memory_dmp_beside_the_minidump(tmp_path: Path) -> None:
    """The kernel memory dump holds the boot's kernel allocations at their virtual addresses: stored
    buffers, the DMF collection; not the caller's user-mode memory, not freed special pool."""
    sim = machine(tmp_path, crash_dump="kernel")
    kept = _crash_with_buffers(sim)
    crash = sim.crashes[-1]
    collected = sim.collect_dumps()
    assert sorted(d.remote_name.split("/")[0] for d in collected) == ["MEMORY.DMP", "Minidump"]
    assert {d.kind for d in collected} == {"crash"}
    memory = next(d for d in collected if d.remote_name == "MEMORY.DMP")
    with open_dump(memory.path) as dump:
        assert isinstance(dump, MemoryDump)
        assert (dump.header.dump_type, dump.bitmap_signature, dump.header.is_live_dump) == (5, "SDMP", False)
        assert (dump.header.bugcheck_code, tuple(dump.header.bugcheck_parameters)) == (0xD1, crash.parameters)
        for name in ("nx", "paged", "collection"):
            address, data = kept[name]
            assert dump.read_virtual(address, len(data)) == data, name
        for name in ("user", "gone"):
            with pytest.raises(PageNotInDump) as absent:
                dump.read_virtual(kept[name][0], 8)
            assert absent.value.level in {"PML4E", "PDPTE", "PDE", "PTE"}, name
        peer = kdmp_parser.KernelDumpParser(memory.path)
        for name in ("nx", "paged", "collection"):
            address, data = kept[name]
            page = peer.read_virtual_page(address & ~0xFFF)
            assert page is not None
            start = address & 0xFFF
            assert bytes(page)[start : start + 16] == data[:16], name
    minidump = next(d for d in collected if d.remote_name.startswith("Minidump"))
    with KernelDump(minidump.path) as triage, open_dump(memory.path) as dump:
        assert triage.header.dump_type == 4
        view = triage.debugger
        assert view is not None
        context = CONTEXT_AMD64.from_buffer_copy(
            bytes(dump.raw_header.ContextRecord)[: ctypes.sizeof(CONTEXT_AMD64)]
        )
        assert (context.Rip, context.Rsp) == (view.registers["Rip"], view.registers["Rsp"])
        stack = triage.read_file(triage.triage.call_stack_offset, triage.triage.size_of_call_stack)
        assert dump.read_virtual(context.Rsp, len(stack)) == stack, "the stack a debugger walks from Rsp"
        with pytest.raises(PageNotInDump) as below:  # 4 KiB-mapped: the page under it has a zero PTE
            dump.read_virtual((context.Rsp & ~0xFFF) - 0x1000, 8)
        assert below.value.level == "PTE" and below.value.entry == 0


def test_a_second_bugcheck_keeps_the_first_memory_dump_copy(tmp_path: Path) -> None:
    """MEMORY.DMP is overwritten on the machine by the next bugcheck (kernel-memory-dump.md); the
    copies collected after each crash are kept side by side."""
    sim = machine(tmp_path, crash_dump="kernel")
    first = sim.execute(Create(0x1AA, irql=Irql.DISPATCH_LEVEL))
    copies_one = [d for d in sim.collect_dumps() if d.remote_name == "MEMORY.DMP"]
    sim.now += 120
    sim.execute(Alloc("b", 16, b"b"))
    second = sim.execute(Store("b", 16, irql=Irql.DISPATCH_LEVEL))
    copies_two = [d for d in sim.collect_dumps() if d.remote_name == "MEMORY.DMP"]
    assert first.crash and second.crash and len(copies_one) == len(copies_two) == 1
    assert (copies_one[0].path.name, copies_two[0].path.name) == ("MEMORY.DMP", "MEMORY-2.DMP")
    for copy, crash in ((copies_one[0], first.crash), (copies_two[0], second.crash)):
        with open_dump(copy.path) as dump:
            assert tuple(dump.header.bugcheck_parameters) == crash.parameters
    assert sim.collect_dumps() == []


def test_without_the_setting_only_the_minidump_is_written(tmp_path: Path) -> None:
    sim = machine(tmp_path)
    sim.execute(Create(0x1AA, irql=Irql.DISPATCH_LEVEL))
    assert [d.remote_name.split("/")[0] for d in sim.collect_dumps()] == ["Minidump"]
    assert not (sim.windows_dir / "MEMORY.DMP").exists()


def test_a_full_live_dump_holds_the_stored_buffer_the_dmf_data_and_the_secondary_data(tmp_path: Path) -> None:
    """`live_dump: kernel`: DumpType 6 with LiveDumpGeneratedDump, P2 the collection handle (F02), the
    DMF data decoded by virtual address exactly as the triage dump of the same boot decodes it."""
    decoded = {}
    for kind in ("kernel", "triage"):
        sim = machine(tmp_path / kind, live_dump=kind, module=_module_with_guid())
        sim.execute(Alloc("ring_a", 64, b"ring"))
        sim.execute(Alloc("blob", 40, b"second"))
        sim.execute(Store("ring_a", 64))
        assert sim.execute(Create(0x1A2, 0x1234, secondary_data=SecondaryData("blob", 40))).status == 0
        (live,) = sim.collect_dumps()
        with open_dump(live.path) as dump:
            assert dump.header.is_live_dump
            assert tuple(dump.header.bugcheck_parameters[:2]) == (0x1234, sim.framework.collection_handle)
            assert dump.read_virtual(sim.buffers["ring_a"][0], 64) == b"ring" * 16
            assert [dump.blob_bytes(b) for b in dump.blobs_with_guid(GUID)] == [(b"second" * 7)[:40]]
            data = decode_dmf(dump)
            if kind == "kernel":
                assert isinstance(dump, MemoryDump) and dump.header.dump_type == 6
                assert data.found_by == "virtual address"
        assert data.absent is None
        decoded[kind] = data
    kernel, triage = decoded["kernel"], decoded["triage"]
    assert (kernel.collection_address, kernel.module_count) == (triage.collection_address, 3)
    described = [
        (m.object_address, m.top_level, m.instance_name, m.config_address, m.config_in_dump)
        for m in kernel.modules
    ]
    assert described == [
        (m.object_address, m.top_level, m.instance_name, m.config_address, m.config_in_dump)
        for m in triage.modules
    ]
    assert len(kernel.modules) == 8 and all(m.context_in_dump for m in kernel.modules)


def _module_with_guid():
    from dataclasses import replace

    from harness.target.sim.livekerneldump import ModuleConfig

    return replace(ModuleConfig(), secondary_data_guid=GUID)


def test_the_settings_are_checked_and_come_from_a_sim_target_config() -> None:
    with pytest.raises(ValueError, match="crash_dump = 'complete'"):
        SimSettings(crash_dump="complete")
    settings = SimConfig.model_validate(
        {"kind": "sim", "crash_dump": "kernel", "live_dump": "kernel"}
    ).settings()
    assert (settings.crash_dump, settings.live_dump) == ("kernel", "kernel")
    assert SimConfig.model_validate({"kind": "sim"}).settings().crash_dump == "triage"
    with pytest.raises(ValidationError, match="crash_dump"):
        SimConfig.model_validate({"kind": "sim", "crash_dump": "full"})

"""The Windows target pulls MEMORY.DMP kernel dumps as well as minidumps (list-dumps.ps1 lists
%SystemRoot%\\MEMORY.DMP), against the Windows double whose kernel is a simulator set up for kernel
memory dumps: the crash comes from the pulled dump, each copy is proven by SHA-256, and the
MEMORY.DMP that the next bugcheck overwrites on the guest is kept beside the first copy."""

from __future__ import annotations

import dataclasses
import hashlib

from test_windows_machine import build_lab

from harness.dump import MemoryDump, open_dump
from harness.target.irql import Irql
from harness.target.ops import Alloc, Store
from harness.target.status import STATUS_SUCCESS


def test_memory_dmp_is_pulled_verified_and_read_as_a_kernel_dump(
    tmp_path, monkeypatch, packages, identity
) -> None:
    lab = build_lab(tmp_path, monkeypatch, packages, identity)
    sim = lab.vm.sim
    sim.base_settings = sim.settings = dataclasses.replace(sim.settings, crash_dump="kernel")
    lab.machine.prepare()
    assert lab.machine.execute(Alloc("isr_data", 32, b"isr|")).status == STATUS_SUCCESS
    (address, _), *_ = sim.buffers.values()  # the double's slot buffer on the simulated kernel

    result = lab.machine.execute(Store("isr_data", 32, irql=Irql.DISPATCH_LEVEL))

    truth = sim.crashes[-1]
    assert result.crash is not None and result.crash.bugcheck_code == truth.bugcheck_code == 0xD1
    local = result.crash.dump_path
    assert local is not None and local.name == "MEMORY.DMP", "the crash is read from the kernel dump"
    assert local.read_bytes() == (sim.windows_dir / "MEMORY.DMP").read_bytes()
    with open_dump(local) as dump:
        assert isinstance(dump, MemoryDump) and dump.header.dump_type == 5
        assert tuple(dump.header.bugcheck_parameters) == truth.parameters
        assert dump.read_virtual(address, 32) == b"isr|" * 8
    pulled = lab.machine.collect_dumps()
    crash = sorted(d.remote_name for d in pulled if d.kind == "crash")
    assert crash[0] == "MEMORY.DMP" and crash[1].startswith("Minidump/")
    for dump in pulled:
        assert dump.sha256 == hashlib.sha256(dump.path.read_bytes()).hexdigest()


def test_a_second_memory_dmp_does_not_replace_the_first_copy(
    tmp_path, monkeypatch, packages, identity
) -> None:
    lab = build_lab(tmp_path, monkeypatch, packages, identity)
    sim = lab.vm.sim
    sim.base_settings = sim.settings = dataclasses.replace(sim.settings, crash_dump="kernel")
    lab.machine.prepare()
    copies = []
    for round_ in range(2):
        lab.machine.execute(Alloc("b", 16, bytes([round_]) * 16))
        result = lab.machine.execute(Store("b", 16, irql=Irql.DISPATCH_LEVEL))
        assert result.crash is not None
        copies.append((result.crash.dump_path, result.crash.parameters))
        lab.machine.collect_dumps()
    assert [path.name for path, _ in copies] == ["MEMORY.DMP", "MEMORY-2.DMP"]
    assert copies[0][0].read_bytes() != copies[1][0].read_bytes()
    for path, parameters in copies:
        with open_dump(path) as dump:
            assert tuple(dump.header.bugcheck_parameters) == parameters

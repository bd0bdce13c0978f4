"""DMF_LiveKernelDump on the simulated machine: facts of DMF_FACTS.md reproduced, per profile."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.dump import KernelDump
from harness.target.irql import Irql
from harness.target.ops import (
    Alloc,
    ClientStructure,
    Create,
    IoctlCreate,
    QueryDmfDataSize,
    Reboot,
    Remove,
    SecondaryData,
    Store,
    StoreCollection,
    Wait,
)
from harness.target.sim import SimSettings, SimulatedMachine
from harness.target.sim.config import SimConfig
from harness.target.sim.driver_image import TEST_DRIVER
from harness.target.sim.livekerneldump import Bugcheck, ModuleConfig
from harness.target.sim.lkmdtel import DUMP_BUFFER_SIZE, OS_FIXED_BYTES, LiveDumpService, block_cost
from harness.target.sim.memory import KERNEL_SPACE_START, KernelMemory, PageFault, is_kernel_address
from harness.target.sim.verifier import VerifierViolation
from harness.target.status import (
    STATUS_BUFFER_TOO_SMALL,
    STATUS_INVALID_PARAMETER,
    STATUS_OBJECT_NAME_COLLISION,
    STATUS_SUCCESS,
)


def machine(tmp_path: Path, profile: str = "dmf-bfac434", **settings: object) -> SimulatedMachine:
    sim = SimulatedMachine(tmp_path / profile, SimSettings(profile=profile, **settings))  # type: ignore[arg-type]
    sim.prepare()
    return sim


def only_live_dump(sim: SimulatedMachine) -> KernelDump:
    live = [d for d in sim.collect_dumps() if d.kind == "live"]
    assert len(live) == 1, live
    return KernelDump(live[0].path)


def test_f01_f08_stored_bytes_are_copied_at_create(tmp_path: Path) -> None:
    """F01/F08: each stored buffer becomes a data block with the bytes it held at Create."""
    sim = machine(tmp_path)
    address = sim.execute(Alloc("a", 40, b"xy")).address
    assert sim.execute(Store("a", 40)).status == STATUS_SUCCESS
    assert sim.execute(Create(0x1A2, 5)).status == STATUS_SUCCESS
    with only_live_dump(sim) as dump:
        assert dump.read_virtual(address, 40) == b"xy" * 20
        assert dump.header.is_live_dump


def test_f02_parameters_p1_caller_p2_collection_p3_p4_zero(tmp_path: Path) -> None:
    """F02: P1 = caller's parameter, P2 = DmfCollection (0 with ExcludeDmfData), P3 = P4 = 0."""
    sim = machine(tmp_path)
    sim.execute(Create(0x1A2, 0x1234))
    with only_live_dump(sim) as dump:
        assert dump.header.bugcheck_parameters == (0x1234, sim.driver_info().collection_handle, 0, 0)
    sim.execute(Wait(60))
    sim.execute(Create(0x1A2, 0x99, exclude_dmf_data=1))
    with only_live_dump(sim) as dump:
        assert dump.header.bugcheck_parameters == (0x99, 0, 0, 0)


def test_f05_report_type_cut_to_11_characters_on_bfac434_only(tmp_path: Path) -> None:
    """F05: WCHAR ReportType[12] with [11] = 0 keeps 11 characters; the doc promises 15."""
    assert machine(tmp_path).driver_info().report_type == "LkdhTestDri"
    assert machine(tmp_path, "contract").driver_info().report_type == "LkdhTestDriver"


def test_f06_one_report_per_minute_on_the_virtual_clock(tmp_path: Path) -> None:
    """F06: a second report within 60 s is STATUS_OBJECT_NAME_COLLISION and writes no file."""
    sim = machine(tmp_path)
    assert sim.execute(Create(1)).status == STATUS_SUCCESS
    assert sim.execute(Wait(59)).status == STATUS_SUCCESS
    assert sim.execute(Create(1)).status == STATUS_OBJECT_NAME_COLLISION
    assert len(sim.collect_dumps()) == 1
    sim.execute(Wait(1))
    assert sim.execute(Create(1)).status == STATUS_SUCCESS


def test_f08_budget_and_zero_size_abort_the_whole_dump(tmp_path: Path) -> None:
    """F08: size 0 is STATUS_INVALID_PARAMETER; no room is STATUS_BUFFER_TOO_SMALL; no file."""
    sim = machine(tmp_path)
    sim.execute(Alloc("empty", 8, b"e"))
    assert (
        sim.execute(Create(1, client_structures=(ClientStructure("empty", 0),))).status
        == STATUS_INVALID_PARAMETER
    )
    room = DUMP_BUFFER_SIZE - OS_FIXED_BYTES
    sim.execute(Alloc("big", room, b"b"))
    status = sim.execute(
        Create(1, exclude_dmf_data=1, client_structures=(ClientStructure("big", room),))
    ).status
    assert block_cost(room) > room
    assert status == STATUS_BUFFER_TOO_SMALL
    assert sim.collect_dumps() == []


def test_f13_remove_of_stored_buffer_bugchecks_on_bfac434(tmp_path: Path) -> None:
    """F13: the match callback writes through a NULL context: bugcheck 0xD1, crash dump written."""
    sim = machine(tmp_path)
    sim.execute(Alloc("a", 16, b"a"))
    sim.execute(Store("a", 16))
    result = sim.execute(Remove("a", 16))
    assert result.crash is not None and result.crash.bugcheck_code == 0xD1
    crash_dumps = [d for d in sim.collect_dumps() if d.kind == "crash"]
    assert len(crash_dumps) == 1
    with KernelDump(crash_dumps[0].path) as dump:
        assert dump.header.bugcheck_code == 0xD1
        assert not dump.header.is_live_dump


def test_f13_contract_remove_excludes_buffer(tmp_path: Path) -> None:
    """F12 on the contract profile: the removed buffer is not in the next dump."""
    sim = machine(tmp_path, "contract")
    address = sim.execute(Alloc("a", 16, b"a")).address
    sim.execute(Store("a", 16))
    assert sim.execute(Remove("a", 16)).crash is None
    sim.execute(Create(1))
    with only_live_dump(sim) as dump:
        assert dump.block_containing(address, 16) is None


@pytest.mark.parametrize(("profile", "crashes"), [("dmf-bfac434", True), ("contract", False)])
def test_f14_store_at_dispatch_under_verifier(tmp_path: Path, profile: str, crashes: bool) -> None:
    """F14/F28: the wait lock in paged code bugchecks at DISPATCH_LEVEL under Verifier (bfac434)."""
    sim = machine(tmp_path, profile)
    sim.execute(Alloc("a", 16, b"a"))
    result = sim.execute(Store("a", 16, irql=Irql.DISPATCH_LEVEL))
    assert (result.crash is not None) is crashes


def test_f14_without_verifier_dispatch_store_goes_through(tmp_path: Path) -> None:
    """F14: without Verifier the outcome is intermittent; the simulator lets the call succeed."""
    sim = machine(tmp_path, verifier=False)
    sim.execute(Alloc("a", 16, b"a"))
    assert sim.execute(Store("a", 16, irql=Irql.DISPATCH_LEVEL)).status == STATUS_SUCCESS


def test_f16_f32_framework_data_is_stored_first_and_p2_is_a_handle(tmp_path: Path) -> None:
    """F16/F32: the DMF_MODULE_COLLECTION is the first ring entry; P2 is a KMDF handle at which no
    block starts, and the collection block's first 8 bytes equal P2 (its first field)."""
    sim = machine(tmp_path)
    p2 = sim.driver_info().collection_handle
    sim.execute(Create(1))
    with only_live_dump(sim) as dump:
        assert dump.header.bugcheck_parameters[1] == p2
        first = dump.data_blocks[0]
        assert first.size == 0x68
        assert int.from_bytes(dump.block_bytes(first)[:8], "little") == p2
        assert all(block.address != p2 for block in dump.data_blocks)
        assert dump.block_containing(p2) is None
        assert len(dump.data_blocks) == len(sim.framework.blocks)


@pytest.mark.parametrize(
    ("profile", "p2_is_collection", "blocks"), [("dmf-bfac434", True, 0), ("contract", False, 0)]
)
def test_f17_exclude_dmf_data_two(tmp_path: Path, profile: str, p2_is_collection: bool, blocks: int) -> None:
    """F17: ExcludeDmfData = 2 gives P2 = collection but no DMF data on bfac434; contract: P2 = 0."""
    sim = machine(tmp_path, profile)
    sim.execute(Create(1, 9, exclude_dmf_data=2))
    with only_live_dump(sim) as dump:
        assert (dump.header.bugcheck_parameters[1] == sim.driver_info().collection_handle) is p2_is_collection
        assert len(dump.data_blocks) == blocks


def test_f18_store_collection_sets_p2(tmp_path: Path) -> None:
    """F18: the recorded value is what Create puts in P2."""
    sim = machine(tmp_path)
    sim.execute(StoreCollection(0xFFFF_B000_1234_5678))
    sim.execute(Create(1, 2))
    with only_live_dump(sim) as dump:
        assert dump.header.bugcheck_parameters[:2] == (2, 0xFFFF_B000_1234_5678)


def test_f07_secondary_data_is_a_blob_under_the_configured_guid(tmp_path: Path) -> None:
    """F07: the secondary buffer is appended as a DumpBlob tagged with GuidSecondaryData."""
    sim = machine(tmp_path)
    sim.execute(Alloc("s", 100, b"sec"))
    sim.execute(Create(1, exclude_dmf_data=1, secondary_data=SecondaryData("s", 100)))
    with only_live_dump(sim) as dump:
        blobs = dump.blobs_with_guid(sim.driver_info().secondary_data_guid)
        assert len(blobs) == 1
        assert dump.blob_bytes(blobs[0]) == (b"sec" * 34)[:100]


def test_crash_reboots_and_moves_allocations(tmp_path: Path) -> None:
    """A bugcheck reboots the machine: stored buffers are gone, new allocations land elsewhere."""
    sim = machine(tmp_path)
    before = sim.execute(Alloc("a", 16, b"a")).address
    sim.execute(Store("a", 16))
    sim.execute(Create(1, irql=Irql.DISPATCH_LEVEL))  # F29: PASSIVE only -> Verifier bugcheck
    assert sim.boot_number == 2
    assert sim.execute(Store("a", 16)).status != STATUS_SUCCESS  # the driver forgot the name
    after = sim.execute(Alloc("a", 16, b"a")).address
    assert after != before
    assert all(item.address != before for item in sim.module.ring.valid_items())


def test_a_page_fault_names_the_range_nothing_covers() -> None:
    memory = KernelMemory(boot_number=1)
    address = memory.allocate(0x20)
    with pytest.raises(PageFault) as fault:
        memory.read(address + 0x18, 0x10)  # runs 8 bytes past the allocation
    assert (fault.value.address, fault.value.size) == (address + 0x18, 0x10)
    assert str(fault.value) == f"no allocation covers 0x{address + 0x18:016X}+0x10"
    assert is_kernel_address(KERNEL_SPACE_START) and not is_kernel_address(KERNEL_SPACE_START - 1)


def test_an_image_holds_the_addresses_from_its_base_to_one_before_its_end() -> None:
    base, end = TEST_DRIVER.base, TEST_DRIVER.base + TEST_DRIVER.size
    assert [TEST_DRIVER.contains(a) for a in (base - 1, base, end - 1, end)] == [False, True, True, False]


def test_a_sim_target_config_becomes_these_settings() -> None:
    """`kind: sim` documents (harness/target/sim/config.py): every field reaches SimSettings and the
    module config, and --sim-profile overrides the file's profile."""
    config = SimConfig(
        kind="sim",
        profile="contract",
        verifier=False,
        wer_allows_dumps=False,
        report_type="MyDriver",
        include_dmf_data_in_bugcheck_dump=True,
        seed=7,
    )
    settings = config.settings()
    assert (settings.profile, settings.verifier, settings.wer_allows_dumps, settings.seed) == (
        "contract",
        False,
        False,
        7,
    )
    assert (settings.module.report_type, settings.module.include_dmf_data_in_bugcheck_dump) == (
        "MyDriver",
        True,
    )
    assert settings.module.secondary_data_guid == SimSettings().module.secondary_data_guid  # the rest stays
    assert config.settings("dmf-bfac434").profile == "dmf-bfac434"
    defaults = SimConfig(kind="sim").settings()
    assert (defaults.profile, defaults.verifier, defaults.wer_allows_dumps, defaults.seed) == (
        "dmf-bfac434",
        True,
        True,
        1,
    )
    assert (defaults.module.report_type, defaults.module.include_dmf_data_in_bugcheck_dump) == (
        "LkdhTestDriver",
        False,
    )


def test_driver_info_facts_name_profile_verifier_and_boot(tmp_path: Path) -> None:
    """What the run record shows about the simulated machine (its `target_facts`)."""
    sim = machine(tmp_path)
    assert sim.driver_info().facts == {"profile": "dmf-bfac434", "verifier": "on", "boot": "1"}
    quiet = machine(tmp_path / "quiet", "contract", verifier=False)
    assert quiet.driver_info().facts == {"profile": "contract", "verifier": "off", "boot": "1"}


def test_f33_remove_of_a_stored_buffer_on_bfac434_is_the_null_context_write(tmp_path: Path) -> None:
    """F33: DRIVER_IRQL_NOT_LESS_OR_EQUAL (0xD1): P1 = 0x10 (NULL + DmfDataSize's offset), P2 =
    DISPATCH_LEVEL, P3 = 1 (a write), P4 = the instruction in LiveKernelDump_InvalidateDataBuffer."""
    sim = machine(tmp_path)
    sim.execute(Alloc("a", 16, b"a"))
    sim.execute(Store("a", 16))
    crash = sim.execute(Remove("a", 16)).crash
    assert crash is not None
    instruction = TEST_DRIVER.routine("LiveKernelDump_InvalidateDataBuffer")
    assert (crash.bugcheck_code, crash.parameters) == (0xD1, (0x10, 2, 1, instruction))
    assert crash.reason == (
        "F33: DataBufferSourceRemove's match callback wrote DmfDataSize through a NULL context "
        "(NULL+0x10) at DISPATCH_LEVEL under the RingBuffer's spin lock"
    )


def test_f12_remove_on_the_contract_gives_the_bytes_back_to_dmf_data_size(tmp_path: Path) -> None:
    """F11/F12: each Store adds size + 8 to DmfDataSize and each matching Remove takes it back."""
    sim = machine(tmp_path, "contract")
    sim.execute(Alloc("a", 16, b"a"))
    sim.execute(Alloc("b", 24, b"b"))
    before = sim.execute(QueryDmfDataSize()).value
    sim.execute(Store("a", 16))
    sim.execute(Store("b", 24))
    assert sim.execute(QueryDmfDataSize()).value == before + 16 + 8 + 24 + 8
    sim.execute(Remove("a", 16))
    assert sim.execute(QueryDmfDataSize()).value == before + 24 + 8


def test_crash_dumps_are_numbered_like_windows_and_stop_at_the_faulting_instruction(tmp_path: Path) -> None:
    """A bugcheck writes Windows\\Minidump\\MMDDYY-NNNNN-01.dmp (not a live dump), numbered from 1 per
    machine, the thread stopped where the bugcheck says: P4 for 0xD1 (F33), P2 for 0x3B (F36)."""
    sim = machine(tmp_path)
    sim.execute(Alloc("a", 16, b"a"))
    sim.execute(Store("a", 16))
    first = sim.execute(Remove("a", 16)).crash
    assert first is not None and sim.crashes == [first]
    assert first.dump_path == sim.disk / "Windows" / "Minidump" / "010126-00001-01.dmp"
    with KernelDump(first.dump_path) as dump:
        assert not dump.header.is_live_dump
        assert (dump.header.bugcheck_code, dump.header.bugcheck_parameters) == (0xD1, first.parameters)
        assert dump.debugger is not None and dump.debugger.registers["Rip"] == first.parameters[3]
    sim.execute(Alloc("small", 8, b"s"))
    second = sim.execute(
        IoctlCreate(1, exclude_dmf_data=1, client_structures=(ClientStructure("small", 8),),
                    client_structure_count_override=2)
    ).crash  # fmt: skip
    assert second is not None and second.bugcheck_code == 0x3B
    assert second.dump_path == sim.disk / "Windows" / "Minidump" / "010126-00002-01.dmp"
    with KernelDump(second.dump_path) as dump:
        assert dump.debugger is not None and dump.debugger.registers["Rip"] == second.parameters[1]


def test_the_one_report_a_minute_rule_outlives_a_reboot(tmp_path: Path) -> None:
    """F06 is the OS service's rule on the machine's clock: a reboot takes 45 virtual seconds and
    does not reset it, so a report 45 s after the last one still collides; 15 s more and it goes."""
    sim = machine(tmp_path)
    assert sim.execute(Create(1)).status == STATUS_SUCCESS
    sim.execute(Reboot())
    assert sim.execute(Create(2)).status == STATUS_OBJECT_NAME_COLLISION
    sim.execute(Wait(15))
    assert sim.execute(Create(3)).status == STATUS_SUCCESS
    assert sim.driver_info().facts["boot"] == "2"


def test_no_interface_is_reported_with_its_reasons(tmp_path: Path) -> None:
    pre_rs3 = machine(tmp_path, module=ModuleConfig(target_build=16298))
    result = pre_rs3.execute(IoctlCreate(1))
    assert result.detail == (
        "the module registered no device interface (GuidDeviceInterface is all zeros, F23, "
        "or a pre-RS3 build, F42)"
    )
    at_rs3 = machine(tmp_path / "rs3", module=ModuleConfig(target_build=16299))
    assert at_rs3.execute(IoctlCreate(1)).status == STATUS_SUCCESS


def test_block_cost_is_a_descriptor_and_the_size_rounded_up_to_8() -> None:
    """F08: 16 bytes of descriptor plus the data rounded up to a multiple of 8."""
    assert [block_cost(size) for size in (1, 7, 8, 9, 16, 17)] == [24, 24, 24, 32, 32, 40]


def test_the_dump_buffer_takes_blocks_until_exactly_full(tmp_path: Path) -> None:
    """F08: blocks are charged to the 256 KiB buffer one after another; one that fits exactly is taken,
    one byte more is BUFFER_TOO_SMALL."""
    memory = KernelMemory(boot_number=1)
    room = DUMP_BUFFER_SIZE - OS_FIXED_BYTES
    first = memory.allocate(0x100)
    rest = memory.allocate(room - block_cost(0x100) - 16)
    service = LiveDumpService(tmp_path, memory, clock=lambda: 0.0)
    report = service.create_report("LkdhTestDri", 0x1A2, 0, 0, 0, 0)
    assert report is not None
    assert service.insert_triage_data_block(report, first, 0x100) == STATUS_SUCCESS
    assert report.used == OS_FIXED_BYTES + block_cost(0x100)
    assert (
        service.insert_triage_data_block(report, rest, room - block_cost(0x100) - 16 + 8)
        == STATUS_BUFFER_TOO_SMALL
    )
    assert service.insert_triage_data_block(report, rest, room - block_cost(0x100) - 16) == STATUS_SUCCESS
    assert report.used == DUMP_BUFFER_SIZE


def test_a_bugcheck_reads_like_the_blue_screen_line() -> None:
    stop = Bugcheck(0xD1, (0x10, 2, 1, 0xFF), "why")
    assert str(stop) == "bugcheck 0xD1 (0x10, 0x2, 0x1, 0xFF): why"
    violation = VerifierViolation(0xC4, (0x10D, 1, 2, 3), "because", ((0x1000, b"ab"),))
    again = Bugcheck.from_violation(violation)
    assert (again.code, again.parameters, again.reason, again.evidence) == (
        0xC4,
        (0x10D, 1, 2, 3),
        "because",
        ((0x1000, b"ab"),),
    )


def test_unknown_buffer_names_are_named_in_the_answer(tmp_path: Path) -> None:
    sim = machine(tmp_path)
    secondary = sim.execute(Create(1, secondary_data=SecondaryData("nowhere", 8)))
    structure = sim.execute(IoctlCreate(1, client_structures=(ClientStructure("elsewhere", 8),)))
    assert secondary.detail == "the driver has no buffer named 'nowhere' on this boot"
    assert structure.detail == "the driver has no buffer named 'elsewhere' on this boot"

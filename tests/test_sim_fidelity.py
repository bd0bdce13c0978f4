"""The simulator agrees with DMF's source at bfac434 line by line: facts F32-F45 of DMF_FACTS.md,
one test (or more) per fact, each failing if the behaviour the fact replaced comes back."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from harness.dump import KernelDump
from harness.dump.dmf_layout import wdf_object_address
from harness.target.base import TargetError
from harness.target.irql import Irql
from harness.target.lkd_ioctl import INPUT_FORMAT
from harness.target.ops import (
    Alloc,
    ClientStructure,
    Create,
    Free,
    IoctlCreate,
    QueryDmfDataSize,
    Remove,
    Store,
    StoreCollection,
    Wait,
)
from harness.target.sim import SimSettings, SimulatedMachine
from harness.target.sim.driver_image import NT_DEVICE_IO_CONTROL_FILE, NTOSKRNL, TEST_DRIVER
from harness.target.sim.framework import FX_MEMORY_OBJECT_HEADER
from harness.target.sim.livekerneldump import Bugcheck, ModuleConfig, NullModuleHandle
from harness.target.sim.lkmdtel import DUMP_BUFFER_SIZE, OS_FIXED_BYTES
from harness.target.sim.module_tree import dmf_data_entries, lkdh_driver_modules
from harness.target.sim.ring import RING_CAPACITY
from harness.target.status import (
    STATUS_ACCESS_DENIED,
    STATUS_BUFFER_TOO_SMALL,
    STATUS_INVALID_DEVICE_STATE,
    STATUS_INVALID_PARAMETER,
    STATUS_NOT_SUPPORTED,
    STATUS_OBJECT_NAME_NOT_FOUND,
    STATUS_SUCCESS,
    STATUS_UNSUCCESSFUL,
)

ZERO_GUID_CONFIG = ModuleConfig(device_interface_guid=__import__("uuid").UUID(int=0))


def machine(tmp_path: Path, profile: str = "dmf-bfac434", **settings: object) -> SimulatedMachine:
    sim = SimulatedMachine(tmp_path / profile, SimSettings(profile=profile, **settings))  # type: ignore[arg-type]
    sim.prepare()
    return sim


def dumps(sim: SimulatedMachine, kind: str) -> list[Path]:
    return [d.path for d in sim.collect_dumps() if d.kind == kind]


# -- F32 / F35: the DMF data of the test driver ------------------------------------------------


def test_f32_p2_is_a_kmdf_handle_that_decodes_to_the_collection_object(tmp_path: Path) -> None:
    """F32: P2 is the WDFMEMORY handle (pointer XOR ~7), not the block's address: it lies in the
    user half, decodes to the FxMemory object just below the collection, and equals its first field."""
    sim = machine(tmp_path)
    p2 = sim.driver_info().collection_handle
    assert p2 < 0x0000_8000_0000_0000 and p2 != sim.framework.collection_address
    assert wdf_object_address(p2) == sim.framework.collection_address - FX_MEMORY_OBJECT_HEADER
    assert int.from_bytes(sim.memory.read(sim.framework.collection_address, 8), "little") == p2


def test_f35_thirty_four_entries_children_first_with_real_sizes(tmp_path: Path) -> None:
    """F35: collection (0x68), top-level handles (3 x 8), then per module children first: object,
    config, instance name, context; 8 modules, 34 entries, 222 slots left."""
    sim = machine(tmp_path)
    blocks = sim.framework.blocks
    assert len(blocks) == 34 and RING_CAPACITY - len(blocks) == 222
    assert [(b.what, b.size) for b in blocks[:2]] == [
        ("DMF_MODULE_COLLECTION", 0x68),
        ("top-level module handles", 24),
    ]
    objects = [b.what.removesuffix(" object") for b in blocks if b.what.endswith(" object")]
    assert objects == [
        "DataBufferSource",
        "IoctlHandler",
        "BufferPoolProducer",
        "BufferPoolConsumer",
        "LiveKernelDumpBufferQueue",
        "LiveKernelDump",
        "LkdhControl",
        "Bridge",
    ]
    sizes = {b.what: b.size for b in blocks}
    assert sizes["DataBufferSource config"] == 0xC and sizes["DataBufferSource context"] == 0x40
    assert sizes["LiveKernelDump context"] == 0x38 and sizes["LiveKernelDump config"] == 0x48
    assert sizes["LkdhControl name"] == len("LkdhControl") + 1
    assert sim.memory.read(blocks[8].address, blocks[8].size) == b"IoctlHandler\0"  # names as DMF forms them
    handles = struct.unpack("<3Q", sim.memory.read(blocks[1].address, 24))
    assert handles == tuple(
        sim.framework.module_objects[n] for n in ("LiveKernelDump", "LkdhControl", "Bridge")
    )


def test_f35_collection_block_is_evicted_after_exactly_222_client_stores(tmp_path: Path) -> None:
    """F35/F10: 222 client stores fill the ring; the 223rd evicts the collection block first."""
    sim = machine(tmp_path)
    collection = sim.framework.collection_address
    sim.execute(Alloc("a", 8, b"a"))
    for _ in range(222):
        sim.execute(Store("a", 8))
    assert sim.execute(Create(1)).status == STATUS_SUCCESS
    with KernelDump(dumps(sim, "live")[0]) as dump:
        assert dump.block_containing(collection, 0x68) is not None
    sim.execute(Store("a", 8))
    sim.execute(Wait(61))
    sim.execute(Create(2))
    with KernelDump(dumps(sim, "live")[0]) as dump:
        assert dump.block_containing(collection, 0x68) is None
        assert len(dump.data_blocks) == 256


def test_f34_f35_dmf_data_size_starts_at_the_framework_entries_and_wraps(tmp_path: Path) -> None:
    """F34: the counter starts with size + 8 (not + 16) per framework entry, and wraps as a ULONG."""
    sim = machine(tmp_path)
    start = sim.execute(QueryDmfDataSize()).value
    entries = dmf_data_entries(lkdh_driver_modules(19041))
    assert start == sum(e.size + 8 for e in entries) < sum(e.size + 16 for e in entries)
    sim.execute(Alloc("a", 8, b"a"))
    sim.execute(Store("a", 0xFFFF_FFF0))  # +0xFFFFFFF8 wraps to start - 8
    assert sim.execute(QueryDmfDataSize()).value == (start + 0xFFFF_FFF8) & 0xFFFF_FFFF == start - 8


# -- F33: the Remove crash -----------------------------------------------------------------------


def test_f33_remove_crash_parameters_and_the_driver_in_every_dump(tmp_path: Path) -> None:
    """F33: 0xD1 with P1 = 0x10 (DmfDataSize's offset), P2 = 2, P3 = 1 (write), P4 in the driver;
    every simulated dump lists LkdhTestDriver.sys (the INF's file) at a range containing P4."""
    sim = machine(tmp_path)
    sim.execute(Create(1))
    sim.execute(Alloc("a", 16, b"a"))
    sim.execute(Store("a", 16))
    crash = sim.execute(Remove("a", 16)).crash
    assert crash is not None and crash.bugcheck_code == 0xD1
    assert crash.parameters[:3] == (0x10, 2, 1)
    assert TEST_DRIVER.contains(crash.parameters[3])
    for path in dumps(sim, "live") + dumps(sim, "crash"):
        with KernelDump(path) as dump:
            (driver,) = [d for d in dump.drivers if d.file_name == "LkdhTestDriver.sys"]
            assert driver.base <= crash.parameters[3] < driver.base + driver.size


# -- F38 / F18 / F39: IRQL and the verifiers ---------------------------------------------------


def test_f38_store_at_apc_under_verifier_is_apc_index_mismatch_after_the_store(tmp_path: Path) -> None:
    """F38: KMDF's verifier refuses the acquire at APC_LEVEL, DMF releases anyway, and the system
    call returns with APC_INDEX_MISMATCH (0x1: NtDeviceIoControlFile, 0, CombinedApcDisable 1, 0)."""
    sim = machine(tmp_path)
    sim.execute(Alloc("a", 16, b"a"))
    result = sim.execute(Store("a", 16, irql=Irql.APC_LEVEL))
    assert result.crash is not None
    assert (result.crash.bugcheck_code, result.crash.parameters) == (
        0x1,
        (NT_DEVICE_IO_CONTROL_FILE, 0, 1, 0),
    )
    assert NTOSKRNL.contains(result.crash.parameters[0])


@pytest.mark.parametrize(
    ("profile", "verifier", "crashes"), [("contract", True, False), ("dmf-bfac434", False, False)]
)
def test_f38_store_at_apc_is_fine_without_kmdf_verifier_or_on_contract(
    tmp_path: Path, profile: str, verifier: bool, crashes: bool
) -> None:
    """F38/F28: without KMDF's verifier the wait lock works at APC_LEVEL; the contract keeps the
    documented <= DISPATCH_LEVEL."""
    sim = machine(tmp_path, profile, verifier=verifier)
    sim.execute(Alloc("a", 16, b"a"))
    assert (sim.execute(Store("a", 16, irql=Irql.APC_LEVEL)).crash is not None) is crashes


@pytest.mark.parametrize("profile", ["dmf-bfac434", "contract"])
def test_f18_store_collection_takes_the_lock(tmp_path: Path, profile: str) -> None:
    """F18: StoreDmfCollectionAsBugcheckParameter records P2 under the wait lock (PASSIVE only, as
    documented): at APC under Verifier the value is set and then the machine stops with 0x1; at
    DISPATCH its own paged code faults first (0xD1, P3 = 8)."""
    sim = machine(tmp_path, profile)
    crash = sim.execute(StoreCollection(7, irql=Irql.APC_LEVEL)).crash
    assert crash is not None and crash.bugcheck_code == 0x1
    crash = sim.execute(StoreCollection(7, irql=Irql.DISPATCH_LEVEL)).crash
    routine = TEST_DRIVER.routine("DMF_LiveKernelDump_StoreDmfCollectionAsBugcheckParameter", paged=True)
    assert crash is not None and crash.parameters == (routine, 2, 8, routine)


def test_f39_create_takes_the_lock_only_with_dmf_data(tmp_path: Path) -> None:
    """F39: at APC_LEVEL under Verifier, Create with ExcludeDmfData = TRUE takes no lock (no stop);
    with FALSE the dump is written and the system call then returns with 0x1."""
    sim = machine(tmp_path)
    assert sim.execute(Create(1, exclude_dmf_data=1, irql=Irql.APC_LEVEL)).crash is None
    sim.execute(Wait(61))
    result = sim.execute(Create(2, irql=Irql.APC_LEVEL))
    assert result.crash is not None and result.crash.bugcheck_code == 0x1
    assert len(dumps(sim, "live")) == 2


# -- F36 / F37 / F42 / F43: the IOCTL ----------------------------------------------------------


def _two_structures_one_bad(first: str, length: int, bugcheck: int) -> IoctlCreate:
    """An array laid out for one structure but claiming two: element 1 is past the caller's array."""
    return IoctlCreate(bugcheck, exclude_dmf_data=1, client_structures=(ClientStructure(first, length),),
                       client_structure_count_override=2)  # fmt: skip


def test_f36_the_bad_array_element_faults_only_when_reached(tmp_path: Path) -> None:
    """F36: the array is read element by element after the DMF inserts: element 0 is inserted,
    element 1's unmapped pointer is a bugcheck 0x3B (not an up-front refusal)."""
    sim = machine(tmp_path)
    sim.execute(Alloc("small", 8, b"s"))
    crash = sim.execute(_two_structures_one_bad("small", 8, 0x1B5)).crash
    assert crash is not None and crash.bugcheck_code == 0x3B


def test_f36_a_status_before_the_bad_element_is_returned(tmp_path: Path) -> None:
    """F36: BUFFER_TOO_SMALL on element 0, or WER refusing the report, is returned before the
    bad element is read: no bugcheck."""
    sim = machine(tmp_path)
    room = DUMP_BUFFER_SIZE - OS_FIXED_BYTES
    sim.execute(Alloc("big", room, b"b"))
    result = sim.execute(_two_structures_one_bad("big", room, 0x1B6))
    assert result.crash is None and result.status == STATUS_BUFFER_TOO_SMALL
    refused = machine(tmp_path / "wer", wer_allows_dumps=False)
    refused.execute(Alloc("small", 8, b"s"))
    result = refused.execute(_two_structures_one_bad("small", 8, 0x1B7))
    assert result.crash is None and result.status == STATUS_UNSUCCESSFUL


def test_f36_bad_secondary_pointer_is_the_same_on_both_paths(tmp_path: Path) -> None:
    """F36: the secondary buffer is read by lkmdtel at submit with its one range rule: an unmapped
    pointer is STATUS_INVALID_PARAMETER from the IOCTL and from Create alike."""
    sim = machine(tmp_path)
    wild = 0x0000_7FF0_0000_0000
    ioctl = sim.execute(
        IoctlCreate(1, exclude_dmf_data=1, secondary_size_override=8, secondary_address_override=wild)
    )
    from harness.target.ops import SecondaryData

    direct = sim.execute(Create(2, exclude_dmf_data=1, secondary_data=SecondaryData(wild, 8)))
    assert (ioctl.crash, ioctl.status) == (None, STATUS_INVALID_PARAMETER)
    assert (direct.crash, direct.status) == (None, STATUS_INVALID_PARAMETER)


def test_f37_access_denied_before_the_size_check(tmp_path: Path) -> None:
    """F37: a standard user's 3-byte input is ACCESS_DENIED, not BUFFER_TOO_SMALL."""
    sim = machine(tmp_path)
    assert sim.execute(IoctlCreate(raw=b"\x01\x02\x03", elevated=False)).status == STATUS_ACCESS_DENIED
    assert sim.execute(IoctlCreate(raw=b"\x01\x02\x03")).status == STATUS_BUFFER_TOO_SMALL


def test_f37_served_on_the_control_handle_even_without_an_interface(tmp_path: Path) -> None:
    """F37/F23: with GuidDeviceInterface all zeros there is no module interface, but the IOCTL is
    still served on the control device's handle."""
    sim = machine(tmp_path, module=ZERO_GUID_CONFIG)
    assert sim.execute(IoctlCreate(1)).status == STATUS_OBJECT_NAME_NOT_FOUND
    assert sim.execute(IoctlCreate(1, device="control-interface")).status == STATUS_SUCCESS
    assert len(dumps(sim, "live")) == 1


def test_f42_pre_rs3_has_no_ioctl_and_no_ioctl_children(tmp_path: Path) -> None:
    """F42: before RS3 there is no IoctlHandler (nor BufferQueue) child: no interface, and the code
    on the control handle reaches no module (STATUS_NOT_SUPPORTED from DMF's container)."""
    sim = machine(tmp_path, module=ModuleConfig(target_build=15063))
    assert sim.execute(IoctlCreate(1)).status == STATUS_OBJECT_NAME_NOT_FOUND
    assert sim.execute(IoctlCreate(1, device="control-interface")).status == STATUS_NOT_SUPPORTED
    names = [b.what for b in sim.framework.blocks if b.what.endswith(" object")]
    assert names == [
        "DataBufferSource object",
        "LiveKernelDump object",
        "LkdhControl object",
        "Bridge object",
    ]


def test_f42_null_module_handle(tmp_path: Path) -> None:
    """F42/F04: with a NULL DMFMODULE, Add/Remove/Create are no-ops, while StoreDmfCollection and
    DmfDataSizeGet reach DMF_CONTEXT_GET(NULL): WDF_VIOLATION 0x10D, P1 = 4 (required parameter NULL)."""
    null = NullModuleHandle(TEST_DRIVER)
    assert null.data_buffer_source_add(0, 8, Irql.PASSIVE_LEVEL) == STATUS_SUCCESS
    assert null.create(1, 0, 0, [], None, Irql.PASSIVE_LEVEL) == STATUS_SUCCESS
    for call in (lambda: null.store_collection(5, Irql.PASSIVE_LEVEL), null.dmf_data_size_get):
        with pytest.raises(Bugcheck) as stop:
            call()
        assert stop.value.code == 0x10D and stop.value.parameters[:2] == (4, 0)
        assert TEST_DRIVER.contains(stop.value.parameters[2])
    sim = machine(tmp_path, live_kernel_dump_feature=False)
    assert sim.execute(StoreCollection(5)).status == STATUS_INVALID_DEVICE_STATE  # Control.c's guard


def test_f43_checked_dmf_asserts_on_an_oversized_input(tmp_path: Path) -> None:
    """F43: a release DMF accepts 41 bytes (F25); a checked one's DmfAssert(size == 37) breaks."""
    raw = struct.pack(INPUT_FORMAT, 0x1B2, 5, 1, 0, 0, 0, 0) + b"\xff" * 4
    assert machine(tmp_path / "release").execute(IoctlCreate(raw=raw)).status == STATUS_SUCCESS
    crash = machine(tmp_path / "checked", checked_dmf=True).execute(IoctlCreate(raw=raw)).crash
    assert crash is not None and crash.parameters[0] == 0x80000003


# -- F40 / F41 / F44 / F45 ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "second"), [("dmf-bfac434", STATUS_INVALID_PARAMETER), ("contract", STATUS_SUCCESS)]
)
def test_f40_a_rejected_buffer_poisons_every_later_dump(tmp_path: Path, profile: str, second: int) -> None:
    """F40: an unaligned stored buffer (lkmdtel refuses it) fails this Create and, on bfac434, every
    later one with DMF data, leaking one queue buffer each time; eviction ends it."""
    sim = machine(tmp_path, profile)
    sim.execute(Alloc("a", 32, b"a"))
    sim.execute(Store("a", 8, offset=4))
    assert sim.execute(Create(1)).status == STATUS_INVALID_PARAMETER
    sim.execute(Wait(61))
    assert sim.execute(Create(2)).status == second
    assert sim.execute(Create(3, exclude_dmf_data=1)).status in (STATUS_SUCCESS, 0xC0000035)
    if profile == "dmf-bfac434":
        assert sim.module.leaked_queue_buffers == 2
        for _ in range(RING_CAPACITY):
            sim.execute(Store("a", 8))
        sim.execute(Wait(61))
        assert sim.execute(Create(4)).status == STATUS_SUCCESS


def test_f41_crash_dump_child_only_on_19h1_and_once_per_image(tmp_path: Path) -> None:
    """F41/F22: on a 17763 target the CrashDump child is not created (no ring entries in the crash
    dump, no CrashDump in the tree); on 19H1+ it is, and a second device instance fails to start."""
    old = machine(
        tmp_path / "rs5", module=ModuleConfig(include_dmf_data_in_bugcheck_dump=True, target_build=17763)
    )
    address = old.execute(Alloc("a", 24, b"kept")).address
    old.execute(Store("a", 24))
    old.execute(Remove("a", 24))  # F33 crashes the machine
    with KernelDump(dumps(old, "crash")[0]) as dump:
        assert dump.block_containing(address, 24) is None
    assert not any("CrashDump" in b.what for b in old.framework.blocks)
    new = machine(tmp_path / "19h1", module=ModuleConfig(include_dmf_data_in_bugcheck_dump=True))
    assert any(b.what == "CrashDump object" for b in new.framework.blocks)
    with pytest.raises(TargetError, match="F41"):
        machine(
            tmp_path / "two", module=ModuleConfig(include_dmf_data_in_bugcheck_dump=True), device_instances=2
        )


def test_f44_new_wdk_old_ntddi_target_has_no_live_dumps(tmp_path: Path) -> None:
    """F44: the code is compiled in by NTDDI_VERSION, not by the WDK that linked lkmdtel: a driver
    targeting 15063 succeeds without a dump, silently."""
    sim = machine(tmp_path, module=ModuleConfig(target_build=15063))
    assert sim.execute(Create(0x1A2)).status == STATUS_SUCCESS
    assert dumps(sim, "live") == []


@pytest.mark.parametrize(("verifier", "copied"), [(False, True), (True, False)])
def test_f45_freed_buffer_normal_pool_stale_bytes_special_pool_unmapped(
    tmp_path: Path, verifier: bool, copied: bool
) -> None:
    """F45: stored then freed: normal pool copies the stale bytes and succeeds; Verifier's special
    pool has unmapped the page, so lkmdtel refuses the insert."""
    sim = machine(tmp_path, verifier=verifier)
    address = sim.execute(Alloc("gone", 16, b"stale")).address
    sim.execute(Store("gone", 16))
    sim.execute(Free("gone"))
    status = sim.execute(Create(1)).status
    assert (status == STATUS_SUCCESS) is copied
    if copied:
        with KernelDump(dumps(sim, "live")[0]) as dump:
            assert dump.read_virtual(address, 16) == (b"stale" * 4)[:16]
    else:
        assert status == STATUS_INVALID_PARAMETER


@pytest.mark.parametrize(
    ("routine", "call"),
    [
        (
            "DMF_LiveKernelDump_StoreDmfCollectionAsBugcheckParameter",
            lambda n: n.store_collection(5, Irql.PASSIVE_LEVEL),
        ),
        ("DMF_LiveKernelDump_DmfDataSizeGet", lambda n: n.dmf_data_size_get()),
    ],
    ids=["store-collection", "dmf-data-size-get"],
)
def test_f42_null_module_bugcheck_parameters_exactly(routine: str, call) -> None:
    """F42: WDF_VIOLATION (0x10D, 4, 0, caller, 0): P3 is the return address inside the routine that
    called DMF_CONTEXT_GET, which LKD.c places in the PAGE section (code_seg), 0x1C into it [INF];
    the reason names the routine, so a crash report says which DMF call had no module."""
    with pytest.raises(Bugcheck) as stop:
        call(NullModuleHandle(TEST_DRIVER))
    caller = TEST_DRIVER.routine(routine, paged=True) + 0x1C
    assert (stop.value.code, stop.value.parameters) == (0x10D, (0x4, 0, caller, 0))
    assert TEST_DRIVER.base + 0x9000 <= caller < TEST_DRIVER.base + 0x10000  # in PAGE, not .text
    assert stop.value.reason == f"F42: {routine} passed a NULL DMFMODULE to DMF_CONTEXT_GET"


def test_f36_the_faulting_read_is_reported_with_its_instruction(tmp_path: Path) -> None:
    """F36: SYSTEM_SERVICE_EXCEPTION (0x3B): P1 = STATUS_ACCESS_VIOLATION, P2 = the faulting
    instruction in LiveKernelDump_LiveKernelMemoryDumpCreate (PAGE section, +0x9A), P3 = the
    context record, P4 = 0; the crash dump names the same."""
    sim = machine(tmp_path)
    sim.execute(Alloc("small", 8, b"s"))
    crash = sim.execute(_two_structures_one_bad("small", 8, 0x1B5)).crash
    assert crash is not None
    instruction = TEST_DRIVER.routine("LiveKernelDump_LiveKernelMemoryDumpCreate", paged=True) + 0x9A
    assert (crash.bugcheck_code, crash.parameters) == (
        0x3B,
        (0xC0000005, instruction, TEST_DRIVER.base + 0x9F00, 0),
    )


def test_f36_the_crash_says_which_element_faulted(tmp_path: Path) -> None:
    sim = machine(tmp_path)
    sim.execute(Alloc("small", 8, b"s"))
    crash = sim.execute(_two_structures_one_bad("small", 8, 0x1B5)).crash
    assert crash is not None
    assert crash.reason.startswith(
        "F27/F36: Create read client structure 1 at the caller's unprobed pointer 0x"
    )


def test_f36_the_reason_names_the_faulting_elements_address(tmp_path: Path) -> None:
    """F36: element n is read at ArrayOfClientStructures + n * 12; the crash's reason names that
    pointer (element 1, just past a one-element array the caller laid out in its own memory)."""
    sim = machine(tmp_path)
    small = sim.execute(Alloc("small", 8, b"s")).address
    array = sim.execute(Alloc("array", 12, struct.pack("<QI", small, 8), pool="UserMode")).address
    crash = sim.execute(
        IoctlCreate(
            0x1B5,
            exclude_dmf_data=1,
            client_structure_count_override=2,
            client_structure_array_override=array,
        )
    ).crash
    assert crash is not None and crash.bugcheck_code == 0x3B
    assert crash.reason == (
        f"F27/F36: Create read client structure 1 at the caller's unprobed pointer 0x{array + 12:016X}"
    )


def test_f42_rs3_itself_has_the_ioctl(tmp_path: Path) -> None:
    """F42: the IOCTL code is compiled for NTDDI targets from RS3 (16299) on, RS3 included."""
    at_rs3 = machine(tmp_path / "rs3", module=ModuleConfig(target_build=16299))
    assert at_rs3.execute(IoctlCreate(1, device="control-interface")).status == STATUS_SUCCESS
    before = machine(tmp_path / "rs2", module=ModuleConfig(target_build=16298))
    assert before.execute(IoctlCreate(1, device="control-interface")).status == STATUS_NOT_SUPPORTED


def test_f43_the_checked_assert_is_a_breakpoint_exception_that_names_the_assertion(tmp_path: Path) -> None:
    """F43: DmfAssert in a checked DMF is a breakpoint: SYSTEM_SERVICE_EXCEPTION with
    STATUS_BREAKPOINT at the IOCTL's routine, and the reason quotes the failed assertion."""
    raw = struct.pack(INPUT_FORMAT, 0x1B2, 5, 1, 0, 0, 0, 0) + b"\xff" * 4
    crash = machine(tmp_path, checked_dmf=True).execute(IoctlCreate(raw=raw)).crash
    assert crash is not None
    instruction = TEST_DRIVER.routine("LiveKernelDump_LiveKernelMemoryDumpCreate", paged=True) + 0x9A
    assert (crash.bugcheck_code, crash.parameters) == (
        0x3B,
        (0x80000003, instruction, TEST_DRIVER.base + 0x9F00, 0),
    )
    assert crash.reason == "F43: DmfAssert(InputBufferSize == 37) failed"

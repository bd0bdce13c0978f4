"""The simulated machine reproduces DMF_FACTS.md: one test per fact not already proven in
test_sim_module.py / test_sim_ring.py / test_sim_fidelity*.py, each citing its id. The last test
checks that every fact F01-F45 is cited by some simulator test, so a new fact cannot go unmodelled
silently."""

from __future__ import annotations

import re
import struct
import uuid
from pathlib import Path

import pytest

from harness.dump import KernelDump
from harness.target.base import TargetError
from harness.target.irql import Irql
from harness.target.lkd_ioctl import INPUT_FORMAT, INPUT_SIZE, IOCTL_LIVEKERNELDUMP_CREATE
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
    UserBuffer,
    Wait,
)
from harness.target.sim import SimSettings, SimulatedMachine
from harness.target.sim.driver_image import TEST_DRIVER
from harness.target.sim.livekerneldump import ModuleConfig
from harness.target.sim.lkmdtel import SECONDARY_DATA_LIMIT
from harness.target.sim.verifier import LOCK_HELPER
from harness.target.status import (
    STATUS_ACCESS_DENIED,
    STATUS_ACCESS_VIOLATION,
    STATUS_BUFFER_TOO_SMALL,
    STATUS_INVALID_PARAMETER,
    STATUS_NOT_FOUND,
    STATUS_OBJECT_NAME_NOT_FOUND,
    STATUS_SUCCESS,
    STATUS_UNSUCCESSFUL,
)

TESTS = Path(__file__).parent


def machine(tmp_path: Path, profile: str = "dmf-bfac434", **settings: object) -> SimulatedMachine:
    sim = SimulatedMachine(tmp_path / profile, SimSettings(profile=profile, **settings))  # type: ignore[arg-type]
    sim.prepare()
    return sim


def live_dumps(sim: SimulatedMachine) -> list[Path]:
    return [d.path for d in sim.collect_dumps() if d.kind == "live"]


def only_live_dump(sim: SimulatedMachine) -> KernelDump:
    (path,) = live_dumps(sim)
    return KernelDump(path)


def crash_dump(sim: SimulatedMachine) -> KernelDump:
    (dump,) = [d for d in sim.collect_dumps() if d.kind == "crash"]
    return KernelDump(dump.path)


# -- How a dump is made ------------------------------------------------------------------------


def test_f03_null_array_or_buffer_with_a_count_is_invalid_parameter(tmp_path: Path) -> None:
    """F03: secondary size > 0 with a NULL buffer fails before anything is written."""
    sim = machine(tmp_path)
    result = sim.execute(Create(1, secondary_data=SecondaryData(0, 16)))
    assert result.status == STATUS_INVALID_PARAMETER
    assert live_dumps(sim) == []


def test_f04_driver_built_before_rs3_succeeds_without_a_dump(tmp_path: Path) -> None:
    """F04: without lkmdtel (a pre-RS3 build) Create returns success and nothing is written."""
    sim = machine(tmp_path, module=ModuleConfig(target_build=15063))
    assert sim.execute(Create(0x1A2, 1)).status == STATUS_SUCCESS
    assert live_dumps(sim) == []


def test_f07_secondary_data_is_read_at_submit_and_truncated_at_24_mb(tmp_path: Path) -> None:
    """F07: the blob holds what the buffer holds at submit time, and at most 24 MB of it."""
    sim = machine(tmp_path)
    size = SECONDARY_DATA_LIMIT + 4096
    sim.execute(Alloc("big", size, b"y"))
    assert sim.execute(Create(1, exclude_dmf_data=1, secondary_data=SecondaryData("big", size))).status == 0
    with only_live_dump(sim) as dump:
        (blob,) = dump.blobs_with_guid(sim.driver_info().secondary_data_guid)
        assert blob.size == SECONDARY_DATA_LIMIT


def test_f09_wer_policy_refusing_dumps_gives_unsuccessful_and_no_file(tmp_path: Path) -> None:
    """F09: WER policy "no dump" makes CreateReport return NULL, which Create reports as
    STATUS_UNSUCCESSFUL (F01); with dumps allowed the file lands in LiveKernelReports/<ReportType>."""
    refused = machine(tmp_path / "refused", wer_allows_dumps=False)
    assert refused.execute(Create(1)).status == STATUS_UNSUCCESSFUL
    assert live_dumps(refused) == []
    allowed = machine(tmp_path / "allowed")
    allowed.execute(Create(1))
    (dump,) = allowed.collect_dumps()
    assert Path(dump.remote_name).parts[:2] == ("LiveKernelReports", allowed.driver_info().report_type)


# -- The stored-buffer list --------------------------------------------------------------------


def test_f10_f16_full_ring_evicts_the_framework_data_first(tmp_path: Path) -> None:
    """F10/F16: the framework's blocks are the ring's oldest entries, so filling the ring with client
    buffers silently evicts the collection structure first; every Add still succeeds."""
    sim = machine(tmp_path)
    collection = sim.framework.collection_address
    framework = len(sim.framework.blocks)
    sim.execute(Alloc("a", 8, b"a"))
    statuses = {sim.execute(Store("a", 8)).status for _ in range(256 - framework + 1)}
    assert statuses == {STATUS_SUCCESS}
    sim.execute(Create(1))
    with only_live_dump(sim) as dump:
        assert dump.block_containing(collection, 8) is None
        assert len(dump.data_blocks) == 256


def test_f11_dmf_data_size_counter_drifts_on_eviction(tmp_path: Path) -> None:
    """F11: DmfDataSizeGet grows by size + 8 per Add and never shrinks when the ring evicts."""
    sim = machine(tmp_path)
    start = sim.execute(QueryDmfDataSize()).value
    assert start is not None and start > 0  # the framework's own entries count too (F16)
    sim.execute(Alloc("a", 100, b"a"))
    for _ in range(300):
        sim.execute(Store("a", 100))
    assert sim.execute(QueryDmfDataSize()).value == start + 300 * 108
    assert len(sim.module.ring) == 256


def test_f12_remove_with_another_size_is_a_silent_no_op(tmp_path: Path) -> None:
    """F12: only the exact (address, size) pair matches; a wrong size leaves the entry valid."""
    sim = machine(tmp_path)  # bfac434: no match means no crash either (F13 needs a match)
    address = sim.execute(Alloc("a", 32, b"a")).address
    sim.execute(Store("a", 32))
    result = sim.execute(Remove("a", 31))
    assert result.crash is None and result.status == STATUS_SUCCESS
    sim.execute(Create(1))
    with only_live_dump(sim) as dump:
        assert dump.read_virtual(address, 32) == b"a" * 32


@pytest.mark.parametrize(("profile", "leaks"), [("dmf-bfac434", True), ("contract", False)])
def test_f15_entries_left_queued_by_a_failed_insert_lead_the_next_dump(
    tmp_path: Path, profile: str, leaks: bool
) -> None:
    """F15: on bfac434 a failed insert leaves the rest of the queue behind, and those entries are
    inserted into the next dump even after the ring itself has lost them."""
    sim = machine(tmp_path, profile)
    sim.execute(Alloc("zero", 8, b"z"))
    later = sim.execute(Alloc("later", 8, b"L")).address
    sim.execute(Store("zero", 0))  # size 0: lkmdtel refuses it (F08) and the insert loop stops
    sim.execute(Store("later", 8))
    assert sim.execute(Create(1)).status == STATUS_INVALID_PARAMETER
    sim.execute(Alloc("filler", 8, b"f"))
    for _ in range(256):  # evict everything, "zero" and "later" included (F10)
        sim.execute(Store("filler", 8))
    sim.execute(Wait(61))
    assert sim.execute(Create(2)).status == STATUS_SUCCESS
    with only_live_dump(sim) as dump:
        assert (dump.block_containing(later, 8) is not None) is leaks


# -- DMF data, limits, client structures and secondary data ------------------------------------


def test_f19_nothing_enforces_the_1_mb_secondary_maximum(tmp_path: Path) -> None:
    """F19: DMF's 1 MB secondary maximum is only a #define: 2 MB goes through whole."""
    sim = machine(tmp_path)
    size = 2 * 1024 * 1024
    sim.execute(Alloc("s", size, b"S"))
    assert sim.execute(Create(1, exclude_dmf_data=1, secondary_data=SecondaryData("s", size))).status == 0
    with only_live_dump(sim) as dump:
        (blob,) = dump.blobs_with_guid(sim.driver_info().secondary_data_guid)
        assert blob.size == size


def test_f20_many_client_structures_and_a_zero_size_one_aborts(tmp_path: Path) -> None:
    """F20: the count has no upper bound, but one zero-size structure aborts the whole dump."""
    sim = machine(tmp_path)
    sim.execute(Alloc("c", 4096, b"c"))
    many = tuple(ClientStructure("c", 8, offset=8 * i) for i in range(300))
    assert sim.execute(Create(1, exclude_dmf_data=1, client_structures=many)).status == STATUS_SUCCESS
    with only_live_dump(sim) as dump:
        assert len(dump.data_blocks) == 300
    sim.execute(Wait(61))
    broken = (*many[:5], ClientStructure("c", 0))
    assert sim.execute(Create(1, exclude_dmf_data=1, client_structures=broken)).status != STATUS_SUCCESS
    assert live_dumps(sim) == []


@pytest.mark.parametrize(
    ("profile", "status"), [("dmf-bfac434", STATUS_SUCCESS), ("contract", STATUS_INVALID_PARAMETER)]
)
def test_f21_null_secondary_guid_drops_the_data(tmp_path: Path, profile: str, status: int) -> None:
    """F21: with an all-zero GuidSecondaryData bfac434 skips the data and reports success."""
    sim = machine(tmp_path, profile, module=ModuleConfig(secondary_data_guid=uuid.UUID(int=0)))
    sim.execute(Alloc("s", 64, b"s"))
    assert sim.execute(Create(1, secondary_data=SecondaryData("s", 64))).status == status
    if status == STATUS_SUCCESS:
        with only_live_dump(sim) as dump:
            assert dump.blobs_with_guid(uuid.UUID(int=0)) == []


def test_f22_include_dmf_data_in_bugcheck_dump(tmp_path: Path) -> None:
    """F22: IncludeDmfDataInBugCheckTriageDump puts every valid ring entry in a bugcheck's dump;
    a second DMF_CrashDump instance keeps the driver from starting."""
    sim = machine(tmp_path, module=ModuleConfig(include_dmf_data_in_bugcheck_dump=True))
    address = sim.execute(Alloc("a", 24, b"kept")).address
    sim.execute(Store("a", 24))
    assert sim.execute(Remove("a", 24)).crash is not None  # F13 crashes the machine
    with crash_dump(sim) as dump:
        assert dump.read_virtual(address, 24) == (b"kept" * 6)
    with pytest.raises(TargetError, match="F22"):
        machine(
            tmp_path / "two",
            module=ModuleConfig(include_dmf_data_in_bugcheck_dump=True),
            second_crash_dump_module=True,
        )


# -- IOCTL_LIVEKERNELDUMP_CREATE ---------------------------------------------------------------


def test_f23_ioctl_code_and_interface(tmp_path: Path) -> None:
    """F23: CTL_CODE(FILE_DEVICE_UNKNOWN, 4800, METHOD_BUFFERED, FILE_WRITE_ACCESS) = 0x0022CB00;
    a zero GuidDeviceInterface registers no interface, so no application can reach the IOCTL."""
    assert IOCTL_LIVEKERNELDUMP_CREATE == 0x0022CB00
    sim = machine(tmp_path, module=ModuleConfig(device_interface_guid=uuid.UUID(int=0)))
    assert sim.execute(IoctlCreate(1)).status == STATUS_OBJECT_NAME_NOT_FOUND


def test_f24_input_is_37_packed_bytes(tmp_path: Path) -> None:
    """F24: the x64 input is 37 bytes, fields at 0/4/12/13/17/25/29; raw bytes reach the module."""
    assert INPUT_SIZE == 37
    raw = struct.pack(INPUT_FORMAT, 0x1B3, 0xABCDEF, 1, 0, 0, 0, 0)
    assert raw[4:12] == (0xABCDEF).to_bytes(8, "little") and raw[12] == 1
    sim = machine(tmp_path)
    assert sim.execute(IoctlCreate(raw=raw)).status == STATUS_SUCCESS
    with only_live_dump(sim) as dump:
        assert dump.header.bugcheck_code == 0x1B3
        assert dump.header.bugcheck_parameters == (0xABCDEF, 0, 0, 0)


def test_f25_short_oversized_and_null_pointer_inputs(tmp_path: Path) -> None:
    """F25: < 37 bytes is BUFFER_TOO_SMALL, more is accepted, a NULL array with a count or a
    NULL buffer with a size is INVALID_PARAMETER."""
    sim = machine(tmp_path)
    raw = struct.pack(INPUT_FORMAT, 1, 0, 1, 0, 0, 0, 0)
    assert sim.execute(IoctlCreate(raw=raw[:36])).status == STATUS_BUFFER_TOO_SMALL
    assert sim.execute(IoctlCreate(raw=raw + b"\xee" * 27)).status == STATUS_SUCCESS
    sim.execute(Wait(61))
    null_array = IoctlCreate(1, client_structure_count_override=2, client_structure_array_override=0)
    assert sim.execute(null_array).status == STATUS_INVALID_PARAMETER
    null_buffer = IoctlCreate(1, secondary_size_override=8, secondary_address_override=0)
    assert sim.execute(null_buffer).status == STATUS_INVALID_PARAMETER


def test_f26_standard_user_and_read_only_handle_are_denied(tmp_path: Path) -> None:
    """F26: a non-elevated caller, or a handle without write access, gets ACCESS_DENIED."""
    sim = machine(tmp_path)
    assert sim.execute(IoctlCreate(1, elevated=False)).status == STATUS_ACCESS_DENIED
    assert sim.execute(IoctlCreate(1, write_access=False)).status == STATUS_ACCESS_DENIED
    assert live_dumps(sim) == []
    assert sim.execute(IoctlCreate(1, secondary_data=UserBuffer(b"app data"))).status == STATUS_SUCCESS
    with only_live_dump(sim) as dump:
        (blob,) = dump.blobs_with_guid(sim.driver_info().secondary_data_guid)
        assert dump.blob_bytes(blob) == b"app data"


@pytest.mark.parametrize("profile", ["dmf-bfac434", "contract"])
def test_f27_unprobed_user_pointers(tmp_path: Path, profile: str) -> None:
    """F27: bfac434 reads a wild array pointer (bugcheck 0x3B) and copies kernel memory named by a
    client structure into the dump; a probing handler refuses both with ACCESS_VIOLATION."""
    sim = machine(tmp_path, profile)
    wild = IoctlCreate(1, client_structure_count_override=1, client_structure_array_override=0x7FF0_0000)
    result = sim.execute(wild)
    secret = sim.execute(Alloc("kernel_secret", 16, b"secret!!")).address
    disclosure = sim.execute(
        IoctlCreate(2, exclude_dmf_data=1, client_structures=(ClientStructure(secret, 16),))
    )
    if profile == "contract":
        assert result.status == STATUS_ACCESS_VIOLATION and result.crash is None
        assert disclosure.status == STATUS_ACCESS_VIOLATION
        return
    assert result.crash is not None and result.crash.bugcheck_code == 0x3B
    assert result.crash.parameters[0] == STATUS_ACCESS_VIOLATION
    assert disclosure.status == STATUS_SUCCESS
    with only_live_dump(sim) as dump:
        assert dump.read_virtual(secret, 16) == b"secret!!" * 2


# -- IRQL ---------------------------------------------------------------------------------------


def test_f28_f38_add_at_dispatch_faults_in_the_paged_lock_helper(tmp_path: Path) -> None:
    """F28/F38: at DISPATCH under Verifier the paged lock helper runs first and faults: 0xD1 with
    P1 = P4 = the helper's address in LkdhTestDriver.sys, P2 = 2, P3 = 8 (execute); not 0xC4."""
    sim = machine(tmp_path)
    sim.execute(Alloc("a", 16, b"a"))
    crash = sim.execute(Store("a", 16, irql=Irql.DISPATCH_LEVEL)).crash
    assert crash is not None and crash.bugcheck_code == 0xD1
    helper = TEST_DRIVER.routine(LOCK_HELPER, paged=True)
    assert crash.parameters == (helper, 2, 8, helper)
    with crash_dump(sim) as dump:
        assert dump.header.bugcheck_parameters == crash.parameters
        (driver,) = [d for d in dump.drivers if d.file_name == "LkdhTestDriver.sys"]
        assert driver.base <= helper < driver.base + driver.size


def test_f28_remove_at_apc_level_is_allowed(tmp_path: Path) -> None:
    """F28: the wait lock is fine up to APC_LEVEL (a critical region may be entered there)."""
    sim = machine(tmp_path, "contract")
    sim.execute(Alloc("a", 16, b"a"))
    sim.execute(Store("a", 16, irql=Irql.APC_LEVEL))
    assert sim.execute(Remove("a", 16, irql=Irql.APC_LEVEL)).crash is None


@pytest.mark.parametrize("profile", ["dmf-bfac434", "contract"])
def test_f29_create_at_dispatch_bugchecks_on_both_profiles(tmp_path: Path, profile: str) -> None:
    """F29/F38: Create is PASSIVE only (paged), documented and real: at DISPATCH under Verifier its
    own first instruction faults, 0xD1 with P3 = 8, on both profiles."""
    sim = machine(tmp_path, profile)
    crash = sim.execute(Create(1, irql=Irql.DISPATCH_LEVEL)).crash
    assert crash is not None and crash.bugcheck_code == 0xD1
    routine = TEST_DRIVER.routine("DMF_LiveKernelDump_LiveKernelMemoryDumpCreate", paged=True)
    assert crash.parameters == (routine, 2, 8, routine)
    assert live_dumps(sim) == []


def test_f30_store_collection_at_dispatch_faults_on_trimmed_paged_code(tmp_path: Path) -> None:
    """F30: StoreDmfCollectionAsBugcheckParameter is paged code: at DISPATCH under Verifier's IRQL
    checking it faults, 0xD1 with P2 = the IRQL and P3 = 8 (execute)."""
    sim = machine(tmp_path)
    crash = sim.execute(StoreCollection(5, irql=Irql.DISPATCH_LEVEL)).crash
    assert crash is not None and crash.bugcheck_code == 0xD1
    assert crash.parameters[1:3] == (int(Irql.DISPATCH_LEVEL), 8)
    assert crash.parameters[0] == crash.parameters[3]


def test_f31_ioctl_handler_runs_create_at_passive_even_under_verifier(tmp_path: Path) -> None:
    """F31: the IOCTL is dispatched in the caller's thread at PASSIVE_LEVEL: no Verifier stop."""
    sim = machine(tmp_path, verifier=True)
    result = sim.execute(IoctlCreate(1))
    assert result.crash is None and result.status == STATUS_SUCCESS


# -- Lifecycle and the fact index --------------------------------------------------------------


def test_prepare_restores_a_clean_machine_after_crashes(tmp_path: Path) -> None:
    """prepare() is the snapshot revert: first boot, empty disk, the clock back at its epoch."""
    sim = machine(tmp_path)
    first_collection = sim.driver_info().collection_handle
    sim.execute(Create(1, irql=Irql.DISPATCH_LEVEL))
    sim.execute(Reboot())
    assert sim.boot_number == 3
    sim.prepare()
    assert sim.boot_number == 1 and sim.crashes == []
    assert sim.driver_info().collection_handle == first_collection
    assert sim.collect_dumps() == []


def test_every_fact_is_cited_by_a_simulator_test() -> None:
    """Every fact F01-F45 of DMF_FACTS.md is named by at least one test of the simulator."""
    cited: set[str] = set()
    for path in TESTS.glob("test_sim_*.py"):
        for match in re.finditer(r"\bF(\d{2})\b|\btest_f(\d{2})", path.read_text(encoding="utf-8")):
            cited.add(f"F{match.group(1) or match.group(2)}")
    missing = sorted({f"F{n:02d}" for n in range(1, 46)} - cited)
    assert missing == []


@pytest.mark.parametrize("profile", ["dmf-bfac434", "contract"])
def test_f27_a_kernel_secondary_data_pointer(tmp_path: Path, profile: str) -> None:
    """F27: the secondary-data pointer of the IOCTL input is a user pointer too: bfac434 hands it to
    lkmdtel unprobed, so kernel memory it names lands in the dump's secondary data; a probing
    handler refuses it with ACCESS_VIOLATION before any report is made."""
    sim = machine(tmp_path, profile)
    secret = sim.execute(Alloc("kernel_secret", 16, b"secret!!")).address
    result = sim.execute(
        IoctlCreate(1, exclude_dmf_data=1, secondary_size_override=16, secondary_address_override=secret)
    )
    if profile == "contract":
        assert (result.status, result.crash) == (STATUS_ACCESS_VIOLATION, None)
        assert live_dumps(sim) == []
        return
    assert result.status == STATUS_SUCCESS
    with only_live_dump(sim) as dump:
        (blob,) = dump.blobs_with_guid(sim.driver_info().secondary_data_guid)
        assert dump.blob_bytes(blob) == b"secret!!" * 2


@pytest.mark.parametrize("profile", ["dmf-bfac434", "contract"])
def test_f27_an_ioctl_naming_a_kernel_buffer_as_secondary_data(tmp_path: Path, profile: str) -> None:
    """The same through a scenario's `secondary_data: {buffer: name}` on an `ioctl_create`: the sim
    packs the named kernel buffer's address into the input; an unknown name is NOT_FOUND."""
    sim = machine(tmp_path, profile)
    sim.execute(Alloc("kernel_buffer", 8, b"kern"))
    result = sim.execute(IoctlCreate(1, exclude_dmf_data=1, secondary_data=SecondaryData("kernel_buffer", 8)))
    if profile == "contract":
        assert result.status == STATUS_ACCESS_VIOLATION
    else:
        assert result.status == STATUS_SUCCESS
        with only_live_dump(sim) as dump:
            (blob,) = dump.blobs_with_guid(sim.driver_info().secondary_data_guid)
            assert dump.blob_bytes(blob) == b"kernkern"
    unknown = sim.execute(IoctlCreate(2, exclude_dmf_data=1, secondary_data=SecondaryData("nowhere", 8)))
    assert unknown.status == STATUS_NOT_FOUND
    assert unknown.detail == "the driver has no buffer named 'nowhere' on this boot"

"""The verifier on kernel memory dumps (harness/verify/memory_contents.py): `contains`, `excludes`,
secondary data and the DMF checks read by virtual address through the dump's page tables, and the
shipped scenarios run both ways on the simulator (triage dumps, then kernel dumps) with the same
expectations."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from harness.dump import TriageDumpSpec, open_dump
from harness.dump.memory_writer import MemoryDumpSpec, write_memory_dump
from harness.runner import run_scenario
from harness.scenario import load_scenario_file, load_scenarios
from harness.scenario.model import DumpExpect
from harness.target.sim import SimSettings, SimulatedMachine
from harness.verify import BufferView, DumpContext, Mismatch, check_dump
from harness.verify.evidence import dump_evidence

REPO_ROOT = Path(__file__).resolve().parents[1]
SHIPPED = load_scenarios(REPO_ROOT / "scenarios")
A, B = 0xFFFF_9A26_2000_1010, 0xFFFF_C012_3456_7020  # a large-page pool chunk, a 4 KiB-paged range
A_BYTES, B_BYTES = bytes(range(64)), b"\xab" * 0x30
UNMAPPED = 0xFFFF_C012_3480_0000  # another 2 MiB chunk of B's PDPT: its PDE is zero
COLLECTION = 0x65D9_DFFF_D528
GUID = uuid.UUID("6f1d1c8e-5f3b-4a56-9f43-5a3c2e1d0b7a")


def memory_dump(tmp_path: Path, *, live: bool = True, blobs: bool = True) -> Path:
    header = TriageDumpSpec(
        0x1A2, (7, COLLECTION, 0, 0), [], secondary_data=[(GUID, b"telemetry")] if blobs else [], live=live
    )
    spec = MemoryDumpSpec(header, [(A, A_BYTES), (B, B_BYTES)], [(A, A + 1)], dump_type=6 if live else 5)
    tmp_path.mkdir(parents=True, exist_ok=True)
    return write_memory_dump(tmp_path / "full.dmp", spec)


def context() -> DumpContext:
    buffers = {"a": BufferView("a", A, A_BYTES), "b": BufferView("b", B, B_BYTES)}
    return DumpContext(buffers, COLLECTION, GUID, 0x1A2)


def check(path: Path, expect: dict) -> list[Mismatch]:
    with open_dump(path) as dump:
        return check_dump(DumpExpect.model_validate(expect), dump, context())


def test_a_full_live_dump_meets_contains_parameters_and_secondary_data(tmp_path: Path) -> None:
    path = memory_dump(tmp_path)
    expect = {
        "parameters": [7, "collection", 0, 0],
        "contains": ["a", "b", {"buffer": "a", "offset": 8, "length": 8}, {"address": B, "length": 0x30}],
        "excludes": [{"address": UNMAPPED, "length": 0x2000}],
        "secondary_data": [{"hex": "74656c656d65747279"}],
    }
    assert check(path, expect) == []


def test_a_range_the_dump_does_not_hold_names_the_address_and_where_the_walk_stopped(tmp_path: Path) -> None:
    (missing,) = check(memory_dump(tmp_path), {"contains": [{"address": UNMAPPED + 0x40, "length": 16}]})
    assert missing.path == ("expect", "dump", "contains", 0)
    assert (
        missing.message == f"the dump does not hold 0x{UNMAPPED + 0x40:X}[0:+16] (0x{UNMAPPED + 0x40:X}+0x10)"
    )
    assert f"[0x{UNMAPPED + 0x40:x}, " in missing.found and ": PDE (entry at physical 0x" in missing.found
    assert "= 0x0000000000000000): not present (zero entry" in missing.found
    # a range running off the end of B's page into the next, unmapped one: stopped at its PTE
    (straddles,) = check(memory_dump(tmp_path / "2"), {"contains": [{"address": B + 0xFD0, "length": 0x40}]})
    assert ": PTE (entry at physical 0x" in straddles.found


def test_other_bytes_and_excluded_pages_are_shown(tmp_path: Path) -> None:
    path = memory_dump(tmp_path)
    differs, present, count = check(
        path, {"contains": [{"buffer": "b", "bytes": "AB AB 00"}], "excludes": ["a"], "block_count": 1}
    )
    assert differs == Mismatch(
        ("expect", "dump", "contains", 0),
        f"the dump holds b (0x{B:X}+0x30) but its bytes differ from offset +0x2",
        "00",
        "AB",
    )
    assert present.path == ("expect", "dump", "excludes", 0)
    assert present.message == f"the dump contains a (0x{A:X}+0x40), which it must not"
    with open_dump(path) as dump:
        assert present.found == f"1 of 1 page(s) in the dump: VA 0x{A:X} -> physical 0x{dump.translate(A):X}"
    assert count.path == ("expect", "dump", "block_count")
    assert count.message.startswith("block_count is a triage-dump expectation")
    assert count.found == "DumpType 6 (bitmap kernel)"


def test_secondary_data_absent_and_the_kind_of_dump(tmp_path: Path) -> None:
    (present,) = check(memory_dump(tmp_path), {"secondary_data": [{"absent": True}]})
    assert present.message == f"secondary data {GUID} is present"
    assert check(memory_dump(tmp_path / "none", blobs=False), {"secondary_data": [{"absent": True}]}) == []
    (kind,) = check(memory_dump(tmp_path / "crash", live=False), {})
    assert kind == Mismatch(
        ("expect", "dump"),
        "full.dmp is not a full live dump",
        "DumpType 1, 5 or 6 with the LiveDumpGeneratedDump attribute",
        "DumpType 5, Attributes None",
    )


def test_the_dump_maps_evidence_agrees_with_the_checks(tmp_path: Path) -> None:
    """The dump map's verdicts follow check_dump's on a memory dump too (evidence.py)."""
    expect = DumpExpect.model_validate(
        {
            "contains": ["a", {"buffer": "b", "bytes": "00"}, {"address": UNMAPPED, "length": 8}],
            "excludes": ["b", {"address": UNMAPPED, "length": 8}],
        }
    )
    with open_dump(memory_dump(tmp_path)) as dump:
        evidence = dump_evidence(dump, expect, context())
        failing = {m.path for m in check_dump(expect, dump, context())}
    verdicts = [(item.kind, item.verdict) for item in evidence.expectations]
    assert verdicts == [
        ("contains", "found"),
        ("contains", "differs"),
        ("contains", "missing"),
        ("excludes", "unexpected"),
        ("excludes", "absent"),
    ]
    assert {item.path for item in evidence.expectations if not item.met} == failing
    assert evidence.blocks == () and "PDE" in evidence.expectations[2].detail


# -- shipped scenarios, both ways ------------------------------------------------------------------


def _same_meaning_on_a_full_dump(loaded) -> bool:
    """`excludes` and `block_count` say what the module put in a triage dump; a full dump holds
    every kernel page (memory_contents.py), so only the other scenarios keep their meaning."""
    for step in loaded.scenario.steps:
        dump = step.expect.dump
        if dump is not None and (dump.excludes or dump.block_count is not None):
            return False
    return True


CRASHING = [s for s in SHIPPED if any(getattr(st.expect, "bugcheck", None) for st in s.scenario.steps)]
FULL_DUMP_MEANING = [s for s in SHIPPED if _same_meaning_on_a_full_dump(s)]


def _outcomes(loaded, tmp_path: Path, **settings: object):
    record = run_scenario(loaded, SimulatedMachine(tmp_path, SimSettings(**settings)))  # type: ignore[arg-type]
    return record, [
        (step.outcome, step.status, step.crash and step.crash.bugcheck_code) for step in record.steps
    ]


@pytest.mark.parametrize("loaded", CRASHING, ids=lambda loaded: loaded.scenario.name)
def test_crashing_scenarios_pass_the_same_with_memory_dmp(tmp_path: Path, loaded) -> None:
    """`crash_dump: kernel`: every bugcheck also leaves MEMORY.DMP, whose code and parameters the
    verifier checks as it checks the minidump's; the scenario's outcome is unchanged."""
    triage, triage_steps = _outcomes(loaded, tmp_path / "triage")
    kernel, kernel_steps = _outcomes(loaded, tmp_path / "kernel", crash_dump="kernel")
    assert (kernel.outcome, kernel_steps) == (triage.outcome, triage_steps), kernel.failure_text()
    crashed = [step for step in kernel.steps if step.crash is not None]
    assert crashed
    for step in crashed:
        names = [dump.path.name for dump in step.dumps if dump.kind == "crash"]
        assert any(name.startswith("MEMORY") for name in names), names


@pytest.mark.parametrize("loaded", FULL_DUMP_MEANING, ids=lambda loaded: loaded.scenario.name)
def test_scenarios_pass_the_same_on_full_live_dumps(tmp_path: Path, loaded) -> None:
    """`live_dump: kernel`: each create's dump is a full live dump (DumpType 6), checked by virtual
    address; every scenario whose expectations mean the same there has the same outcome."""
    triage, triage_steps = _outcomes(loaded, tmp_path / "triage")
    kernel, kernel_steps = _outcomes(loaded, tmp_path / "kernel", live_dump="kernel", crash_dump="kernel")
    assert (kernel.outcome, kernel_steps) == (triage.outcome, triage_steps), kernel.failure_text()


def test_full_dump_meaning_covers_the_core_scenarios() -> None:
    names = {loaded.scenario.name for loaded in FULL_DUMP_MEANING}
    assert {"store_then_create_contains_buffer", "collection_parameter_is_p2"} <= names
    assert len(FULL_DUMP_MEANING) >= 15


def test_a_wrong_expectation_on_a_kernel_dump_fails_with_its_yaml_position(tmp_path: Path) -> None:
    path = tmp_path / "wrong.yaml"
    path.write_text(
        """name: wrong_on_a_full_dump
steps:
  - alloc: {name: buf, size: 64, pattern: "11 22"}
  - store: buf
  - create: {bugcheck_code: 0x1A2}
    expect:
      dump:
        contains:
          - {buffer: buf, bytes: "11 22 33"}
          - {address: 0xFFFFC00000100000, length: 16}
""",
        encoding="utf-8",
    )
    (loaded,) = load_scenario_file(path)
    record = run_scenario(loaded, SimulatedMachine(tmp_path / "out", SimSettings(live_dump="kernel")))
    assert record.outcome == "failed"
    text = record.failure_text()
    assert f"{path}:9:13: step 3 (create bugcheck 0x1A2)" in text
    assert "but its bytes differ from offset +0x2\n    expected: 33\n    found:    11" in text
    assert f"{path}:10:13: step 3 (create bugcheck 0x1A2)" in text
    assert "the dump does not hold 0xFFFFC00000100000[0:+16] (0xFFFFC00000100000+0x10)" in text
    assert "PML4E (entry at physical 0x1adc00 = 0x0000000000000000)" in text
    assert "dumps kept: " in text and str(tmp_path / "out") in text

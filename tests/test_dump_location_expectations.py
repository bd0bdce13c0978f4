"""The expectations added for the module-configuration suite (issue 11): where a live dump landed
(`dump.folder`, F05/F09), whether the DMF collection block is in it (`dump.dmf_collection`, F32/F35),
and what a bugcheck's crash dump holds (`crash_dump`, F22/F41). Each is made to fail on a real dump
the simulator wrote, naming its YAML position and the evidence, and each is made to pass."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
from scenario_runs import only_failure, position, run_text

from harness.scenario import ScenarioErrors, load_scenario_file
from harness.scenario.schema import scenario_json_schema
from harness.target.machine_settings import MachineSettings
from harness.target.ops import Create
from harness.target.sim import SimSettings, SimulatedMachine
from harness.target.status import STATUS_UNSUCCESSFUL


def folder_scenario(report_type: str, folder: str, known_defect: str = "") -> str:
    return (
        f"name: t\nmachine: {{report_type: '{report_type}'}}\n{known_defect}steps:\n"
        f"  - create: {{bugcheck_code: 0x1D0, exclude_dmf_data: true}}\n"
        f"    expect:\n      dump: {{folder: '{folder}'}}\n"
    )


@pytest.mark.parametrize("folder", ["LiveKernelReports/LkdhReport1", "livekernelreports\\LKDHREPORT1"])
def test_folder_holds_for_the_report_type_in_any_case_and_separator(tmp_path: Path, folder: str) -> None:
    """F09: live dumps land in LiveKernelReports\\<ReportType>; Windows compares paths case-insensitively."""
    record = run_text(tmp_path, folder_scenario("LkdhReport1", folder))
    assert record.outcome == "passed", record.failure_text()


def test_folder_fails_naming_the_folder_found_and_its_position(tmp_path: Path) -> None:
    text = folder_scenario("LkdhReport1", "LiveKernelReports/LkdhReport2")
    failure = only_failure(run_text(tmp_path, text))
    at = position(tmp_path, text, "'LiveKernelReports/LkdhReport2'")
    assert failure.startswith(f"{at}: step 1 (create")
    assert "the live dump landed in another folder (LiveKernelReports/LkdhReport1/" in failure
    assert "expected: LiveKernelReports/LkdhReport2" in failure
    assert "found:    LiveKernelReports/LkdhReport1" in failure


def test_folder_shows_report_type_truncated_on_bfac434_and_not_on_contract(tmp_path: Path) -> None:
    """F05: bfac434 keeps 11 characters of a 15-character ReportType; the defect's signature is the
    failing folder expectation, so the scenario xfails there and passes on the contract."""
    defect = "known_defect: {id: report-type-truncated, reason: F05}\n"
    text = folder_scenario("LkdhReport12345", "LiveKernelReports/LkdhReport12345", defect)
    (tmp_path / "bfac434").mkdir()
    shipped = run_text(tmp_path / "bfac434", text)
    assert shipped.outcome == "xfailed", shipped.failure_text()
    assert "found:    LiveKernelReports/LkdhReport1" in shipped.failed_steps[0].failures[0]
    (tmp_path / "contract").mkdir()
    assert run_text(tmp_path / "contract", text, "contract").outcome == "passed"


@pytest.mark.parametrize("profile", ["dmf-bfac434", "contract"])
def test_an_empty_report_type_fails_create_without_a_dump(tmp_path: Path, profile: str) -> None:
    """[INF] (README, simulator choices): lkmdtel's CreateReport refuses an empty ReportType, so
    Create returns STATUS_UNSUCCESSFUL (F01) and nothing lands in LiveKernelReports (F09)."""
    machine = SimulatedMachine(tmp_path, SimSettings(profile=profile))
    assert machine.configure(MachineSettings(report_type="")) is None
    machine.prepare()
    assert machine.execute(Create(0x1D2, exclude_dmf_data=1)).status == STATUS_UNSUCCESSFUL
    assert list(machine.windows_dir.glob("LiveKernelReports/**/*.dmp")) == []


EVICTION = """\
name: t
steps:
  - alloc: {name: record, size: 8}
  - store: record
    repeat: REPEAT
  - create: {bugcheck_code: 0x1DF}
    expect:
      dump: {dmf_collection: WANT}
"""


@pytest.mark.parametrize(("repeat", "want"), [(222, "true"), (223, "false")])
def test_dmf_collection_follows_the_ring(tmp_path: Path, repeat: int, want: str) -> None:
    """F35: 34 DMF entries + 222 stores fill the 256 slots; the 223rd evicts the collection block."""
    text = EVICTION.replace("REPEAT", str(repeat)).replace("WANT", want)
    assert run_text(tmp_path, text).outcome == "passed"


def test_dmf_collection_fails_with_the_evidence_either_way(tmp_path: Path) -> None:
    kept = EVICTION.replace("REPEAT", "222").replace("WANT", "false")
    (tmp_path / "kept").mkdir()
    failure = only_failure(run_text(tmp_path / "kept", kept))
    assert "the dump's DMF collection block is present" in failure
    assert "found:    the collection block at 0x" in failure
    evicted = EVICTION.replace("REPEAT", "223").replace("WANT", "true")
    (tmp_path / "evicted").mkdir()
    failure = only_failure(run_text(tmp_path / "evicted", evicted))
    assert failure.startswith(f"{position(tmp_path / 'evicted', evicted, 'true')}: ")
    assert "the dump's DMF collection block is missing" in failure
    assert "no data block starts with P2" in failure


def crash_scenario(include: bool, check: str) -> str:
    return (
        "name: t\nrequires: [verifier]\n"
        f"machine: {{include_dmf_data_in_bugcheck_dump: {str(include).lower()}}}\n"
        "steps:\n  - alloc: {name: evidence, size: 48}\n  - store: evidence\n"
        "  - store_collection: 1\n    irql: DISPATCH_LEVEL\n"
        f"    expect:\n      bugcheck: [0xD1]\n      crash_dump: {{{check}: [evidence]}}\n"
    )


@pytest.mark.parametrize(("include", "check"), [(True, "contains"), (False, "excludes")])
def test_crash_dump_holds_stored_buffers_only_with_include_dmf_data(
    tmp_path: Path, include: bool, check: str
) -> None:
    """F22: the DMF_CrashDump child adds the ring's valid entries to the bugcheck's triage dump."""
    record = run_text(tmp_path, crash_scenario(include, check))
    assert record.outcome == "passed", record.failure_text()


@pytest.mark.parametrize(
    ("include", "check", "message"),
    [
        (False, "contains", "the dump does not contain evidence"),
        (True, "excludes", "the dump contains evidence"),
    ],
)
def test_crash_dump_fails_at_its_position_with_the_blocks(
    tmp_path: Path, include: bool, check: str, message: str
) -> None:
    text = crash_scenario(include, check)
    failure = only_failure(run_text(tmp_path, text))
    assert failure.startswith(f"{position(tmp_path, text, 'evidence]')}: step 3 (store_collection")
    assert message in failure


def test_crash_dump_needs_an_expected_bugcheck(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: s\nsteps:\n  - alloc: {name: a, size: 8}\n  - create: {bugcheck_code: 1}\n"
        "    expect: {crash_dump: {contains: [a]}}\n"
    )
    with pytest.raises(ScenarioErrors) as caught:
        load_scenario_file(path)
    assert f"{path}:5:" in str(caught.value) and "`crash_dump` needs `bugcheck`" in str(caught.value)


def test_crash_dump_names_only_allocated_buffers(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: s\nsteps:\n  - store_collection: 1\n    irql: DISPATCH_LEVEL\n"
        "    expect: {bugcheck: [0xD1], crash_dump: {contains: [ghost]}}\n"
    )
    with pytest.raises(ScenarioErrors) as caught:
        load_scenario_file(path)
    assert "unknown buffer 'ghost'" in str(caught.value)


def test_schema_knows_the_new_expectations_and_references_inside_text() -> None:
    validator = jsonschema.Draft202012Validator(scenario_json_schema())
    good = {
        "name": "s",
        "parametrize": [{"report_type": "LkdhReport12"}],
        "machine": {"report_type": "${report_type}"},
        "steps": [
            {"alloc": {"name": "a", "size": 8}},
            {
                "create": {"bugcheck_code": 1},
                "expect": {"dump": {"folder": "LiveKernelReports/${report_type}"}},
            },
            {"create": {"bugcheck_code": 1}, "expect": {"dump": {"dmf_collection": False}}},
            {"store_collection": 1, "expect": {"bugcheck": [0xD1], "crash_dump": {"contains": ["a"]}}},
        ],
    }
    assert [e.message for e in validator.iter_errors(good)] == []
    bad = {"name": "s", "steps": [{"create": {"bugcheck_code": 1}, "expect": {"dump": {"folder": "a b"}}}]}
    assert list(validator.iter_errors(bad))

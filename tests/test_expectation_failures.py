"""Every expectation of the scenario language has a test that makes it fail on a real dump.

The dumps are the files the simulated machine writes (the same reader checks them as real Windows
dumps); where the machine cannot be made to write the violation (two blobs under one GUID), the
live-dump service is told to write it, so the dump on disk still really violates the expectation.
Each failure must name the YAML position of the expectation and carry the evidence from the dump.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from scenario_runs import only_failure, position, run_text

from harness.scenario.check import check_paths
from harness.target.sim.lkmdtel import LiveDumpService
from harness.target.sim.memory import KernelMemory
from harness.target.status import STATUS_OBJECT_NAME_COLLISION, STATUS_SUCCESS

STORED = """\
name: t
steps:
  - alloc: {name: a, size: 32}
  - store: {buffer: a, length: 16}
"""


@pytest.mark.parametrize(
    ("excluded", "overlap"),
    [
        ("a", "the whole buffer"),
        ("{buffer: a, offset: 8, length: 16}", "a range straddling the block's end"),
        ("{buffer: a, offset: 15, length: 1}", "the block's last byte"),
    ],
)
def test_excludes_fails_on_any_overlap_naming_the_blocks(tmp_path: Path, excluded: str, overlap: str) -> None:
    text = STORED + f"  - create: {{bugcheck_code: 1}}\n    expect: {{dump: {{excludes: [{excluded}]}}}}\n"
    failure = only_failure(run_text(tmp_path, text))
    assert failure.startswith(position(tmp_path, text, excluded) + ": step 3 (create bugcheck 0x1)"), overlap
    assert "which it must not" in failure
    assert "expected: no data block overlapping the range" in failure
    assert "found:    1 overlapping block(s): 0x" in failure and "+0x10" in failure  # the 16-byte block


def test_excludes_holds_for_the_range_right_after_a_block(tmp_path: Path) -> None:
    """The block is a[0:16]; a[16:32] touches it without overlapping."""
    text = (
        STORED + "  - create: {bugcheck_code: 1}\n    expect: {dump: {excludes: [{buffer: a, offset: 16}]}}\n"
    )
    record = run_text(tmp_path, text)
    assert record.outcome == "passed", record.failure_text()


SECONDARY = """\
name: t
steps:
  - alloc: {name: telemetry, size: 34, text: "collected by the test application!"}
  - create: {bugcheck_code: 1, exclude_dmf_data: true, secondary_data: telemetry}
    expect:
      dump:
        secondary_data:
"""


def test_absent_fails_when_the_blob_is_there(tmp_path: Path) -> None:
    text = SECONDARY + "          - {absent: true}\n"
    failure = only_failure(run_text(tmp_path, text))
    assert failure.startswith(position(tmp_path, text, "{absent: true}") + ":")
    assert "is present" in failure and "expected: no blob with that GUID" in failure
    assert "found:    " in failure and "(34 bytes)" in failure


def test_secondary_size_fails_naming_both_sizes_at_the_size_key(tmp_path: Path) -> None:
    text = SECONDARY + "          - {buffer: telemetry, size: 33}\n"
    failure = only_failure(run_text(tmp_path, text))
    assert failure.startswith(position(tmp_path, text, "33}") + ":")
    assert "has another size" in failure and "expected: 33" in failure and "found:    34" in failure


def test_secondary_bytes_fail_showing_the_first_difference(tmp_path: Path) -> None:
    wrong = b"collected by the test application?".hex()
    text = SECONDARY + f"          - {{hex: {wrong}}}\n"
    failure = only_failure(run_text(tmp_path, text))
    assert failure.startswith(position(tmp_path, text, "{hex:") + ":")
    assert "first difference at byte 33 of 34 expected / 34 found; bytes from 32" in failure
    assert "expected: 6E 3F" in failure and "found:    6E 21" in failure


def test_secondary_bytes_fail_when_the_blob_is_shorter_than_expected(tmp_path: Path) -> None:
    longer = b"collected by the test application!+".hex()
    text = SECONDARY + f"          - {{hex: {longer}}}\n"
    failure = only_failure(run_text(tmp_path, text))
    assert "first difference at byte 34 of 35 expected / 34 found" in failure


def test_two_blobs_under_one_guid_fail_exactly_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """lkmdtel takes secondary data once per dump (F07); a dump with it twice must not pass."""
    original = LiveDumpService._spec

    def twice(self, report, secondary, now, *args, live):
        return original(self, report, secondary * 2, now, *args, live=live)

    monkeypatch.setattr(LiveDumpService, "_spec", twice)
    text = SECONDARY + "          - {buffer: telemetry}\n"
    record = run_text(tmp_path, text)
    failure = only_failure(record)
    assert failure.startswith(position(tmp_path, text, "{buffer: telemetry}") + ":")
    assert "expected exactly one secondary-data blob" in failure
    assert "expected: 1 blob" in failure and "found:    2; blobs:" in failure
    assert failure.count("(34 bytes)") == 2


@pytest.mark.parametrize(
    ("count", "expected"),
    [("{min: 1, max: 34}", "between 1 and 34"), ("{min: 36}", "between 36 and any"), ("34", "34")],
)
def test_block_count_bounds_fail_naming_the_count(tmp_path: Path, count: str, expected: str) -> None:
    """The framework's own 34 entries (F16, F35) and the stored block make 35 blocks."""
    text = STORED + f"  - create: {{bugcheck_code: 1}}\n    expect: {{dump: {{block_count: {count}}}}}\n"
    failure = only_failure(run_text(tmp_path, text))
    assert failure.startswith(position(tmp_path, text, count + "}") + ":")
    assert f"expected: {expected}\n" in failure and "found:    35" in failure


@pytest.mark.parametrize("count", ["{min: 35, max: 35}", "{min: 0}", "{min: 35}", "35"])
def test_block_count_bounds_are_inclusive(tmp_path: Path, count: str) -> None:
    text = STORED + f"  - create: {{bugcheck_code: 1}}\n    expect: {{dump: {{block_count: {count}}}}}\n"
    record = run_text(tmp_path, text)
    assert record.outcome == "passed", record.failure_text()


CRASH = """\
name: t
steps:
  - store_collection: 0x1234
    irql: DISPATCH_LEVEL
    expect:
      bugcheck: [0xD1]
      bugcheck_parameters: [any, 2, {p3}]
"""


def test_bugcheck_parameters_are_read_from_the_crash_dump(tmp_path: Path) -> None:
    """Verifier trims the paged routine: 0xD1 with P2 = the IRQL and P3 = 8, an execute (F38)."""
    record = run_text(tmp_path, CRASH.format(p3="8"))
    assert record.outcome == "passed", record.failure_text()


def test_a_wrong_bugcheck_parameter_names_its_position_and_shows_the_crash_dump(tmp_path: Path) -> None:
    text = CRASH.format(p3="1")
    failure = only_failure(run_text(tmp_path, text))
    assert failure.startswith(position(tmp_path, text, "1]") + ": step 1")
    assert "P3 of the crash dump differs" in failure and ".dmp)" in failure
    assert "expected: 0x1" in failure and "found:    0x8" in failure
    assert "bugcheck               0xd1 DRIVER_IRQL_NOT_LESS_OR_EQUAL" in failure  # the dump's summary


def test_a_bugcheck_with_another_code_is_named(tmp_path: Path) -> None:
    text = CRASH.format(p3="8").replace("[0xD1]", "[0xC4, 0x10D]")
    record = run_text(tmp_path, text)
    failure = record.failed_steps[0].failures[0]
    assert failure.startswith(position(tmp_path, text, "[0xC4") + ":")
    assert "bugchecked with another code" in failure and "expected: 0xC4 or 0x10D" in failure
    assert "found:    bugcheck 0xD1 (" in failure


def test_the_one_minute_rule_accepts_a_report_exactly_60_s_later(tmp_path: Path) -> None:
    """F06 at its boundary, on exact clock values: 60 s after a report is a minute later."""
    now = [1_000.0]
    service = LiveDumpService(tmp_path / "Windows", KernelMemory(1, 1), clock=lambda: now[0])

    def submit() -> int:
        return service.submit_report(service.create_report("LkdhTestDri", 1, 0, 0, 0, 0))

    assert submit() == STATUS_SUCCESS
    now[0] += 59.999_999
    assert submit() == STATUS_OBJECT_NAME_COLLISION
    now[0] = 1_060.0
    assert submit() == STATUS_SUCCESS
    assert len(list((tmp_path / "Windows" / "LiveKernelReports" / "LkdhTestDri").glob("*.dmp"))) == 2


MINUTE = """\
name: t
steps:
  - create: {{bugcheck_code: 1}}
  - wait: {seconds}
  - create: {{bugcheck_code: 2}}
"""


def test_a_report_under_a_minute_later_fails_naming_the_step_and_both_statuses(tmp_path: Path) -> None:
    """Each operation costs the simulated machine 2 ms: `wait: 59.99` puts the second Create 59.994 s
    after the first, `wait: 60` 60.004 s."""
    assert run_text(tmp_path / "later", MINUTE.format(seconds="60")).outcome == "passed"
    text = MINUTE.format(seconds="59.99")
    failure = only_failure(run_text(tmp_path, text))
    assert failure.startswith(position(tmp_path, text, "- create: {bugcheck_code: 2}")[:-2] + ":5:")
    assert "step 3 (create bugcheck 0x2) [status STATUS_OBJECT_NAME_COLLISION (0xC0000035)]" in failure
    assert "expected: STATUS_SUCCESS (0x00000000)" in failure


def test_contains_bytes_past_the_range_are_a_check_error_not_a_traceback(tmp_path: Path) -> None:
    text = STORED + (
        "  - create: {bugcheck_code: 1}\n"
        "    expect:\n"
        "      dump:\n"
        "        contains:\n"
        '          - {buffer: a, offset: 8, length: 4, bytes: "61 7C 61 7C 61"}\n'
        '          - {buffer: a, offset: 30, bytes: "61 7C 61"}\n'
        '          - {address: 0xFFFF800000000000, length: 2, bytes: "00 00 00"}\n'
        '          - {buffer: a, length: 4, bytes: "61 7C 61 7C"}\n'
    )
    (tmp_path / "scenario.yaml").write_text(text)
    errors = [str(error) for error in check_paths(tmp_path / "scenario.yaml").errors]
    at = [position(tmp_path, text, needle) for needle in ('"61 7C 61 7C 61"', '"61 7C 61"}', '"00 00 00"')]
    path = "steps[2].expect.dump.contains"
    assert errors == [
        f"{at[0]}: {path}[0].bytes: 5 bytes given for a[8:+4], whose range holds 4",
        f"{at[1]}: {path}[1].bytes: 3 bytes given for a[30:end], whose range holds 2",
        f"{at[2]}: {path}[2].bytes: 3 bytes given for 0xFFFF800000000000[0:+2], whose range holds 2",
    ]

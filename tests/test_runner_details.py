"""The runner's bookkeeping, checked exactly: the record's fields, the events listeners get, step
locations and times, repetitions, IOCTL overrides, and what an error leaves (the survivors of the
mutation run on harness/runner.py, MUTATION.md)."""

from __future__ import annotations

from pathlib import Path

from harness.record import RunRecord, StepRecord
from harness.runner import RunListener, run_scenario
from harness.scenario import load_scenario_file
from harness.target.base import TargetError
from harness.target.ops import CollectedDump, IoctlCreate
from harness.target.sim import SimulatedMachine


class Recorder(RunListener):
    def __init__(self) -> None:
        self.events: list[tuple[str, object, object]] = []

    def scenario_started(self, record: RunRecord) -> None:
        self.events.append(("scenario_started", record, None))

    def step_started(self, record: RunRecord, step: StepRecord) -> None:
        self.events.append(("step_started", record, step.index))

    def step_finished(self, record: RunRecord, step: StepRecord) -> None:
        self.events.append(("step_finished", record, (step.index, step.outcome)))

    def dump_collected(self, record: RunRecord, dump: CollectedDump, summary: str) -> None:
        self.events.append(("dump_collected", record, summary.split(":")[0]))

    def scenario_finished(self, record: RunRecord) -> None:
        self.events.append(("scenario_finished", record, record.outcome))


def load(tmp_path: Path, text: str):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    (loaded,) = load_scenario_file(path)
    return loaded


def test_the_record_and_every_event_carry_the_run(tmp_path: Path) -> None:
    text = (
        "name: ev\nsteps:\n  - alloc: {name: a, size: 8}\n  - free: a\n  - store: a\n"
        "  - create: {bugcheck_code: 1}\n"
    )
    loaded = load(tmp_path, text)
    machine = SimulatedMachine(tmp_path / "out")
    listener = Recorder()
    record = run_scenario(loaded, machine, [listener])
    assert (record.scenario, record.file, record.target, record.output_dir) == (
        "ev",
        loaded.file,
        "sim",
        machine.output_dir,
    )
    assert all(event[1] is record for event in listener.events)
    steps = [(name, detail) for name, _, detail in listener.events if name.startswith("step")]
    assert steps == [
        ("step_started", 1),
        ("step_finished", (1, "passed")),
        ("step_started", 2),
        ("step_finished", (2, "passed")),
        ("step_started", 3),
        ("step_finished", (3, "failed")),  # the freed buffer is unknown
        ("step_started", 4),
        ("step_finished", (4, "passed")),
    ]
    assert [name for name, _, _ in listener.events if name == "dump_collected"] == ["dump_collected"]
    assert [step.location for step in record.steps] == [str(location) for location in loaded.step_locations]
    assert all(0 <= step.seconds < 60 for step in record.steps)
    assert record.steps[2].status == 0xC0000225  # STATUS_NOT_FOUND: Free really freed `a`


def test_after_an_unexpected_crash_every_remaining_step_is_reported_skipped(tmp_path: Path) -> None:
    text = (
        "name: c\nsteps:\n  - alloc: {name: a, size: 8}\n  - store: a\n  - remove: a\n"
        "  - create: {bugcheck_code: 1}\n  - wait: 1\n"
    )
    listener = Recorder()
    record = run_scenario(load(tmp_path, text), SimulatedMachine(tmp_path / "out"), [listener])
    finished = [detail for name, _, detail in listener.events if name == "step_finished"]
    assert finished == [(1, "passed"), (2, "passed"), (3, "failed"), (4, "skipped"), (5, "skipped")]
    assert [step.outcome for step in record.steps] == ["passed", "passed", "failed", "skipped", "skipped"]


def test_a_repeated_step_keeps_every_dump_and_the_failures_evidence(tmp_path: Path) -> None:
    text = "name: r\nsteps:\n  - create: {bugcheck_code: 1}\n    repeat: 3\n"
    record = run_scenario(load(tmp_path, text), SimulatedMachine(tmp_path / "out"))
    (step,) = record.steps
    assert len(step.dumps) == 1  # the first run wrote it; the second collided
    (failure,) = step.failures
    assert "(repetition 2 of 3) the operation returned a different status" in failure
    assert "expected: STATUS_SUCCESS (0x00000000)" in failure
    assert "found:    STATUS_OBJECT_NAME_COLLISION (0xC0000035)" in failure


def test_a_single_failure_is_not_called_a_repetition(tmp_path: Path) -> None:
    text = "name: one\nsteps:\n  - alloc: {name: a, size: 8}\n    expect: STATUS_INVALID_PARAMETER\n"
    (failure,) = run_scenario(load(tmp_path, text), SimulatedMachine(tmp_path / "out")).steps[0].failures
    assert "repetition" not in failure and "[status STATUS_SUCCESS (0x00000000)]" in failure


def test_a_crashed_step_shows_no_status_in_its_failure(tmp_path: Path) -> None:
    text = "name: c\nsteps:\n  - alloc: {name: a, size: 8}\n  - store: a\n    irql: DISPATCH_LEVEL\n"
    (failure, *_) = run_scenario(load(tmp_path, text), SimulatedMachine(tmp_path / "out")).steps[1].failures
    assert "(store a at DISPATCH_LEVEL): the machine bugchecked unexpectedly" in failure


def test_a_query_checks_its_status_and_its_value(tmp_path: Path) -> None:
    text = (
        "name: q\nsteps:\n  - query: dmf_data_size\n"
        "    expect: {status: STATUS_INVALID_PARAMETER, value: 1}\n"
    )
    failures = run_scenario(load(tmp_path, text), SimulatedMachine(tmp_path / "out")).steps[0].failures
    assert len(failures) == 2
    assert "different status" in failures[0] and "the query returned a different value" in failures[1]


def test_a_sliced_buffer_without_length_runs_to_its_end(tmp_path: Path) -> None:
    text = (
        "name: s\nsteps:\n  - alloc: {name: a, size: 32}\n  - store: {buffer: a, offset: 8}\n"
        "  - create: {bugcheck_code: 1, exclude_dmf_data: false}\n"
        "    expect: {dump: {contains: [{buffer: a, offset: 8}], excludes: [{buffer: a, length: 8}]}}\n"
    )
    record = run_scenario(load(tmp_path, text), SimulatedMachine(tmp_path / "out"))
    assert record.outcome == "passed", record.failure_text()


def test_the_dump_carries_the_code_the_raw_ioctl_asked_for(tmp_path: Path) -> None:
    raw = "b2010000050000000000000001000000000000000000000000000000000000000000000000"
    text = f"name: i\nsteps:\n  - ioctl_create: {{raw: {raw}}}\n    expect: {{dump: {{parameters: [5]}}}}\n"
    record = run_scenario(load(tmp_path, text), SimulatedMachine(tmp_path / "out"))
    assert record.outcome == "passed", record.failure_text()


class Spy(SimulatedMachine):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.ops: list[object] = []

    def execute(self, op, *, timeout=None):  # the Target contract (issue 11: step timeouts)
        self.ops.append(op)
        return super().execute(op)


def test_ioctl_fields_and_overrides_reach_the_target(tmp_path: Path) -> None:
    text = (
        "name: o\nsteps:\n  - alloc: {name: t, size: 16}\n"
        "  - ioctl_create:\n      bugcheck_code: 0x1B3\n      parameter: 9\n      secondary_data: t\n"
        "      client_structure_array: 0\n      client_structure_count: 2\n"
        "      secondary_data_size: 4\n      secondary_data_address: 0x1000\n"
        "    expect: STATUS_INVALID_PARAMETER\n"
        "  - ioctl_create:\n      bugcheck_code: 0x1B4\n      secondary_data: {text: hi}\n"
        "      caller: standard-user\n      access: read\n"
        "    expect: STATUS_ACCESS_DENIED\n"
    )
    spy = Spy(tmp_path / "out")
    record = run_scenario(load(tmp_path, text), spy)
    assert record.outcome == "passed", record.failure_text()
    first, second = [op for op in spy.ops if isinstance(op, IoctlCreate)]
    assert (first.bugcheck_code, first.parameter) == (0x1B3, 9)
    assert (first.client_structure_array_override, first.client_structure_count_override) == (0, 2)
    assert (first.secondary_size_override, first.secondary_address_override) == (4, 0x1000)
    assert (
        first.secondary_data is not None
        and first.secondary_data.buffer == "t"
        and first.secondary_data.length == 16
    )
    assert (second.elevated, second.write_access, second.secondary_data.data) == (False, False, b"hi")
    allocs = [op for op in spy.ops if type(op).__name__ == "Alloc"]
    assert allocs[0].pool == "NonPagedPoolNx"


class Failing(SimulatedMachine):
    def collect_dumps(self):
        raise TargetError("the dump folder vanished")


def test_a_target_error_while_collecting_is_the_runs_error(tmp_path: Path) -> None:
    text = "name: e\nsteps:\n  - create: {bugcheck_code: 1}\n"
    record = run_scenario(load(tmp_path, text), Failing(tmp_path / "out"))
    assert record.outcome == "error"
    assert record.error == "collecting dumps from sim failed: the dump folder vanished"

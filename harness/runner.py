"""Run one scenario on one target and record what happened (DESIGN.md: the only place that holds
a scenario and a target at once).

Each YAML step becomes one target operation; its outcome is checked by `harness.verify`; dumps
are collected as soon as they appear and kept whatever happens. Listeners (terminal, Allure)
receive step events, in the manner of labgrid's step events, so nothing reports twice.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.dump import DumpFormatError, KernelDump, describe, open_dump
from harness.record import RunRecord, StepRecord
from harness.scenario.loader import LoadedScenario
from harness.scenario.model import (
    AllocStep,
    BufferSlice,
    CallerBytes,
    CreateStep,
    FreeStep,
    IoctlCreateSpec,
    IoctlCreateStep,
    QueryStep,
    RebootStep,
    RemoveStep,
    StepBase,
    StoreCollectionStep,
    StoreStep,
    WaitStep,
)
from harness.target.base import OperationTimeout, Target, TargetError
from harness.target.lkd_ioctl import LiveKernelDumpCreateInput
from harness.target.machine_settings import MachineSettings
from harness.target.ops import (
    Alloc,
    ClientStructure,
    CollectedDump,
    Create,
    DriverInfo,
    Free,
    IoctlCreate,
    Op,
    OpResult,
    QueryDmfDataSize,
    Reboot,
    Remove,
    SecondaryData,
    Store,
    StoreCollection,
    UserBuffer,
    Wait,
)
from harness.target.status import status_name
from harness.verify import (
    BufferView,
    DumpContext,
    Mismatch,
    check_crash_dump,
    check_dump,
    check_dump_count,
    check_dump_folder,
    check_outcome,
    check_value,
)
from harness.verify.evidence import DumpEvidence, dump_evidence
from harness.verify.known_defect import StepFailure, defect_verdict


class RunListener:
    """Receives step events; every method is optional."""

    def scenario_started(self, record: RunRecord) -> None:
        """A scenario begins on a prepared target."""

    def step_started(self, record: RunRecord, step: StepRecord) -> None:
        """A step is about to run."""

    def step_finished(self, record: RunRecord, step: StepRecord) -> None:
        """A step ran (or was skipped after an earlier failure)."""

    def dump_collected(self, record: RunRecord, dump: CollectedDump, summary: str) -> None:
        """A dump was copied from the machine; `summary` is its readable description."""

    def dump_mapped(self, record: RunRecord, step: StepRecord | None, evidence: DumpEvidence) -> None:
        """The verifier's evidence for one collected dump (blocks, blobs, each expectation's
        verdict), after the step that produced it was checked; `step` is None for dumps collected
        outside a step (after a target failure)."""

    def scenario_finished(self, record: RunRecord) -> None:
        """The scenario ended; `record.outcome` is final."""


@dataclass
class BufferState:
    """The runner's view of an allocation: size and content it asked for, address the machine gave."""

    size: int
    data: bytes
    address: int | None = None


def default_pattern(name: str) -> bytes:
    """The content of a buffer allocated without `pattern`: its name and a bar, repeated, so a hex
    dump shows whose bytes these are."""
    return name.encode() + b"|"


def run_scenario(
    loaded: LoadedScenario, target: Target, listeners: Sequence[RunListener] = (), *, prepare: bool = True
) -> RunRecord:
    """Run `loaded` on `target` and return the record; never raises for scenario failures."""
    return ScenarioRun(loaded, target, listeners).run(prepare=prepare)


class ScenarioRun:
    """State of one scenario run: the buffers, the boot, the record being filled."""

    def __init__(self, loaded: LoadedScenario, target: Target, listeners: Sequence[RunListener]) -> None:
        self.loaded = loaded
        self.scenario = loaded.scenario
        self.target = target
        self.listeners = list(listeners)
        self.buffers: dict[str, BufferState] = {}
        self.first_failure: StepFailure | None = None
        self.evidence: dict[Path, DumpEvidence] = {}
        self.timed_out = False  # a step hung: the machine's state is unknown, the rest cannot run
        defect = self.scenario.known_defect
        self.record = RunRecord(
            scenario=loaded.run_name,
            file=loaded.file,
            location=f"{loaded.file}:{loaded.line}:{loaded.col}",
            target=target.name,
            known_defect=defect.id if defect else None,
            output_dir=target.output_dir,
        )

    def run(self, *, prepare: bool = True) -> RunRecord:
        started = time.perf_counter()
        try:
            cannot = self.target.configure(machine_settings(self.loaded))
            if cannot is not None:
                self.record.skip_reason = f"machine: {cannot}"
                return self.record
            if prepare or self.scenario.machine is not None:  # settings take effect at prepare()
                self.target.prepare()
            self.info: DriverInfo = self.target.driver_info()
            facts = self.info.facts  # a simulator's profile, or the DMF build a VM's driver runs
            self.record.profile = facts.get("profile") or facts.get("dmf_build", "")
            self.record.target_facts = {key: str(value) for key, value in facts.items()}
            self.record.defect_active = self.record.known_defect in self.info.known_defects
            missing = sorted(set(self.scenario.requires) - self.info.features)
            if missing:
                offered = ", ".join(sorted(self.info.features)) or "nothing"
                self.record.skip_reason = (
                    f"target {self.target.name} lacks {', '.join(missing)} (it offers {offered})"
                )
            else:
                self._emit("scenario_started", self.record)
                self._run_steps()
        except TargetError as error:
            self.record.error = f"target {self.target.name} failed: {error}"
        finally:
            left = self._collect()  # lose nothing: whatever the machine wrote is kept
            self._map_dumps(None, left, self._buffer_views())
            self.record.seconds = time.perf_counter() - started
            self.record.outcome = self._outcome()
            self._emit("scenario_finished", self.record)
        return self.record

    def _run_steps(self) -> None:
        stop = False
        for index, step in enumerate(self.scenario.steps):
            record = StepRecord(
                index=index + 1,
                operation=self.scenario.step_operation(index),
                title=self._title(step, index),
                location=str(self.loaded.step_locations[index]),
            )
            self.record.steps.append(record)
            if stop:
                self._emit("step_finished", self.record, record)
                continue
            self._emit("step_started", self.record, record)
            began = time.perf_counter()
            mismatches = self._run_step(step, record)
            record.seconds = time.perf_counter() - began
            record.outcome = "failed" if mismatches else "passed"
            record.failures = [self._render(index, record, m) for m in mismatches]
            if mismatches and self.first_failure is None:
                self.first_failure = StepFailure(
                    record.index, record.operation, record.status, record.crash, tuple(mismatches)
                )
            self._emit("step_finished", self.record, record)
            # After an unexpected crash the machine's state is gone: the rest cannot mean anything.
            stop = (record.crash is not None and step.expect.bugcheck is None) or self.timed_out

    def _run_step(self, step: StepBase, record: StepRecord) -> list[Mismatch]:
        """Run the step's operation `repeat` times; every run must meet `expect`, the first that
        does not ends the step (its failure names the repetition)."""
        dumps: list[CollectedDump] = []
        for repetition in range(step.repeat):
            mismatches = self._run_once(step, record)
            dumps += record.dumps
            if mismatches or record.crash is not None:
                if step.repeat > 1 and mismatches:
                    first = mismatches[0]
                    note = f"(repetition {repetition + 1} of {step.repeat}) "
                    mismatches[0] = Mismatch(first.path, note + first.message, first.expected, first.found)
                break
        record.dumps = dumps
        return mismatches

    def _run_once(self, step: StepBase, record: StepRecord) -> list[Mismatch]:
        op = self._op_for(step)
        try:
            result = self.target.execute(op, timeout=step.timeout)
        except OperationTimeout as hung:
            self.timed_out = True
            record.dumps = self._collect()  # whatever the machine wrote before it hung is kept
            return [Mismatch(("timeout",), str(hung))]
        record.status = result.status
        if isinstance(op, Alloc) and result.address is not None:
            self.buffers[op.name].address = result.address
        if result.crash is not None:
            record.crash = result.crash
        views = self._buffer_views()  # before a reboot forgets them: the crash dump holds this boot
        if result.crash is not None or isinstance(op, Reboot):
            self._forget_boot()
        new = self._collect()
        record.dumps = new
        mismatches = self._check_once(step, op, result, new, views)
        self._map_dumps(record, new, views)
        return mismatches

    def _check_once(
        self,
        step: StepBase,
        op: Op,
        result: OpResult,
        new: list[CollectedDump],
        views: dict[str, BufferView] | None = None,
    ) -> list[Mismatch]:
        mismatches = check_outcome(step.expect, result)
        if result.crash is not None:
            crash_dumps = [d for d in new if d.kind == "crash"]
            context = self._context(views, None) if views is not None else None
            mismatches += check_crash_dump(step.expect, result.crash, crash_dumps, context)
        elif isinstance(step, QueryStep):
            mismatches += check_value(step.expect, result.value)
        elif isinstance(op, Create | IoctlCreate) and not mismatches:
            mismatches += self._check_create(step, op, [d for d in new if d.kind == "live"])
        return mismatches

    def _check_create(
        self, step: StepBase, op: Create | IoctlCreate, live: list[CollectedDump]
    ) -> list[Mismatch]:
        mismatches = check_dump_count(step.expect, len(live))
        if mismatches or not live:
            return mismatches
        context = self._context(self._buffer_views(), _requested_bugcheck_code(op))
        folder = check_dump_folder(step.expect, live[0])
        try:
            with open_kernel_dump(live[0].path) as dump:
                mismatches = folder + check_dump(step.expect.dump, dump, context)
                self.evidence[live[0].path] = dump_evidence(dump, step.expect.dump, context)
                return mismatches
        except DumpFormatError as error:
            return [*folder, Mismatch(("expect", "dump"), f"the live dump is malformed: {error}")]

    def _buffer_views(self) -> dict[str, BufferView]:
        return {
            name: BufferView(name, state.address, state.data)
            for name, state in self.buffers.items()
            if state.address is not None
        }

    def _context(self, views: dict[str, BufferView], bugcheck_code: int | None) -> DumpContext:
        return DumpContext(
            buffers=views,
            collection_handle=self.info.collection_handle,
            secondary_data_guid=self.info.secondary_data_guid,
            create_bugcheck_code=bugcheck_code,
        )

    def _map_dumps(
        self, record: StepRecord | None, dumps: list[CollectedDump], views: dict[str, BufferView]
    ) -> None:
        """Hand listeners the verifier's evidence for each new dump: the checked live dump's, or the
        layout of any other (crash dumps, extra live dumps), read once here."""
        for collected in dumps:
            evidence = self.evidence.pop(collected.path, None)
            if evidence is None:
                try:
                    with open_kernel_dump(collected.path) as dump:
                        context = self._context(views, None) if getattr(self, "info", None) else None
                        evidence = dump_evidence(dump, None, context, kind=collected.kind)
                except (DumpFormatError, OSError):
                    continue  # the summary already says what is wrong with it
            if record is not None:
                index = record.index - 1
                evidence = evidence.located(
                    lambda path, i=index: str(self.loaded.location_of(("steps", i, *path)))
                )
            self._emit("dump_mapped", self.record, record, evidence)

    def _forget_boot(self) -> None:
        """After a reboot (or crash) allocations are gone and the driver has a new collection."""
        for state in self.buffers.values():
            state.address = None
        self.info = self.target.driver_info()

    def _op_for(self, step: StepBase) -> Op:
        irql = step.irql
        match step:
            case AllocStep(alloc=spec):
                fill = spec.pattern or (
                    spec.text.encode() if spec.text is not None else default_pattern(spec.name)
                )
                alloc = Alloc(spec.name, spec.size, fill, spec.pool)
                self.buffers[spec.name] = BufferState(spec.size, alloc.content())
                return alloc
            case FreeStep(free=name):
                return Free(name)
            case StoreStep(store=slice_):
                return Store(*self._ref(slice_), irql=irql)
            case RemoveStep(remove=slice_):
                return Remove(*self._ref(slice_), irql=irql)
            case CreateStep(create=spec):
                secondary = (
                    None if spec.secondary_data is None else SecondaryData(*self._ref(spec.secondary_data))
                )
                return Create(
                    bugcheck_code=spec.bugcheck_code,
                    parameter=spec.parameter,
                    exclude_dmf_data=spec.exclude_byte(),
                    client_structures=tuple(ClientStructure(*self._ref(s)) for s in spec.client_structures),
                    secondary_data=secondary,
                    irql=irql,
                )
            case StoreCollectionStep(store_collection=spec):
                return StoreCollection(spec.value, irql)
            case IoctlCreateStep(ioctl_create=spec):
                return self._ioctl_op(spec)
            case QueryStep():
                return QueryDmfDataSize()
            case WaitStep(wait=spec):
                return Wait(spec.seconds)
            case RebootStep():
                return Reboot()
        raise TypeError(f"no operation for step {step!r}")

    def _ioctl_op(self, spec: IoctlCreateSpec) -> IoctlCreate:
        secondary: SecondaryData | UserBuffer | None = None
        if isinstance(spec.secondary_data, CallerBytes):
            secondary = UserBuffer(spec.secondary_data.data())
        elif spec.secondary_data is not None:
            secondary = SecondaryData(*self._ref(spec.secondary_data))
        return IoctlCreate(
            bugcheck_code=spec.bugcheck_code,
            parameter=spec.parameter,
            exclude_dmf_data=spec.exclude_byte(),
            client_structures=tuple(ClientStructure(*self._ref(s)) for s in spec.client_structures),
            secondary_data=secondary,
            raw=spec.raw,
            client_structure_count_override=spec.client_structure_count,
            client_structure_array_override=spec.client_structure_array,
            secondary_size_override=spec.secondary_data_size,
            secondary_address_override=spec.secondary_data_address,
            elevated=spec.caller == "admin",
            write_access=spec.access == "read-write",
            device=spec.device,
        )

    def _ref(self, slice_: BufferSlice) -> tuple[str | int, int, int]:
        """(buffer, length, offset) for an op; the length defaults to the rest of the buffer."""
        if slice_.buffer is None:
            assert slice_.address is not None and slice_.length is not None
            return slice_.address, slice_.length, slice_.offset
        size = self.buffers[slice_.buffer].size
        length = size - slice_.offset if slice_.length is None else slice_.length
        return slice_.buffer, length, slice_.offset

    def _collect(self) -> list[CollectedDump]:
        try:
            new = self.target.collect_dumps()
        except TargetError as error:
            self.record.error = f"collecting dumps from {self.target.name} failed: {error}"
            return []
        for dump in new:
            self.record.dumps.append(dump)
            self._emit("dump_collected", self.record, dump, _summary_text(dump))
        return new

    def _title(self, step: StepBase, index: int) -> str:
        operation = self.scenario.step_operation(index)
        text = step.title or f"{operation} {_argument_text(step, operation)}".strip()
        return f"{text} at {step.irql.name}" if step.irql.value else text

    def _render(self, index: int, record: StepRecord, mismatch: Mismatch) -> str:
        where = self.loaded.location_of(("steps", index, *mismatch.path))
        shown = record.status is not None and record.crash is None
        status = f" [status {status_name(record.status)}]" if shown else ""
        where_text = f"{where}{where.include_note()}"  # a step from a step file names its include
        return f"{where_text}: step {record.index} ({record.title}){status}: {mismatch.render()}"

    def _outcome(self) -> str:
        if self.record.error is not None:
            return "error"
        if self.record.skip_reason is not None:
            return "skipped"
        failed = bool(self.record.failed_steps)
        if self.record.defect_active and self.record.known_defect is not None:
            if not failed:
                return "xpassed"
            # Reproduced only when the first failure is the defect's own (its signature).
            self.record.defect_note = defect_verdict(self.record.known_defect, self.first_failure)
            return "xfailed" if self.record.defect_note is None else "failed"
        return "failed" if failed else "passed"

    def _emit(self, event: str, *args: object) -> None:
        for listener in self.listeners:
            getattr(listener, event)(*args)


def machine_settings(loaded: LoadedScenario) -> MachineSettings:
    """The scenario's `machine:` in the target's terms (empty: the target's own settings)."""
    spec = loaded.scenario.machine
    if spec is None:
        return MachineSettings()
    return MachineSettings(**spec.model_dump(exclude_none=True))


def _argument_text(step: StepBase, operation: str) -> str:
    value = getattr(step, operation)
    if isinstance(value, BufferSlice):
        return value.describe()
    if isinstance(value, str):
        return value
    if operation == "create":
        return f"bugcheck 0x{step.create.bugcheck_code:X}"  # type: ignore[attr-defined]
    if operation == "alloc":
        return f"{value.name} ({value.size} bytes)"
    if operation == "wait":
        return f"{value.seconds:g} s"
    if operation == "store_collection":
        return f"0x{value.value:X}"
    return ""


def _requested_bugcheck_code(op: Create | IoctlCreate) -> int | None:
    """The code the dump must carry: the create's, or what the IOCTL's raw bytes ask for."""
    if isinstance(op, Create) or op.raw is None:
        return op.bugcheck_code
    try:
        return LiveKernelDumpCreateInput.unpack(op.raw).bugcheck_code
    except ValueError:
        return None


def open_kernel_dump(path: Path) -> KernelDump:
    """A collected dump opened by its reader: a triage dump, or a kernel memory dump (a full live
    dump, MEMORY.DMP) that reads by page; a user-mode minidump is not what a kernel writes."""
    opened = open_dump(path)
    if not isinstance(opened, KernelDump):
        opened.close()
        raise DumpFormatError(
            path, "DUMP_HEADER64.Signature", 0, "a user-mode minidump (MDMP), not a kernel dump"
        )
    return opened


def _summary_text(dump: CollectedDump) -> str:
    """The dump's readable description, or what is wrong with it: collecting never fails on this."""
    try:
        opened = open_dump(dump.path)
    except DumpFormatError as error:
        return f"{dump.path.name}: unreadable dump: {error}"
    try:
        return describe(opened)
    finally:
        opened.close()

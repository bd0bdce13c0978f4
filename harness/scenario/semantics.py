"""Checks that need a whole scenario, or the whole set, rather than one node at a time.

pydantic sees each step alone; whether `store: ring_b` names a buffer allocated earlier, or whether two
files both call their scenario `store_then_create`, only shows across steps and files. Each problem is
reported at the node it is about, so the checks walk the models and ask the positions where they were.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from harness.scenario.errors import ScenarioError
from harness.scenario.loaded import LoadedScenario
from harness.scenario.model import (
    AllocStep,
    BufferSlice,
    ContainsItem,
    CreateStep,
    FreeStep,
    IoctlCreateStep,
    RebootStep,
    RemoveStep,
    StepBase,
    StoreStep,
)
from harness.scenario.positions import NodePath
from harness.target.defects import KNOWN_DEFECTS
from harness.target.status import is_success, status_name


@dataclass(frozen=True)
class _BufferUse:
    """A place where a step names a buffer: the path of the node, and the slice when it is one."""

    path: NodePath
    name: str
    slice: BufferSlice | None


@dataclass(frozen=True)
class _Allocation:
    step: int
    size: int


def check_scenario(loaded: LoadedScenario) -> list[ScenarioError]:
    """Buffer names and ranges, and expectations that contradict themselves, in step order."""
    errors: list[ScenarioError] = []
    allocated: dict[str, _Allocation] = {}
    this_boot: set[str] = set()
    first_alloc = _first_allocations(loaded)
    for index, step in enumerate(loaded.scenario.steps):
        for use in _buffer_uses(index, step):
            errors.extend(_check_use(loaded, use, allocated, first_alloc))
        errors.extend(_check_expect(loaded, index, step))
        if isinstance(step, AllocStep):
            name = step.alloc.name
            if name in this_boot:
                # One name, one buffer per boot, so reports and dumps name bytes unambiguously; a
                # reboot (or an expected crash) ends the boot and the name may be allocated again.
                earlier = loaded.step_locations[allocated[name].step]
                path = ("steps", index, "alloc", "name")
                errors.append(loaded.error_at(path, f"buffer '{name}' is already allocated at {earlier}"))
            else:
                allocated[name] = _Allocation(index, step.alloc.size)
                this_boot.add(name)
        if isinstance(step, RebootStep) or step.expect.bugcheck is not None:
            this_boot.clear()
    return errors + _check_known_defect(loaded)


def _check_known_defect(loaded: LoadedScenario) -> list[ScenarioError]:
    """A cited defect must be able to show in this scenario: its signature is observable, and the
    scenario has a step of an operation where it shows (harness.target.defects)."""
    cited = loaded.scenario.known_defect
    if cited is None:
        return []
    defect = KNOWN_DEFECTS[cited.id]
    signature = defect.signature
    path = ("known_defect", "id")
    if not signature.observable:
        message = f"known defect {cited.id} shows in nothing a scenario can check ({defect.summary})"
        return [loaded.error_at(path, message)]
    operations = {loaded.scenario.step_operation(i) for i in range(len(loaded.scenario.steps))}
    if signature.operations and not operations & set(signature.operations):
        wanted = " or ".join(signature.operations)
        message = f"known defect {cited.id} shows at a {wanted} step, and this scenario has none"
        return [loaded.error_at(path, message)]
    return []


def _first_allocations(loaded: LoadedScenario) -> dict[str, int]:
    first: dict[str, int] = {}
    for index, step in enumerate(loaded.scenario.steps):
        if isinstance(step, AllocStep):
            first.setdefault(step.alloc.name, index)
    return first


def _buffer_uses(index: int, step: StepBase) -> Iterator[_BufferUse]:
    base: NodePath = ("steps", index)
    slices: list[tuple[NodePath, BufferSlice]] = []
    if isinstance(step, FreeStep):
        yield _BufferUse((*base, "free"), step.free, None)
    elif isinstance(step, StoreStep | RemoveStep):
        operation = "store" if isinstance(step, StoreStep) else "remove"
        slices.append(((*base, operation), step.store if isinstance(step, StoreStep) else step.remove))
    elif isinstance(step, CreateStep):
        create = (*base, "create")
        slices += [
            ((*create, "client_structures", j), s) for j, s in enumerate(step.create.client_structures)
        ]
        if step.create.secondary_data is not None:
            slices.append(((*create, "secondary_data"), step.create.secondary_data))
    elif isinstance(step, IoctlCreateStep):
        ioctl = (*base, "ioctl_create")
        slices += [
            ((*ioctl, "client_structures", j), s) for j, s in enumerate(step.ioctl_create.client_structures)
        ]
        if isinstance(step.ioctl_create.secondary_data, BufferSlice):
            slices.append(((*ioctl, "secondary_data"), step.ioctl_create.secondary_data))
    dump = step.expect.dump
    if dump is not None:
        at: NodePath = (*base, "expect", "dump")
        slices += [((*at, "contains", j), s) for j, s in enumerate(dump.contains)]
        slices += [((*at, "excludes", j), s) for j, s in enumerate(dump.excludes)]
        for j, blob in enumerate(dump.secondary_data):
            if blob.buffer is not None:
                slices.append(((*at, "secondary_data", j, "buffer"), blob.buffer))
    crash = step.expect.crash_dump
    if crash is not None:
        at = (*base, "expect", "crash_dump")
        slices += [((*at, "contains", j), s) for j, s in enumerate(crash.contains)]
        slices += [((*at, "excludes", j), s) for j, s in enumerate(crash.excludes)]
    for path, piece in slices:
        if piece.buffer is not None:
            yield _BufferUse(path, piece.buffer, piece)


def _check_use(
    loaded: LoadedScenario, use: _BufferUse, allocated: dict[str, _Allocation], first_alloc: dict[str, int]
) -> Iterable[ScenarioError]:
    name_path = use.path if use.slice is None else (*use.path, "buffer")
    allocation = allocated.get(use.name)
    if allocation is None:
        known = ", ".join(allocated) or "none"
        message = f"unknown buffer '{use.name}'; allocated so far: {known}"
        later = first_alloc.get(use.name)
        if later is not None:
            message += f" ('{use.name}' is allocated later, at {loaded.step_locations[later]})"
        return [loaded.error_at(name_path, message)]
    if use.slice is None:
        return []
    return _check_range(loaded, use, allocation)


def _check_range(loaded: LoadedScenario, use: _BufferUse, allocation: _Allocation) -> list[ScenarioError]:
    """A range past the allocation would read memory the scenario does not own: a scenario bug, not a test."""
    piece = use.slice
    assert piece is not None
    size = f"'{use.name}' ({allocation.size} bytes, allocated at {loaded.step_locations[allocation.step]})"
    if piece.length is not None and piece.offset + piece.length > allocation.size:
        end = piece.offset + piece.length
        message = f"offset {piece.offset} + length {piece.length} = {end} is past the end of {size}"
        return [loaded.error_at((*use.path, "length"), message)]
    if piece.length is None and piece.offset > allocation.size:
        return [loaded.error_at((*use.path, "offset"), f"offset {piece.offset} is past the end of {size}")]
    length = allocation.size - piece.offset if piece.length is None else piece.length
    return _check_contains_bytes(loaded, use.path, piece, length)


def _check_contains_bytes(
    loaded: LoadedScenario, path: NodePath, piece: BufferSlice, length: int
) -> list[ScenarioError]:
    """`bytes` of a `contains` item are compared with the start of its range: more bytes than the
    range holds would compare memory the range does not name."""
    if not isinstance(piece, ContainsItem) or piece.bytes is None or len(piece.bytes) <= length:
        return []
    message = f"{len(piece.bytes)} bytes given for {piece.describe()}, whose range holds {length}"
    return [loaded.error_at((*path, "bytes"), message)]


def _check_expect(loaded: LoadedScenario, index: int, step: StepBase) -> list[ScenarioError]:
    errors = []
    expect = step.expect
    for j, item in enumerate(expect.dump.contains if expect.dump is not None else []):
        if item.buffer is None and item.length is not None:
            errors += _check_contains_bytes(
                loaded, ("steps", index, "expect", "dump", "contains", j), item, item.length
            )
    operation = loaded.scenario.step_operation(index)
    if expect.dump is not None and operation not in ("create", "ioctl_create"):
        path = ("steps", index, "expect", "dump")
        message = f"`dump` applies to create and ioctl_create steps only; this is a {operation} step"
        errors.append(loaded.error_at(path, message, key=True))
    if expect.value is not None and operation != "query":
        path = ("steps", index, "expect", "value")
        message = f"`value` applies to query steps only; this is a {operation} step"
        errors.append(loaded.error_at(path, message, key=True))
    if expect.dump_written and expect.status is not None and not is_success(expect.status):
        path = ("steps", index, "expect", "dump_written")
        status = status_name(expect.status)
        message = f"true contradicts the expected failure status {status}: a failed call writes no dump"
        errors.append(loaded.error_at(path, message))
    return errors


def check_duplicate_names(scenarios: Iterable[LoadedScenario]) -> list[ScenarioError]:
    """A scenario name is its test id: a second one would shadow the first. Both places are named."""
    first: dict[str, LoadedScenario] = {}
    errors = []
    for loaded in scenarios:
        name = loaded.run_name  # the rows of one parametrized scenario differ by their ids
        if name in first:
            where = first[name].location_of(("name",))
            errors.append(
                loaded.error_at(("name",), f"duplicate scenario name '{name}'; first defined at {where}")
            )
        else:
            first[name] = loaded
    return errors

"""pydantic's validation errors, turned into `ScenarioError`s that point at the YAML.

pydantic reports a `loc` such as `('steps', 1, 'store', 'store', 'bufer')`. Besides keys and indices it
holds the labels of the union alternatives it tried: the discriminator tag right after a step's index
('store'), a model's name ('CountRange'), a type's ('bool', 'constrained-int'). Walking the loc over the
data and over the model's annotations at once tells the two apart: a label selects a union member and
moves nowhere in the data. The walk also gives what to say: the model that forbids an unknown key
(so its allowed keys can be listed) and the annotation that states the expected range.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from harness.scenario.errors import Location, ScenarioError
from harness.scenario.field_types import (
    TypeAt,
    allowed_keys,
    choose_member,
    describe,
    describe_found,
    field_type,
    list_item,
    model_class,
    union_members,
)
from harness.scenario.model import STEP_KINDS, Scenario, StepBase
from harness.scenario.positions import NodePath, PositionIndex, format_path


@dataclass(frozen=True)
class _Resolved:
    """One pydantic error, placed: the deepest node of the YAML its loc reaches, and what was expected."""

    error: dict[str, Any]
    path: NodePath
    expected: TypeAt | None
    container: type[BaseModel] | None  # the model whose key the last loc element names
    label_index: int | None  # index in the loc of the last union label
    label_path: NodePath  # the data node that union was validating
    label_union: TypeAt | None

    @property
    def loc(self) -> tuple[Any, ...]:
        return tuple(self.error["loc"])


def errors_from_validation(exc: ValidationError, data: Any, positions: PositionIndex) -> list[ScenarioError]:
    """One `ScenarioError` per problem; the alternatives of a union that all failed make one problem."""
    resolved = _drop_misspelt_missing([_resolve(error, data) for error in exc.errors(include_url=False)])
    out: list[ScenarioError] = []
    for group in _union_groups(resolved):
        labels = {r.loc[r.label_index] for r in group if r.label_index is not None}
        if len(labels) < 2:
            out.extend(_single(r, data, positions) for r in group)
            continue
        # An alternative that got inside the value (a mapping given to `int | CountRange`) is the one
        # the author meant: report its errors, not the others' "expected an integer".
        deeper = [r for r in group if r.label_index is not None and len(r.loc) > r.label_index + 1]
        if deeper:
            out.extend(_single(r, data, positions) for r in deeper)
        else:
            out.append(_merged(group, positions))
    return out


def _drop_misspelt_missing(resolved: list[_Resolved]) -> list[_Resolved]:
    """`second: 1` where `seconds` is required is one mistake; the unknown key's "did you mean" says so."""
    suggested = set()
    for r in resolved:
        if r.error["type"] == "extra_forbidden" and r.container is not None:
            close = difflib.get_close_matches(str(r.loc[-1]), allowed_keys(r.container), n=1, cutoff=0.6)
            suggested.update((r.loc[:-1], key) for key in close)
    return [
        r for r in resolved if not (r.error["type"] == "missing" and (r.loc[:-1], r.loc[-1]) in suggested)
    ]


def _resolve(error: dict[str, Any], data: Any) -> _Resolved:
    node, path = data, ()
    expected: TypeAt | None = TypeAt(Scenario)
    container: type[BaseModel] | None = None
    label_index, label_path, label_union = None, (), None
    for index, part in enumerate(error["loc"]):
        members = union_members(expected) if expected is not None else []
        if members:
            chosen, is_label = choose_member(members, part)
            if is_label:
                label_index, label_path, label_union = index, path, expected
                expected = chosen
                continue
            expected = chosen
        cls = model_class(expected)
        if cls is not None:
            expected, container = field_type(cls, part), cls
        else:
            item = list_item(expected)
            expected = item if isinstance(part, int) else None
        # The data moves only where the YAML has the node: a missing key, a shorthand (`store: ring_a`
        # has no `buffer` key) or an unrecognised label leave it at the nearest node written.
        if _has_child(node, part):
            node, path = node[part], (*path, part)
    return _Resolved(error, path, expected, container, label_index, label_path, label_union)


def _has_child(node: Any, part: Any) -> bool:
    if isinstance(node, dict):
        return isinstance(part, str) and part in node
    return isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)


def _union_groups(resolved: list[_Resolved]) -> Iterator[list[_Resolved]]:
    """Errors from the alternatives of one union share the loc up to the union's label."""
    groups: dict[Any, list[_Resolved]] = {}
    for number, r in enumerate(resolved):
        key = ("union", r.loc[: r.label_index]) if r.label_index is not None else ("single", number)
        groups.setdefault(key, []).append(r)
    yield from groups.values()


def _single(r: _Resolved, data: Any, positions: PositionIndex) -> ScenarioError:
    kind = r.error["type"]
    prefix = positions.shown(r.path)
    where = positions.location(r.path)
    if kind == "extra_forbidden":
        message, where = _unknown_key(r, data, positions)
    elif kind == "missing":
        message = f"{prefix}: missing required key '{r.loc[-1]}'"
    elif kind in ("value_error", "assertion_error"):
        message = f"{prefix}: {_validator_message(r.error)}"
    elif kind == "step_operation":
        message = f"{prefix}: {_step_operation_message(r.error.get('input'))}"
    else:
        found = describe_found(r.error.get("input"))
        expected = describe(r.expected)
        message = (
            f"{prefix}: expected {expected}, found {found}" if expected else f"{prefix}: {r.error['msg']}"
        )
    return ScenarioError.at(where, message)


def _unknown_key(r: _Resolved, data: Any, positions: PositionIndex) -> tuple[str, Location]:
    key = str(r.loc[-1])
    named = bool(r.path) and r.path[-1] == key
    parent = r.path[:-1] if named else r.path
    where = positions.location(r.path, key=named)
    message = f"{positions.shown((*parent, key))}: unknown key '{key}' in {_container_name(parent, data)}"
    if r.container is not None:
        allowed = allowed_keys(r.container)
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        if close:
            message += f" (did you mean '{close[0]}'?)"
        message += f"; allowed keys: {', '.join(allowed)}"
    return message, where


def _container_name(parent: NodePath, data: Any) -> str:
    if not parent:
        return "the scenario"
    if len(parent) == 2 and parent[0] == "steps":
        node = _node_at(data, parent)
        present = [key for key in STEP_KINDS if isinstance(node, dict) and key in node]
        return f"a {present[0]} step" if len(present) == 1 else "a step"
    return format_path(parent[-2:]) if isinstance(parent[-1], int) else str(parent[-1])


def _node_at(data: Any, path: NodePath) -> Any:
    for part in path:
        data = data[part]
    return data


def _validator_message(error: dict[str, Any]) -> str:
    cause = (error.get("ctx") or {}).get("error")
    if cause is not None:
        return str(cause)
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


def _step_operation_message(step: Any) -> str:
    operations = ", ".join(STEP_KINDS)
    if not isinstance(step, dict):
        return (
            f"a step is a mapping with exactly one operation key ({operations}); found {describe_found(step)}"
        )
    present = [key for key in step if key in STEP_KINDS]
    if present:
        return (
            f"a step has exactly one operation key; found {len(present)}: {', '.join(present)} (split them)"
        )
    message = f"a step needs exactly one operation key ({operations}); found none"
    others = [key for key in step if key not in StepBase.model_fields]
    for key in others:
        close = difflib.get_close_matches(key, list(STEP_KINDS), n=1, cutoff=0.6)
        if close:
            return message + f" (did you mean '{close[0]}' instead of '{key}'?)"
    return message + (f"; unknown keys: {', '.join(others)}" if others else "")


def _merged(group: list[_Resolved], positions: PositionIndex) -> ScenarioError:
    first = group[0]
    expected = describe(first.label_union)
    if expected is None:
        expected = "one of: " + "; ".join(str(r.error["msg"]) for r in group)
    found = describe_found(first.error.get("input"))
    where = positions.location(first.label_path)
    return ScenarioError.at(where, f"{positions.shown(first.label_path)}: expected {expected}; found {found}")

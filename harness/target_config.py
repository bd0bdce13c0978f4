"""Load a target config file (YAML) into `TargetConfig`, every problem as `file:line:col: message`.

This is the one place where the Windows target's settings meet YAML (DESIGN.md: target/ knows nothing
of YAML). It reads the file with the scenario language's reader, so the YAML rules and the positions
are the same (YAML 1.2, no tags, duplicate keys reported), and walks pydantic's errors over the
config models the way `harness.scenario.validation` walks them over the scenario models, with the
same helpers for "expected ..., found ...". The walk is its own because the scenario one is rooted at
`Scenario`.

A secret field's value is never quoted in a message (`password: hunter2` is refused without repeating
it), and pydantic's own error text, which does quote inputs, never leaves this module.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.scenario.errors import ScenarioError, ScenarioErrors
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
from harness.scenario.positions import NodePath, PositionIndex, format_path
from harness.scenario.yaml_source import read_yaml_stream
from harness.target.pool_config import PoolConfig
from harness.target.sim.config import SimConfig
from harness.target.windows.config import TargetConfig

SECRET_KEYS = frozenset({"password", "passphrase"})
"""Keys whose values may be a secret written by mistake: messages describe them only by type."""


class TargetConfigError(ScenarioError):
    """One problem in a target config file, at its position (same format as a scenario error)."""


class TargetConfigErrors(ScenarioErrors):
    """Every problem found in one target config file, sorted by position."""


def load_target_config(path: Path | str) -> TargetConfig:
    """The validated config; relative paths in it are taken from the file's folder.

    Raises `TargetConfigErrors` with every problem found (the file is fixed in one pass).
    """
    path = Path(path)
    config = parse_target_config(_read_config_text(path), path)
    assert isinstance(config, TargetConfig)
    return config


def _read_config_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TargetConfigErrors([TargetConfigError(path, 1, 1, "no such file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        message = f"cannot read the file: {type(exc).__name__}"
        raise TargetConfigErrors([TargetConfigError(path, 1, 1, message)]) from None


def load_any_target_config(path: Path | str) -> TargetConfig | SimConfig | PoolConfig:
    """A Windows VM config, a simulator config when the file says `kind: sim`, or a pool of
    either when it lists them under `pool:` (harness/target/pool_config.py)."""
    path = Path(path)
    return parse_target_config(_read_config_text(path), path, allow_sim=True)


def parse_target_config(
    text: str, file: Path, *, allow_sim: bool = False
) -> TargetConfig | SimConfig | PoolConfig:
    """`text` as the target config written in `file` (for positions and relative paths)."""
    read = read_yaml_stream(text, file)
    errors = [_as_config_error(error) for error in read.errors]
    if not errors and len(read.documents) != 1:
        line, col = (read.documents[1].line, read.documents[1].col) if read.documents else (1, 1)
        count = "no YAML document" if not read.documents else f"{len(read.documents)} YAML documents"
        errors.append(
            TargetConfigError(file, line, col, f"a target config is one YAML mapping; found {count}")
        )
    if errors:
        raise TargetConfigErrors(errors)
    document = read.documents[0]
    if not isinstance(document.data, dict):
        found = describe_found(document.data)
        message = f"a target config is a mapping with keys name, host, winrm, ...; found {found}"
        raise TargetConfigErrors([TargetConfigError(file, document.line, document.col, message)])
    root: type[TargetConfig] | type[SimConfig] | type[PoolConfig] = TargetConfig
    if allow_sim and document.data.get("kind") == "sim":
        root = SimConfig
    elif allow_sim and "pool" in document.data:
        root = PoolConfig
    try:
        return root.model_validate(document.data, context={"base_dir": file.parent.absolute()})
    except ValidationError as exc:
        problems = errors_from_config_validation(exc, document.data, document.positions, root=root)
    raise TargetConfigErrors(problems)


def _as_config_error(error: ScenarioError) -> TargetConfigError:
    return TargetConfigError(error.file, error.line, error.col, error.message)


@dataclass(frozen=True)
class _Placed:
    """One pydantic error placed on the YAML: the deepest node written, and what the models expected."""

    error: dict[str, Any]
    path: NodePath
    expected: TypeAt | None
    container: type | None  # the model whose key the last loc element names
    union_at: tuple[Any, ...] | None  # the loc of the union whose alternative this error came from
    union_path: NodePath  # the YAML node that union was validating
    secret: bool

    @property
    def loc(self) -> tuple[Any, ...]:
        return tuple(self.error["loc"])


def errors_from_config_validation(
    exc: ValidationError, data: dict[str, Any], positions: PositionIndex, root: type = TargetConfig
) -> list[TargetConfigError]:
    """One error per problem; the alternatives of a union that all failed make one problem."""
    placed = [_place(error, data, root) for error in exc.errors(include_url=False)]
    groups: dict[Any, list[_Placed]] = {}
    for number, item in enumerate(placed):
        key = ("union", item.union_at) if item.union_at is not None else ("one", number)
        groups.setdefault(key, []).append(item)
    out = []
    for group in groups.values():
        union_at = group[0].union_at
        labels = {item.loc[len(union_at)] for item in group} if union_at is not None else set()
        # An alternative that got inside the value is the one the author meant: report its errors.
        deeper = [item for item in group if union_at is not None and len(item.loc) > len(union_at) + 1]
        if len(labels) < 2 or deeper:
            out.extend(_single(item, positions) for item in (deeper or group))
        else:
            out.append(_merged(group, positions))
    return out


def _place(error: dict[str, Any], data: Any, root: type) -> _Placed:
    node, path = data, ()
    expected: TypeAt | None = TypeAt(root)
    container = None
    union_at, union_path = None, ()
    for index, part in enumerate(error["loc"]):
        members = union_members(expected) if expected is not None else []
        if members:
            expected, is_label = choose_member(members, part)
            if is_label:
                union_at, union_path = tuple(error["loc"][:index]), path
                continue
        cls = model_class(expected)
        if cls is not None:
            expected, container = field_type(cls, part), cls
        else:
            expected, container = (list_item(expected) if isinstance(part, int) else None), None
        # The data moves only where the YAML has the node: a missing key stays at its parent.
        if _has_child(node, part):
            node, path = node[part], (*path, part)
    secret = any(part in SECRET_KEYS for part in error["loc"] if isinstance(part, str))
    # A discriminated union's own error (an unknown `kind`) is about the `kind` key when it was written.
    if error["type"] == "hypervisor_kind" and isinstance(node, dict) and "kind" in node:
        path = (*path, "kind")
    return _Placed(error, path, expected, container, union_at, union_path, secret)


def _has_child(node: Any, part: Any) -> bool:
    if isinstance(node, dict):
        return isinstance(part, str) and part in node
    return isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)


def _where(path: NodePath) -> str:
    return format_path(path) if path else "the target config"


def _found(item: _Placed) -> str:
    value = item.error.get("input")
    if item.secret and not isinstance(value, dict | list):
        kind = {str: "a string", int: "an integer", float: "a number", bool: "a boolean"}.get(
            type(value), "a value"
        )
        return f"{kind} (not shown: it may be a secret)"
    return describe_found(value)


def _single(item: _Placed, positions: PositionIndex) -> TargetConfigError:
    kind = item.error["type"]
    line, col = positions.position(item.path)
    if kind == "extra_forbidden":
        key = str(item.loc[-1])
        named = bool(item.path) and item.path[-1] == key
        parent = item.path[:-1] if named else item.path
        line, col = positions.position(item.path, key=named)
        message = f"{_where((*parent, key))}: unknown key '{key}' in {_where(parent)}"
        if item.container is not None:
            keys = allowed_keys(item.container)
            close = difflib.get_close_matches(key, keys, n=1, cutoff=0.6)
            message += f" (did you mean '{close[0]}'?)" if close else ""
            message += f"; allowed keys: {', '.join(keys)}"
    elif kind == "missing":
        message = f"{_where(item.path)}: missing required key '{item.loc[-1]}'"
    elif kind in ("value_error", "assertion_error", "hypervisor_kind"):
        message = f"{_where(item.path)}: {_validator_message(item.error)}"
    else:
        expected = describe(item.expected)
        detail = f"expected {expected}, found {_found(item)}" if expected else _safe_msg(item)
        message = f"{_where(item.path)}: {detail}"
    return TargetConfigError(positions.file, line, col, message)


def _merged(group: list[_Placed], positions: PositionIndex) -> TargetConfigError:
    first = group[0]
    path = first.union_path
    expected = "; ".join(
        sorted({describe(item.expected) or _safe_msg(item) for item in group}, key=str.lower)
    )
    line, col = positions.position(path)
    message = f"{_where(path)}: expected one of: {expected}; found {_found(first)}"
    return TargetConfigError(positions.file, line, col, message)


def _validator_message(error: dict[str, Any]) -> str:
    cause = (error.get("ctx") or {}).get("error")
    message = str(cause) if cause is not None else str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


def _safe_msg(item: _Placed) -> str:
    """pydantic's sentence without the input it sometimes quotes (which may be a secret)."""
    return str(item.error["msg"]) if not item.secret else "invalid value (not shown: it may be a secret)"

"""Expand a scenario document before validation: `parametrize` rows, `vars` and `include` steps.

The expansion works on the plain data the YAML reader gives and rebuilds the position table beside
it, so everything found later (pydantic, the semantic checks, a failed run) still names the line and
column where the node was written, in the scenario file or in the step file it came from
(DESIGN.md: "positions survive expansion"). Written by hand: no library substitutes variables in
plain data while keeping ruamel's positions.

- `parametrize` is a table, a list of mappings with the same keys; each row gives one scenario,
  named by its values (`store_sizes[4096]`), or by its `id` key when it has one.
- `vars` maps names to values; a row's values are variables too. `${name}` as the whole of a string
  takes the value with its type (`size: ${n}` is a number); inside a longer string it is written as
  text (`text: "ring ${n}"`); `$${` is a literal `${`. A var may use the row's values and the vars
  before it.
- a step `include: lib/fill.steps.yaml` (or `{file: ..., vars: {...}}`) is replaced by the steps of
  that step file. A step file is one mapping of `steps`, optional default `vars` (the include's
  `vars` and the scenario's win) and a `description`; its name ends in `.steps.yaml` so folder scans
  never take it for a scenario. Paths are relative to the including file; includes nest.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.scenario.errors import Location, ScenarioError
from harness.scenario.field_types import describe_found
from harness.scenario.positions import NodePath, NodePosition, PositionIndex, format_path
from harness.scenario.yaml_source import YamlDocument, read_yaml_stream

STEP_FILE_SUFFIXES = (".steps.yaml", ".steps.yml")
STEP_FILE_KEYS = ("description", "vars", "steps")
INCLUDE_KEYS = ("file", "vars")
MAX_INCLUDE_DEPTH = 16
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_WHOLE = re.compile(r"^\$\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}$")
Scalar = str | int | float | bool | None


def is_step_file(path: Path) -> bool:
    """A file of shared steps for `include`, not a scenario file."""
    return path.name.lower().endswith(STEP_FILE_SUFFIXES)


@dataclass(frozen=True)
class ParameterRow:
    """One row of a `parametrize` table: its number, its id, its values and where it was written."""

    index: int
    id: str
    values: dict[str, Any]
    location: Location

    def describe(self) -> str:
        """'parametrize row 2 (size=4096) at file:line:col', for messages about this row."""
        shown = ", ".join(f"{name}={value!r}" for name, value in self.values.items())
        return f"parametrize row {self.index + 1} ({shown}) at {self.location}"


@dataclass(frozen=True)
class ExpandedDocument:
    """A document ready for validation: plain data without includes or references, and positions."""

    data: dict[str, Any]
    positions: PositionIndex
    row: ParameterRow | None = None


@dataclass
class StepFileCache:
    """Step files read during one load, by resolved path: each is read (and its errors told) once."""

    documents: dict[Path, YamlDocument | None] = field(default_factory=dict)
    errors: list[ScenarioError] = field(default_factory=list)

    def read(self, path: Path) -> YamlDocument | None:
        key = path.resolve()
        if key not in self.documents:
            self.documents[key] = self._read(path)
        return self.documents[key]

    def _read(self, path: Path) -> YamlDocument | None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            self.errors.append(ScenarioError(path, 1, 1, f"cannot read the step file: {exc}"))
            return None
        read = read_yaml_stream(text, path)
        self.errors += read.errors
        if len(read.documents) != 1 or read.errors:
            if not read.errors:
                count = len(read.documents)
                message = f"a step file holds exactly one document (a mapping with `steps`); found {count}"
                self.errors.append(ScenarioError(path, 1, 1, message))
            return None
        return read.documents[0]


def expand_document(
    document: YamlDocument, file: Path, cache: StepFileCache
) -> tuple[list[ExpandedDocument], list[ScenarioError]]:
    """One expanded document per parametrize row (one in all without a table), or the errors."""
    data = document.data
    positions = document.positions
    source = _Source(file, positions, ())
    errors: list[ScenarioError] = []
    rows = _rows(data.get("parametrize"), source, errors) if "parametrize" in data else [None]
    declared = _declared_vars(data.get("vars"), source, errors) if "vars" in data else {}
    for row in rows:
        for name in declared if row is not None else ():
            if name in row.values:
                message = f"'{name}' is both a var and a parametrize column: rename one"
                errors.append(source.error(("vars", name), message, key=True))
    if errors:
        return [], errors
    out = []
    per_row: list[list[ScenarioError]] = []
    for row in rows:
        per_row.append([])
        expander = _Expander(cache, per_row[-1])
        env = dict(row.values) if row is not None else {}
        resolved = {}
        for name, value in declared.items():
            resolved[name] = env[name] = expander.substitute(value, env, source, ("vars", name))
        expanded: dict[str, Any] = {}
        for key, value in data.items():
            if key == "steps" and isinstance(value, list):
                expanded[key] = expander.steps(value, env, source, ("steps",), ())
            elif key == "vars":
                expanded[key] = resolved
            elif key == "parametrize":
                expanded[key] = value
            else:
                expanded[key] = expander.substitute(value, env, source, (key,))
        entries = {path: where for path, where in positions.entries.items() if path[:1] != ("steps",)}
        entries[("steps",)] = positions.entries.get(("steps",), NodePosition((1, 1), (1, 1)))
        entries.update(expander.entries)
        out.append(ExpandedDocument(expanded, PositionIndex(file, entries), row))
    return out, name_rows([document.row for document in out], per_row)


def name_rows(rows: list[ParameterRow | None], per_row: list[list[ScenarioError]]) -> list[ScenarioError]:
    """An error every row shares is the template's and is told once; one only some rows have names
    the row, so the author sees which values broke it."""
    if len(rows) < 2:
        return [error for found in per_row for error in found]
    everywhere = set.intersection(*(set(found) for found in per_row))
    out = list(everywhere)
    for row, found in zip(rows, per_row, strict=True):
        assert row is not None
        for error in found:
            if error not in everywhere:
                out.append(
                    ScenarioError(error.file, error.line, error.col, f"{error.message} [{row.describe()}]")
                )
    return out


@dataclass(frozen=True)
class _Source:
    """Where the data being expanded was written: its file, positions, and the includes that led here."""

    file: Path
    positions: PositionIndex
    included_from: tuple[Location, ...]

    def location(self, path: NodePath, *, key: bool = False) -> Location:
        at = self.positions.location(path, key=key)
        return Location(at.file, at.line, at.col, self.included_from)

    def error(self, path: NodePath, message: str, *, key: bool = False) -> ScenarioError:
        where = self.positions.nearest(path)
        return ScenarioError.at(self.location(path, key=key), f"{format_path(where)}: {message}")


def _rows(table: Any, source: _Source, errors: list[ScenarioError]) -> list[ParameterRow | None]:
    """The rows of a parametrize table, each checked: same columns, scalar values, distinct ids."""
    if not isinstance(table, list) or not table:
        found = describe_found(table)
        message = f"expected a table: a non-empty list of mappings such as {{size: 4096}}, found {found}"
        errors.append(source.error(("parametrize",), message))
        return []
    rows: list[ParameterRow | None] = []
    columns: list[str] | None = None
    ids: dict[str, int] = {}
    for index, row in enumerate(table):
        path: NodePath = ("parametrize", index)
        if not isinstance(row, dict) or not row:
            errors.append(
                source.error(path, f"a row is a mapping of column to value, found {describe_found(row)}")
            )
            continue
        values = {key: value for key, value in row.items() if key != "id"}
        bad = [key for key in values if not _NAME.match(key)]
        for key in bad:
            errors.append(source.error((*path, key), f"column '{key}' is not a variable name", key=True))
        for key, value in values.items():
            if not isinstance(value, Scalar):
                message = f"a row's value is a number, text or boolean, found {describe_found(value)}"
                errors.append(source.error((*path, key), message))
        if columns is None:
            columns = list(values)
        elif sorted(values) != sorted(columns):
            message = (
                f"a row has the columns of the first row ({', '.join(columns)}); found {', '.join(values)}"
            )
            errors.append(source.error(path, message))
        row_id = str(row["id"]) if "id" in row else "-".join(_id_part(value) for value in values.values())
        if row_id in ids:
            message = f"row id '{row_id}' is already row {ids[row_id] + 1}'s: give the rows an `id`"
            errors.append(source.error(path, message))
        ids[row_id] = index
        rows.append(ParameterRow(index, row_id, values, source.location(path)))
    return rows


def _id_part(value: Any) -> str:
    """pytest's way of naming a parameter by its value; booleans and null as YAML writes them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def _declared_vars(declared: Any, source: _Source, errors: list[ScenarioError]) -> dict[str, Any]:
    if not isinstance(declared, dict):
        errors.append(
            source.error(("vars",), f"expected a mapping of name to value, found {describe_found(declared)}")
        )
        return {}
    for name in declared:
        if not _NAME.match(name):
            message = f"'{name}' is not a variable name (letters, digits and _, not starting with a digit)"
            errors.append(source.error(("vars", name), message, key=True))
    return declared


class _Expander:
    """Substitutes references and splices includes for one row, building the steps' position table."""

    def __init__(self, cache: StepFileCache, errors: list[ScenarioError]) -> None:
        self.cache = cache
        self.errors = errors
        self.entries: dict[NodePath, NodePosition] = {}
        self.step_count = 0

    # -- substitution ---------------------------------------------------------------------------
    def substitute(self, node: Any, env: dict[str, Any], source: _Source, path: NodePath) -> Any:
        if isinstance(node, dict):
            return {key: self.substitute(value, env, source, (*path, key)) for key, value in node.items()}
        if isinstance(node, list):
            return [self.substitute(value, env, source, (*path, index)) for index, value in enumerate(node)]
        if not isinstance(node, str) or "$" not in node:
            return node
        whole = _WHOLE.match(node)
        if whole:
            value = self._lookup(whole.group(1), env, source, path)
            return copy.deepcopy(value)
        return _REFERENCE.sub(self._replacer(env, source, path), node)

    def _replacer(
        self, env: dict[str, Any], source: _Source, path: NodePath
    ) -> Callable[[re.Match[str]], str]:
        def replace(match: re.Match[str]) -> str:
            text = match.group(0)
            if text == "$${":
                return "${"
            name = match.group(1)
            if name is None:
                self.errors.append(
                    source.error(path, "`${` without a closing `}`: write ${name}, or $${ for a literal ${")
                )
                return text
            name = name.strip()
            if not _NAME.match(name):
                self.errors.append(
                    source.error(path, f"'${{{name}}}' does not name a variable: write ${{name}}")
                )
                return text
            value = self._lookup(name, env, source, path)
            if isinstance(value, dict | list):
                message = (
                    f"${{{name}}} is {describe_found(value)}: only a whole value `${{{name}}}` can be one"
                )
                self.errors.append(source.error(path, message))
                return text
            return _id_part(value)

        return replace

    def _lookup(self, name: str, env: dict[str, Any], source: _Source, path: NodePath) -> Any:
        if name in env:
            return env[name]
        message = f"unknown variable '{name}'"
        close = difflib.get_close_matches(name, list(env), n=1, cutoff=0.6)
        if close:
            message += f" (did you mean '{close[0]}'?)"
        message += f"; defined here: {', '.join(env) or 'none'}"
        self.errors.append(source.error(path, message))
        return None

    # -- steps and includes ---------------------------------------------------------------------
    def steps(
        self, steps: list[Any], env: dict[str, Any], source: _Source, path: NodePath, chain: tuple[Path, ...]
    ) -> list[Any]:
        """The steps with every include spliced in; each step's positions move to its new index."""
        out: list[Any] = []
        for index, step in enumerate(steps):
            step_path = (*path, index)
            if isinstance(step, dict) and "include" in step:
                out += self._include(step, env, source, step_path, chain)
                continue
            self._move_positions(source, step_path, ("steps", self.step_count))
            self.step_count += 1
            out.append(self.substitute(step, env, source, step_path))
        return out

    def _move_positions(self, source: _Source, old: NodePath, new: NodePath) -> None:
        for node, where in source.positions.entries.items():
            if node[: len(old)] == old:
                moved = (*new, *node[len(old) :])
                if source.included_from:  # written in a step file: keep its file and the include chain
                    where = NodePosition(
                        where.key, where.value, source.positions.file, source.included_from, node
                    )
                elif moved != node:
                    where = NodePosition(where.key, where.value, written_as=node)
                self.entries[moved] = where

    def _include(
        self,
        step: dict[str, Any],
        env: dict[str, Any],
        source: _Source,
        path: NodePath,
        chain: tuple[Path, ...],
    ) -> list[Any]:
        spec = self._include_spec(step, env, source, path)
        if spec is None:
            return []
        name, overrides = spec
        target = (source.positions.file.parent / name) if not Path(name).is_absolute() else Path(name)
        file_path = (*path, "include", "file") if isinstance(step["include"], dict) else (*path, "include")
        if not is_step_file(target):
            message = f"'{name}' is not a step file: its name ends in .steps.yaml (folder scans then skip it)"
            self.errors.append(source.error(file_path, message))
            return []
        if not target.is_file():
            self.errors.append(source.error(file_path, f"no such step file: {target}"))
            return []
        resolved = target.resolve()
        chain = chain or (source.positions.file.resolve(),)
        if resolved in chain or len(chain) > MAX_INCLUDE_DEPTH:
            shown = " -> ".join(p.name for p in (*chain, resolved))
            self.errors.append(
                source.error(file_path, f"include cycle (or deeper than {MAX_INCLUDE_DEPTH}): {shown}")
            )
            return []
        document = self.cache.read(target)
        if document is None:
            return []
        inner = _Source(target, document.positions, (source.location(path), *source.included_from))
        body = self._step_file_body(document, inner)
        if body is None:
            return []
        defaults, steps = body
        inner_env = dict(env)
        for key, value in defaults.items():
            if key not in overrides and key not in env:
                inner_env[key] = self.substitute(value, inner_env, inner, ("vars", key))
        inner_env.update(overrides)
        return self.steps(steps, inner_env, inner, ("steps",), (*chain, resolved))

    def _include_spec(
        self, step: dict[str, Any], env: dict[str, Any], source: _Source, path: NodePath
    ) -> tuple[str, dict[str, Any]] | None:
        others = [key for key in step if key != "include"]
        if others:
            message = f"an include step takes only `include` (put {', '.join(others)} on the included steps)"
            self.errors.append(source.error((*path, others[0]), message, key=True))
            return None
        spec = self.substitute(step["include"], env, source, (*path, "include"))
        if isinstance(spec, str):
            return spec, {}
        if not isinstance(spec, dict) or not isinstance(spec.get("file"), str):
            message = (
                f"expected a step file's path, or {{file: PATH, vars: {{...}}}}; found {describe_found(spec)}"
            )
            self.errors.append(source.error((*path, "include"), message))
            return None
        unknown = [key for key in spec if key not in INCLUDE_KEYS]
        if unknown:
            message = f"unknown key '{unknown[0]}' in include; allowed keys: {', '.join(INCLUDE_KEYS)}"
            self.errors.append(source.error((*path, "include", unknown[0]), message, key=True))
            return None
        overrides = spec.get("vars", {})
        if not isinstance(overrides, dict):
            message = f"expected a mapping of name to value, found {describe_found(overrides)}"
            self.errors.append(source.error((*path, "include", "vars"), message))
            return None
        return spec["file"], overrides

    def _step_file_body(
        self, document: YamlDocument, inner: _Source
    ) -> tuple[dict[str, Any], list[Any]] | None:
        data = document.data
        if not isinstance(data, dict) or not isinstance(data.get("steps"), list) or not data["steps"]:
            found = describe_found(data.get("steps") if isinstance(data, dict) else data)
            self.errors.append(
                inner.error(
                    ("steps",), f"a step file is a mapping with a non-empty list of `steps`; found {found}"
                )
            )
            return None
        unknown = [key for key in data if key not in STEP_FILE_KEYS]
        for key in unknown:
            message = f"unknown key '{key}' in a step file; allowed keys: {', '.join(STEP_FILE_KEYS)}"
            self.errors.append(inner.error((key,), message, key=True))
        defaults = data.get("vars", {})
        if not isinstance(defaults, dict):
            self.errors.append(
                inner.error(
                    ("vars",), f"expected a mapping of name to value, found {describe_found(defaults)}"
                )
            )
            return None
        return None if unknown else (defaults, data["steps"])

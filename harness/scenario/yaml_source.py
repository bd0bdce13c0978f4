"""Read a YAML stream into plain Python data plus the position of every node.

Why not hand ruamel's objects straight to pydantic: its round-trip types (HexInt, ScalarFloat,
CommentedMap...) are subclasses that leak formatting into the models and into comparisons, so the data
is rebuilt from plain dict, list, int, float, str, bool and None, and the positions kept beside it.

The language is YAML 1.2 (ruamel's default): `on`, `yes`, `no` and `off` stay strings, `0x1A2` is
an integer and `017` is seventeen. (pydantic's lax mode still reads the string 'yes' as true in a
boolean field; `reboot: on` is refused, `Literal[True]` being strict.) A `%YAML 1.1` directive would
bring the 1.1 meanings back, so it is refused, and so are explicit tags (`!!int`, `!foo`): a scenario
never needs them, and refusing them up front keeps ruamel from failing on them with errors that carry
no position.

Before constructing, one pass over ruamel's parse events finds syntax errors, tags and duplicate keys,
every one of them with its position, so a file with several of these reports them all.
"""

from __future__ import annotations

import datetime
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError, YAMLWarning
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    DocumentStartEvent,
    MappingStartEvent,
    ScalarEvent,
)
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.scalarbool import ScalarBoolean

from harness.scenario.errors import ScenarioError
from harness.scenario.positions import NodePath, NodePosition, Position, PositionIndex, format_path

_NODE_EVENTS = (ScalarEvent, AliasEvent, CollectionStartEvent)


@dataclass(frozen=True)
class YamlDocument:
    """One document of a stream: plain data, where it starts, and where each of its nodes is."""

    data: Any
    line: int
    col: int
    positions: PositionIndex


@dataclass
class YamlRead:
    """What a stream gave: the documents that could be read, and every problem found."""

    documents: list[YamlDocument] = field(default_factory=list)
    errors: list[ScenarioError] = field(default_factory=list)


def read_yaml_stream(text: str, file: Path) -> YamlRead:
    """Every document of `text`; problems come back as errors, never as exceptions.

    ruamel's warnings (an anchor defined twice, which YAML allows: the later one counts) are silenced:
    they would print its internals, and not as `file:line:col`.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", YAMLWarning)
        return _read(text, file)


def _read(text: str, file: Path) -> YamlRead:
    result = YamlRead()
    scan = _scan_events(text, file, result.errors)
    if scan.refused:
        return result
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = True  # the event scan reported each duplicate with both positions
    try:
        for number, raw in enumerate(yaml.load_all(text)):
            line, col = scan.starts[number] if number < len(scan.starts) else (1, 1)
            result.documents.append(_Converter(file, result.errors).document(raw, line, col))
    except Exception as exc:  # the documents before a syntax error are kept; the scan reported the error
        if not scan.broken:
            result.errors.append(_yaml_error(exc, text, file))
    return result


@dataclass
class _Scan:
    """What the event pass found: where each document starts, and whether the stream can be constructed."""

    starts: list[Position] = field(default_factory=list)
    refused: bool = False  # a tag or a %YAML 1.1 directive: constructing would fail or mean something else
    broken: bool = False  # a syntax error, already reported


def _scan_events(text: str, file: Path, errors: list[ScenarioError]) -> _Scan:
    """One pass over the parse events: document starts; syntax errors, tags and duplicate keys reported."""
    scan = _Scan()
    frames: list[_Frame] = []
    pending_start: Position | None = None
    try:
        for event in YAML(typ="rt").parse(text):
            if isinstance(event, DocumentStartEvent):
                frames.clear()
                pending_start = _pos(event)
                if event.version is not None and tuple(event.version) != (1, 2):
                    scan.refused = True
                    errors.append(
                        _at(file, event, "the scenario language is YAML 1.2: remove the %YAML directive")
                    )
            if isinstance(event, _NODE_EVENTS):
                if pending_start is not None:
                    empty = isinstance(event, ScalarEvent) and event.value == "" and event.style is None
                    scan.starts.append(pending_start if empty else _pos(event))  # empty: its `---`
                    pending_start = None
                scan.refused |= _check_tag(event, file, errors)
                _check_key(event, frames, file, errors)
            if isinstance(event, CollectionStartEvent):
                frames.append(_Frame(isinstance(event, MappingStartEvent)))
            elif isinstance(event, CollectionEndEvent):
                frames.pop()
                _node_done(frames)
    except (
        Exception
    ) as exc:  # ruamel's parser raises YAMLError subclasses; anything else is still no traceback
        scan.broken = True
        errors.append(_yaml_error(exc, text, file))
    return scan


@dataclass
class _Frame:
    """An open collection during the scan, and where in it the scan is (for the path in messages).

    In a mapping keys and values alternate; the keys seen so far find duplicates.
    """

    mapping: bool
    expect_key: bool = True
    keys: dict[str, Position] = field(default_factory=dict)
    part: str | int = -1  # the key whose value, or the index of the item, being read


def _check_tag(event: Any, file: Path, errors: list[ScenarioError]) -> bool:
    tag = getattr(event, "tag", None)
    if tag is None:
        return False
    shown = str(getattr(tag, "value", tag)).replace("tag:yaml.org,2002:", "!!")
    errors.append(_at(file, event, f"YAML tags such as {shown} are not part of the scenario language"))
    return True


def _check_key(event: Any, frames: list[_Frame], file: Path, errors: list[ScenarioError]) -> None:
    frame = frames[-1] if frames else None
    if frame is not None and not frame.mapping and isinstance(frame.part, int):
        frame.part += 1
    if frame is not None and frame.mapping and frame.expect_key:
        key = str(event.value) if isinstance(event, ScalarEvent) else "?"
        first = frame.keys.get(key) if isinstance(event, ScalarEvent) else None
        if first is not None:
            where = format_path((*(outer.part for outer in frames[:-1]), key))
            message = f"{where}: duplicate key '{key}' (first written at line {first[0]}, column {first[1]})"
            errors.append(_at(file, event, message))
        elif isinstance(event, ScalarEvent):
            frame.keys[key] = _pos(event)
        frame.part = key
    if not isinstance(event, CollectionStartEvent):
        _node_done(frames)


def _node_done(frames: list[_Frame]) -> None:
    """A whole node ended: inside a mapping, keys and values alternate."""
    if frames and frames[-1].mapping:
        frames[-1].expect_key = not frames[-1].expect_key


def _pos(event: Any) -> Position:
    return (event.start_mark.line + 1, event.start_mark.column + 1)


def _at(file: Path, event: Any, message: str) -> ScenarioError:
    line, col = _pos(event)
    return ScenarioError(file, line, col, message)


def _yaml_error(exc: Exception, text: str, file: Path) -> ScenarioError:
    """A ruamel failure at the position it names (the problem's mark, else its context's)."""
    if isinstance(exc, MarkedYAMLError):
        mark, context = exc.problem_mark or exc.context_mark, exc.context_mark
        detail = "; ".join(str(part) for part in (exc.context, exc.problem) if part)
        if (
            context is not None
            and mark is not None
            and (context.line, context.column) != (mark.line, mark.column)
        ):
            detail += f" (the construct began at line {context.line + 1}, column {context.column + 1})"
        if mark is not None:
            return ScenarioError(file, mark.line + 1, mark.column + 1, f"YAML syntax: {detail}")
        return ScenarioError(file, 1, 1, f"YAML syntax: {detail}")
    if isinstance(exc, ReaderError):
        before = text[: exc.position]
        line = before.count("\n") + 1
        col = exc.position - (before.rfind("\n") + 1) + 1
        return ScenarioError(file, line, col, f"YAML syntax: {exc.reason} (character {exc.character!r})")
    kind = "YAML syntax" if isinstance(exc, YAMLError) else "YAML"
    return ScenarioError(file, 1, 1, f"{kind}: cannot read the file: {exc}")


class _Converter:
    """Rebuilds one document as plain data, recording every node's position on the way."""

    def __init__(self, file: Path, errors: list[ScenarioError]) -> None:
        self.file = file
        self.errors = errors
        self.entries: dict[NodePath, NodePosition] = {}
        self.active: set[int] = set()  # containers being converted: an alias back to one is a cycle

    def document(self, raw: Any, line: int, col: int) -> YamlDocument:
        start = _lc_start(raw) or (line, col)
        data = self.plain(raw, (), NodePosition(start, start))
        return YamlDocument(data, start[0], start[1], PositionIndex(self.file, self.entries))

    def plain(self, node: Any, path: NodePath, where: NodePosition) -> Any:
        self.entries[path] = where
        if isinstance(node, dict | list):
            if id(node) in self.active:
                self.errors.append(ScenarioError(self.file, *where.value, "an alias refers to itself"))
                return None
            self.active.add(id(node))
            try:
                return (
                    self._mapping(node, path, where) if isinstance(node, dict) else self._sequence(node, path)
                )
            finally:
                self.active.discard(id(node))
        return self._scalar(node, where)

    def _mapping(self, node: dict[Any, Any], path: NodePath, where: NodePosition) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for raw_key, value in node.items():
            key = _key_text(raw_key)
            key_pos = _lc(node, "key", raw_key) or where.value  # keys merged in with `<<` have no mark here
            value_pos = _lc(node, "value", raw_key) or key_pos
            if value is None and value_pos[0] != key_pos[0]:
                value_pos = key_pos  # `key:` with nothing after it: ruamel marks the next line
            out[key] = self.plain(value, (*path, key), NodePosition(key_pos, value_pos))
        return out

    def _sequence(self, node: list[Any], path: NodePath) -> list[Any]:
        out = []
        for index, value in enumerate(node):
            item_pos = _lc(node, "item", index) or self.entries[path].value
            out.append(self.plain(value, (*path, index), NodePosition(item_pos, item_pos)))
        return out

    def _scalar(self, node: Any, where: NodePosition) -> Any:
        if node is None or isinstance(node, bool):
            return node
        if isinstance(node, ScalarBoolean):  # an int subclass: must be caught before int
            return bool(node)
        if isinstance(node, int):
            return int(node)  # HexInt, ScalarInt, ... become plain int
        if isinstance(node, float):
            return float(node)
        if isinstance(node, str):
            return str(node)
        if isinstance(node, datetime.date):  # ruamel still resolves 2024-01-01; the text is what was meant
            return node.isoformat()
        message = f"unsupported YAML value of type {type(node).__name__}"
        self.errors.append(ScenarioError(self.file, *where.value, message))
        return None


def _key_text(key: Any) -> str:
    """Keys become strings: the language has no other kind, and `1:` then reads as unknown key '1'."""
    if isinstance(key, bool | ScalarBoolean):
        return "true" if key else "false"
    if key is None:
        return "null"
    return str(key)


def _lc(node: Any, kind: str, index: Any) -> Position | None:
    try:
        line, col = getattr(node.lc, kind)(index)
    except (AttributeError, KeyError, IndexError, TypeError):
        return None
    return (line + 1, col + 1)


def _lc_start(node: Any) -> Position | None:
    lc = getattr(node, "lc", None)
    if lc is None or lc.line is None:
        return None
    return (lc.line + 1, lc.col + 1)

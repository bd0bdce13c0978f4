"""Where each part of a loaded YAML document was written.

The loader turns ruamel's commented nodes into plain Python data before pydantic sees them, so the
positions have to travel separately: a table from the path of a node, `("steps", 3, "store", "buffer")`,
to the position of its key and of its value. Errors found long after loading (semantic checks, a failed
run) ask this table where to point.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.scenario.errors import Location

PathPart = str | int
NodePath = tuple[PathPart, ...]
Position = tuple[int, int]  # 1-based (line, column)


def format_path(path: NodePath) -> str:
    """`steps[3].store.buffer`: the way a user would name the node; the document itself is `scenario`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "scenario"


@dataclass(frozen=True)
class NodePosition:
    """Where a node's key (for list items: the item itself) and its value start.

    `file` is set for nodes written in another file than the document's (a step file brought in by
    `include`), and `included_from` names the include steps that brought them, innermost first.
    `written_as` is the node's path where it was written when expansion moved it (a step after an
    include, or from a step file): messages name the node as the author wrote it.
    """

    key: Position
    value: Position
    file: Path | None = None
    included_from: tuple[Location, ...] = ()
    written_as: NodePath | None = None


@dataclass(frozen=True)
class PositionIndex:
    """Positions of every node of one document, by path; the empty path is the document."""

    file: Path
    entries: Mapping[NodePath, NodePosition] = field(default_factory=dict)

    def nearest(self, path: NodePath) -> NodePath:
        """The longest prefix of `path` that was written in the file.

        A shorthand (`store: ring_a`) has no `buffer` key of its own, and a missing key has no
        position: both are best shown at the closest node that exists.
        """
        for length in range(len(path), -1, -1):
            if path[:length] in self.entries:
                return path[:length]
        return ()

    def shown(self, path: NodePath) -> str:
        """The nearest node written at or above `path`, named as in its own file (`steps[0].store` of
        a step file, not the scenario's expanded index)."""
        nearest = self.nearest(path)
        entry = self.entries.get(nearest)
        return format_path(entry.written_as if entry is not None and entry.written_as else nearest)

    def position(self, path: NodePath, *, key: bool = False) -> Position:
        """The position of the node at `path` (or of the nearest one written): its value, or its key."""
        entry = self.entries.get(self.nearest(path))
        if entry is None:
            return (1, 1)
        return entry.key if key else entry.value

    def location(self, path: NodePath, *, key: bool = False) -> Location:
        """Where the node at `path` (or the nearest one written) is: its file, line and column."""
        entry = self.entries.get(self.nearest(path))
        line, col = self.position(path, key=key)
        if entry is None or entry.file is None:
            return Location(self.file, line, col)
        return Location(entry.file, line, col, entry.included_from)

"""Positions in scenario files and the errors that carry them.

Every problem in a scenario file is reported as `file:line:col: message` (1-based, the way editors
and compilers print them), so a user can jump to it; see STYLE.md, "Tavern".
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, order=True)
class Location:
    """A place in a scenario file; line and column are 1-based.

    A node that an `include` step brought in from a step file is placed in that file, and
    `included_from` names the include steps that brought it, innermost first, so a message can say
    both where the node was written and which scenario used it.
    """

    file: Path
    line: int
    col: int
    included_from: tuple[Location, ...] = field(default=(), compare=False)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def include_note(self) -> str:
        """' (included from a.yaml:7:5)' for a node from a step file, else ''."""
        if not self.included_from:
            return ""
        return " (included from " + ", from ".join(str(at) for at in self.included_from) + ")"


class ScenarioError(Exception):
    """One problem in a scenario file, with the position it is about."""

    def __init__(self, file: Path | str, line: int, col: int, message: str) -> None:
        # args mirror the constructor so the exception pickles (pytest-xdist sends errors between processes)
        super().__init__(Path(file), line, col, message)
        self.file = Path(file)
        self.line = line
        self.col = col
        self.message = message

    @classmethod
    def at(cls, location: Location, message: str) -> ScenarioError:
        """The error at a `Location` already known (for semantic and run-time checks); a node from a
        step file names the include that brought it in."""
        return cls(location.file, location.line, location.col, message + location.include_note())

    @property
    def location(self) -> Location:
        return Location(self.file, self.line, self.col)

    def sort_key(self) -> tuple[str, int, int, str]:
        """Files by name, then by position: the order a reader walks through them."""
        return (str(self.file), self.line, self.col, self.message)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"

    def __repr__(self) -> str:
        return f"ScenarioError({str(self.file)!r}, {self.line}, {self.col}, {self.message!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ScenarioError):
            return NotImplemented
        return self.sort_key() == other.sort_key()

    def __hash__(self) -> int:
        return hash(self.sort_key())


class ScenarioErrors(Exception):
    """All the problems found in one or more files, sorted by position.

    A file rarely has a single mistake; reporting them all at once saves an edit-run cycle per mistake.
    """

    def __init__(self, errors: Iterable[ScenarioError]) -> None:
        unique = sorted(set(errors), key=ScenarioError.sort_key)
        super().__init__(unique)
        self.errors: list[ScenarioError] = unique

    def __str__(self) -> str:
        return "\n".join(str(error) for error in self.errors)

    def __len__(self) -> int:
        return len(self.errors)

    def __iter__(self) -> Iterator[ScenarioError]:
        return iter(self.errors)

"""A validated scenario together with where it was written.

The position of every node travels with the scenario (the Tavern habit), so whoever finds a problem
later, the semantic checks or the runner naming a failed expectation, can point at the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from harness.scenario.errors import Location, ScenarioError
from harness.scenario.expand import ParameterRow
from harness.scenario.model import Scenario
from harness.scenario.positions import NodePath, PositionIndex


@dataclass(frozen=True)
class LoadedScenario:
    """One scenario document: the model, its file, its start (the `name` key) and each step's position."""

    scenario: Scenario
    file: Path
    line: int
    col: int
    step_locations: tuple[Location, ...]
    positions: PositionIndex = field(repr=False, compare=False)
    document_index: int = 0  # which document of the file (0-based), for messages about the stream
    row: ParameterRow | None = None  # the parametrize row this scenario was expanded from

    @property
    def run_name(self) -> str:
        """The name a run and its record use: `store_sizes[4096]` for a parametrize row."""
        name = self.scenario.name
        return f"{name}[{self.row.id}]" if self.row is not None else name

    @property
    def folder_name(self) -> str:
        """`run_name` as a folder name (`store_sizes-4096`): no brackets or separators."""
        name = self.scenario.name if self.row is None else f"{self.scenario.name}-{self.row.id}"
        return re.sub(r"[^A-Za-z0-9_.-]", "_", name)

    @property
    def location(self) -> Location:
        return Location(self.file, self.line, self.col)

    def location_of(self, path: NodePath, *, key: bool = False) -> Location:
        """Where the node at `path` was written, e.g. `("steps", 4, "expect", "dump", "contains", 1)`.

        A path into a shorthand or to a key that was left out (a default) names the nearest node that
        was written. `key=True` points at the key rather than its value.
        """
        return self.positions.location(path, key=key)

    def written_path(self, path: NodePath) -> NodePath:
        """The longest prefix of `path` written in the file: the node a message should name."""
        return self.positions.nearest(path)

    def error_at(self, path: NodePath, message: str, *, key: bool = False) -> ScenarioError:
        """A `ScenarioError` at `path` whose message starts with the path, as every scenario error does."""
        return ScenarioError.at(self.location_of(path, key=key), f"{self.positions.shown(path)}: {message}")

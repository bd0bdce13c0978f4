"""`lkdh check`: validate scenario files without running anything.

It loads everything it is given and reports every problem in every file, never stopping at the first
file, so one run of `lkdh check scenarios/` lists all that needs fixing. The CLI exits 2 when
`CheckReport.errors` is not empty.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from harness.scenario.errors import ScenarioError
from harness.scenario.loader import PathLike, collect_scenarios


@dataclass(frozen=True)
class CheckReport:
    """What a check saw: files read, scenario documents found, and every problem, sorted by position."""

    files: int
    scenarios: int
    errors: tuple[ScenarioError, ...]

    @property
    def ok(self) -> bool:
        return not self.errors


def check_paths(paths: PathLike | Iterable[PathLike]) -> CheckReport:
    """Check files and folders (every *.yaml / *.yml inside, recursively)."""
    result = collect_scenarios(paths)
    errors = tuple(sorted(set(result.errors), key=ScenarioError.sort_key))
    return CheckReport(files=len(result.files), scenarios=result.documents, errors=errors)


def format_check_report(report: CheckReport) -> str:
    """One `file:line:col: message` line per problem, then `checked 7 files, 9 scenarios: 2 errors`."""
    lines = [str(error) for error in report.errors]
    count = len(report.errors)
    lines.append(
        f"checked {_plural(report.files, 'file')}, {_plural(report.scenarios, 'scenario')}: "
        f"{_plural(count, 'error')}"
    )
    return "\n".join(lines)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"

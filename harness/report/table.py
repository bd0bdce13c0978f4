"""The per-scenario result table `lkdh run` prints, and the terminal listener that feeds it."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from harness.record import RunRecord, StepRecord
from harness.runner import RunListener

OUTCOME_LABELS = {
    "passed": "PASS",
    "failed": "FAIL",
    "xfailed": "XFAIL",
    "xpassed": "XPASS",
    "skipped": "SKIP",
    "error": "ERROR",
}


def result_table(records: Sequence[RunRecord]) -> str:
    """One row per scenario: outcome, name, target/profile, steps passed, dumps, time, first failure."""
    header = ("RESULT", "SCENARIO", "TARGET", "STEPS", "DUMPS", "TIME", "DETAIL")
    rows = [header]
    for record in records:
        passed = sum(1 for step in record.steps if step.outcome == "passed")
        target = f"{record.target}/{record.profile}" if record.profile else record.target
        rows.append(
            (
                OUTCOME_LABELS[record.outcome],
                record.scenario,
                target,
                f"{passed}/{len(record.steps)}",
                str(len(record.dumps)),
                f"{record.seconds * 1000:.0f} ms",
                _detail(record),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1]
        for row in rows
    ]
    lines.insert(1, "-" * min(max(len(line) for line in lines), 120))
    return "\n".join(line.rstrip() for line in lines)


def totals_line(records: Sequence[RunRecord]) -> str:
    """'7 scenarios: 5 passed, 2 xfailed' in a fixed order."""
    counts = {outcome: sum(1 for r in records if r.outcome == outcome) for outcome in OUTCOME_LABELS}
    parts = [f"{count} {outcome}" for outcome, count in counts.items() if count]
    return f"{len(records)} scenarios: " + ", ".join(parts)


def _detail(record: RunRecord) -> str:
    if record.outcome == "xfailed":
        return f"known defect {record.known_defect} reproduced"
    if record.outcome == "xpassed":
        return f"known defect {record.known_defect} did NOT reproduce"
    if record.error:
        return record.error.splitlines()[0]
    if record.skip_reason:
        return record.skip_reason
    failed = record.failed_steps
    if failed:
        first = failed[0].failures[0].splitlines()[0] if failed[0].failures else failed[0].title
        return first
    return ""


class TerminalProgress(RunListener):
    """Prints one line per finished step when verbose, nothing otherwise."""

    def __init__(self, stream: TextIO = sys.stdout, verbose: bool = False) -> None:
        self.stream = stream
        self.verbose = verbose

    def step_finished(self, record: RunRecord, step: StepRecord) -> None:
        if self.verbose:
            self.stream.write(f"  {record.scenario} step {step.index}: {step.title}: {step.outcome}\n")

"""The per-scenario result table `lkdh run` prints (the live progress is `progress.py`)."""

from __future__ import annotations

from collections.abc import Sequence

from harness.record import RunRecord

OUTCOME_LABELS = {
    "passed": "PASS",
    "failed": "FAIL",
    "xfailed": "XFAIL",
    "xpassed": "XPASS",
    "skipped": "SKIP",
    "error": "ERROR",
}


TABLE_WIDTH = 100
"""The summary fits a 100-column terminal or CI log; the full failure text is printed below it."""
NAME_WIDTH = 36


def result_table(records: Sequence[RunRecord], width: int = TABLE_WIDTH) -> str:
    """One row per scenario: outcome, name, target/profile, steps passed, dumps, time, first failure;
    cells that would push a row past `width` columns are cut with '…'."""
    header = ("RESULT", "SCENARIO", "TARGET", "STEPS", "DUMPS", "TIME", "DETAIL")
    rows = [header]
    for record in records:
        passed = sum(1 for step in record.steps if step.outcome == "passed")
        target = f"{record.target}/{record.profile}" if record.profile else record.target
        rows.append(
            (
                OUTCOME_LABELS[record.outcome],
                _cut(record.scenario, NAME_WIDTH),
                _cut(target, 20),
                f"{passed}/{len(record.steps)}",
                str(len(record.dumps)),
                f"{record.seconds * 1000:.0f} ms",
                _detail(record),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    room = max(width - sum(widths) - 2 * (len(header) - 1), 8)
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + _cut(row[-1], room)
        for row in rows
    ]
    lines.insert(1, "-" * min(max(len(line.rstrip()) for line in lines), width))
    return "\n".join(line.rstrip() for line in lines)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


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

"""The coverage report as one self-contained HTML page (no script, no external asset), and the
writer that puts it beside its JSON (`lkdh coverage --out DIR`: coverage.json, coverage.html).

Every text is escaped with `html.escape`: scenario names and fact texts come from files a user wrote.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from harness.report.coverage import (
    API_ROUTINES,
    CELL_REASONS,
    OUTCOMES,
    STATED_VERIFIER_STATES,
    VERIFIER_CELL_REASONS,
    VERIFIER_STATES,
    CoverageReport,
)
from harness.target.irql import Irql

_STYLE = """
body { font-family: sans-serif; margin: 1.5em; }
table { border-collapse: collapse; margin-bottom: 2em; }
th, td { border: 1px solid #999; padding: 0.25em 0.5em; vertical-align: top; font-size: 0.9em; }
td.uncovered { background: #f8c0c0; } td.reason { background: #eee; color: #555; }
td.covered { background: #d8f0d0; }
"""


def render_coverage_html(report: CoverageReport) -> str:
    verdict = "complete" if report.complete else "INCOMPLETE"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>lkdh coverage</title>',
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>lkdh coverage: {verdict}</h1>",
        f"<p>{report.scenarios} scenarios; facts from {escape(report.facts_source)}.</p>",
        '<h2>API &times; IRQL &times; Verifier &times; outcome</h2><table id="matrix">',
        _matrix_header(),
        *(_matrix_row(report, api, irql) for api in API_ROUTINES for irql in Irql),
        '</table><h2>DMF facts</h2><table id="facts">',
        "<tr><th>fact</th><th>state</th><th>scenarios or reason</th></tr>",
        *(_fact_row(fact.id, fact.state, fact.scenarios, fact.reason) for fact in report.facts),
        "</table>",
    ]
    if report.unknown_citations:
        items = "".join(
            f"<li>{escape(name)} cites {escape(fact)}</li>" for name, fact in report.unknown_citations
        )
        parts.append(f"<h2>Unknown fact ids</h2><ul>{items}</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_coverage(report: CoverageReport, out: Path) -> tuple[Path, Path]:
    """`out/coverage.json` and `out/coverage.html`."""
    out.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out / "coverage.json", out / "coverage.html"
    json_path.write_text(json.dumps(report.as_json(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    html_path.write_text(render_coverage_html(report), encoding="utf-8")
    return json_path, html_path


def _matrix_header() -> str:
    top = "".join(f'<th colspan="{len(OUTCOMES)}">verifier {state}</th>' for state in VERIFIER_STATES)
    below = "".join(f"<th>{escape(outcome)}</th>" for _ in VERIFIER_STATES for outcome in OUTCOMES)
    return f'<tr><th rowspan="2">API</th><th rowspan="2">IRQL</th>{top}</tr><tr>{below}</tr>'


def _matrix_row(report: CoverageReport, api: str, irql: Irql) -> str:
    head = f"<td>{escape(API_ROUTINES[api])}</td><td>{irql.name}</td>"
    uses = report.cell_steps(api, irql)
    span = len(VERIFIER_STATES) * len(OUTCOMES)
    if not uses:
        reason = CELL_REASONS.get((api, irql))
        if reason:
            return f'<tr>{head}<td class="reason" colspan="{span}">not reachable: {escape(reason)}</td></tr>'
        return f'<tr>{head}<td class="uncovered" colspan="{span}">UNCOVERED</td></tr>'
    cells = []
    for state in VERIFIER_STATES:
        if state in STATED_VERIFIER_STATES and not report.verifier_cell_steps(api, irql, state):
            reason = VERIFIER_CELL_REASONS.get((api, irql, state))
            css, text = (
                ("reason", f"no outcome stated: {escape(reason)}") if reason else ("uncovered", "UNCOVERED")
            )
            cells.append(f'<td class="{css}" colspan="{len(OUTCOMES)}">{text}</td>')
            continue
        for outcome in OUTCOMES:
            labels = [use.label() for use in uses if use.verifier == state and use.outcome == outcome]
            text = "<br>".join(escape(label) for label in labels)
            cells.append(f'<td class="covered">{text}</td>' if labels else "<td></td>")
    return f"<tr>{head}{''.join(cells)}</tr>"


def _fact_row(fact_id: str, state: str, scenarios: tuple[str, ...], reason: str | None) -> str:
    css = {"covered": "covered", "unshowable": "reason"}.get(state, "uncovered")
    detail = ", ".join(escape(name) for name in scenarios) if scenarios else escape(reason or "UNCOVERED")
    return f'<tr><td>{fact_id}</td><td class="{css}">{state}</td><td>{detail}</td></tr>'

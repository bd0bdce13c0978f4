"""`lkdh coverage`: the API x IRQL x Verifier x outcome matrix and the facts each scenario rests on."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.cli import main
from harness.report.coverage import (
    CELL_REASONS,
    UNSHOWABLE_FACTS,
    VERIFIER_CELL_REASONS,
    compute_coverage,
    format_coverage,
)
from harness.report.coverage_html import render_coverage_html
from harness.report.dmf_facts import FACT_IDS, Fact, FactBook, load_fact_book
from harness.scenario import ScenarioErrors, load_scenario_file, load_scenarios
from harness.target.irql import Irql

REPO_ROOT = Path(__file__).resolve().parents[1]
BUILT_IN = FactBook({fact_id: Fact(fact_id) for fact_id in FACT_IDS}, "built-in id list", {})

SMALL_SUITE = """\
name: store_everywhere
facts: [F11, F28]
requires: [verifier]
steps:
  - alloc: {name: a, size: 16}
  - store: a
    irql: DISPATCH_LEVEL
  - store: a
    repeat: 3
  - create: {bugcheck_code: 1}
    irql: APC_LEVEL
    expect: {bugcheck: [0xD1]}
---
name: failing_calls
facts: [F99]
known_defect: {id: remove-null-context, reason: F13}
steps:
  - alloc: {name: a, size: 16}
  - remove: a
  - create: {bugcheck_code: 1}
    expect: STATUS_INVALID_PARAMETER
  - create: {bugcheck_code: 1}
    expect: {dump_written: false}
  - ioctl_create: {bugcheck_code: 2}
"""


def small_report(tmp_path: Path):
    path = tmp_path / "suite.yaml"
    path.write_text(SMALL_SUITE)
    return compute_coverage(load_scenario_file(path), BUILT_IN)


def test_steps_land_in_their_api_irql_verifier_and_outcome_cells(tmp_path: Path) -> None:
    report = small_report(tmp_path)
    cells = {(use.api, use.irql, use.verifier, use.outcome, use.label()) for use in report.steps}
    assert cells == {
        ("store", Irql.DISPATCH_LEVEL, "on", "success", "store_everywhere#2"),
        ("store", Irql.PASSIVE_LEVEL, "on", "success", "store_everywhere#3"),  # a repeat counts once
        ("create", Irql.APC_LEVEL, "on", "bugcheck", "store_everywhere#4"),
        ("remove", Irql.PASSIVE_LEVEL, "target", "success", "failing_calls#2"),
        ("create", Irql.PASSIVE_LEVEL, "target", "status", "failing_calls#3"),
        ("create", Irql.PASSIVE_LEVEL, "target", "no dump", "failing_calls#4"),
        ("ioctl_create", Irql.PASSIVE_LEVEL, "target", "success", "failing_calls#5"),
    }
    matrix = report.as_json()["matrix"]
    row = next(
        r
        for r in matrix
        if (r["api"], r["irql"], r["verifier"], r["outcome"]) == ("store", "DISPATCH_LEVEL", "on", "success")
    )
    assert row["routine"] == "DMF_LiveKernelDump_DataBufferSourceAdd"
    assert row["steps"] == [{"step": "store_everywhere#2", "location": f"{tmp_path / 'suite.yaml'}:6:5"}]
    assert len(matrix) == 5 * 3 * 3 * 4  # every API x IRQL x Verifier x outcome, empty ones too


def test_uncovered_cells_are_those_without_steps_or_reason(tmp_path: Path) -> None:
    report = small_report(tmp_path)
    uncovered = set(report.uncovered_cells())
    assert ("remove", Irql.DISPATCH_LEVEL) in uncovered and ("store", Irql.APC_LEVEL) in uncovered
    assert ("store", Irql.DISPATCH_LEVEL) not in uncovered
    assert not uncovered & set(CELL_REASONS)  # a stated reason explains the IOCTL's raised IRQLs
    assert "  remove           DISPATCH_LEVEL UNCOVERED" in format_coverage(report)


def test_each_reached_cell_needs_verifier_on_and_off_and_target_proves_neither(tmp_path: Path) -> None:
    report = small_report(tmp_path)
    uncovered = set(report.uncovered_verifier_cells())
    assert ("store", Irql.PASSIVE_LEVEL, "off") in uncovered  # only `requires: [verifier]` stores
    assert ("store", Irql.PASSIVE_LEVEL, "on") not in uncovered
    # failing_calls leaves Verifier to the target: neither state is covered by it
    assert {("remove", Irql.PASSIVE_LEVEL, "on"), ("remove", Irql.PASSIVE_LEVEL, "off")} <= uncovered
    assert ("store", Irql.DISPATCH_LEVEL, "off") not in uncovered  # a stated reason (F14)
    assert not {cell for cell in uncovered if cell[:2] in CELL_REASONS}  # unreachable in both states
    assert not report.complete
    text = format_coverage(report)
    assert "verifier off: UNCOVERED" in text and "verifier off: no outcome stated: without Driver" in text
    cell = next(c for c in report.as_json()["cells"] if (c["api"], c["irql"]) == ("store", "DISPATCH_LEVEL"))
    assert cell["verifier"]["on"] == {"covered": True, "reason": None}
    assert cell["verifier"]["off"]["reason"] == VERIFIER_CELL_REASONS[("store", Irql.DISPATCH_LEVEL, "off")]


def test_a_reason_for_a_verifier_cell_a_scenario_covers_is_stale(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: s\nmachine: {verifier: false}\nsteps:\n  - alloc: {name: a, size: 8}\n"
        "  - store: a\n    irql: DISPATCH_LEVEL\n"
    )
    report = compute_coverage(load_scenario_file(path), BUILT_IN)
    assert report.stale_cell_reasons() == [("store", Irql.DISPATCH_LEVEL, "off")]
    assert "reason for store DISPATCH_LEVEL verifier off is stale" in format_coverage(report)
    assert report.as_json()["stale_cell_reasons"] == [
        {"api": "store", "irql": "DISPATCH_LEVEL", "verifier": "off"}
    ]


def test_facts_come_from_the_field_and_the_known_defect_and_nothing_is_dropped(tmp_path: Path) -> None:
    report = small_report(tmp_path)
    state = {fact.id: (fact.state, fact.scenarios) for fact in report.facts}
    assert state["F11"] == ("covered", ("store_everywhere",))
    assert state["F13"] == ("covered", ("failing_calls",))  # from remove-null-context's facts
    assert state["F33"] == ("covered", ("failing_calls",))
    assert state["F44"][0] == "unshowable" and state["F01"][0] == "uncovered"
    assert [fact.id for fact in report.facts] == list(FACT_IDS)
    assert report.unknown_citations == [("failing_calls", "F99")]
    assert not report.complete


def test_a_reason_for_a_covered_fact_is_reported_stale(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nfacts: [F44]\nsteps:\n  - wait: 1\n")
    (fact,) = [f for f in compute_coverage(load_scenario_file(path), BUILT_IN).facts if f.id == "F44"]
    assert fact.state == "covered" and fact.stale_reason


@pytest.mark.parametrize("value", ["[13]", "[F1]", "[G13]", "F13"])
def test_facts_field_is_a_list_of_fact_ids_with_a_position(tmp_path: Path, value: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(f"name: bad\nfacts: {value}\nsteps:\n  - wait: 1\n")
    with pytest.raises(ScenarioErrors) as caught:
        load_scenario_file(path)
    assert f"{path}:2:" in str(caught.value)


def test_the_shipped_suite_leaves_nothing_uncovered_without_a_reason() -> None:
    """Done means (issue 11): no fact, no API x IRQL cell and no API x IRQL x Verifier cell is
    uncovered without a stated reason, and no reason is stale, so a scenario removed or a fact
    dropped from one fails here. Uses the real DMF_FACTS.md when present, the built-in ids otherwise."""
    report = compute_coverage(load_scenarios(REPO_ROOT / "scenarios"), load_fact_book())
    assert report.uncovered_facts() == []
    assert report.uncovered_cells() == []
    assert report.uncovered_verifier_cells() == []
    assert report.stale_cell_reasons() == []
    assert report.unknown_citations == []
    assert [fact.id for fact in report.facts if fact.stale_reason] == []
    assert report.complete
    assert set(UNSHOWABLE_FACTS) <= set(FACT_IDS)


def test_cli_prints_and_writes_json_and_html(tmp_path: Path, capsys) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(SMALL_SUITE)
    assert main(["coverage", str(suite), "--out", str(tmp_path / "cov")]) == 1  # incomplete: exit 1
    printed = capsys.readouterr().out
    assert "API x IRQL x Verifier x outcome (2 scenarios" in printed
    document = json.loads((tmp_path / "cov" / "coverage.json").read_text())
    assert document["complete"] is False and {"facts", "cells"} <= set(document["uncovered"])
    assert {"scenario": "failing_calls", "fact": "F99"} in document["unknown_citations"]
    assert main(["coverage", str(REPO_ROOT / "scenarios")]) == 0
    assert main(["coverage", str(tmp_path / "absent.yaml")]) == 2


def test_html_escapes_what_users_wrote(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nfacts: [F13]\nsteps:\n  - wait: 1\n")
    book = FactBook({"F13": Fact("F13")}, "<b>facts</b>", {})
    page = render_coverage_html(compute_coverage(load_scenario_file(path), book))
    assert "&lt;b&gt;facts&lt;/b&gt;" in page and "<b>facts</b>" not in page


def test_html_page_renders_in_chromium(tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium not installed (.ci/run installs it)")
    assert main(["coverage", str(REPO_ROOT / "scenarios"), "--out", str(tmp_path)]) == 0
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
    ]
    result = subprocess.run(
        [
            chromium,
            *flags,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            (tmp_path / "coverage.html").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    dom = result.stdout
    assert "<h1>lkdh coverage: complete</h1>" in dom, result.stderr[-2000:]
    assert 'id="matrix"' in dom and 'id="facts"' in dom
    assert "DMF_LiveKernelDump_DataBufferSourceRemove" in dom and "not reachable:" in dom

"""`lkdh coverage`: what a set of scenarios exercises, from the scenarios and the fact ids alone.

Two views, both computed without a target (DESIGN.md: coverage is a property of the suite):

- the **matrix** API x IRQL x Verifier x outcome: every step of a module API (`store`, `remove`,
  `create`, `store_collection`, `ioctl_create`) by the IRQL it runs at, whether Driver Verifier is
  on for it, and the outcome its `expect` states (the documented contract's: `success`, `status`
  (a failure status), `bugcheck`, `no dump`). Verifier is `on` when the scenario `requires:
  [verifier]` or its `machine:` settings turn it on, `off` when they turn it off, and `target` when
  the scenario leaves it to the target. An API x IRQL cell no scenario reaches must have a reason
  in `CELL_REASONS`; and each reached cell must be reached with Verifier on and with it off
  (`target` proves neither), or have a reason in `VERIFIER_CELL_REASONS`.
- the **facts**: every DMF_FACTS.md id (parsed from the reference, else `FACT_IDS`) with the
  scenarios that rest on it. A scenario declares them in `facts: [F13, F33]`; its known defect's
  facts count too. A fact no scenario can show is listed with its reason from `UNSHOWABLE_FACTS`;
  anything else uncovered is reported as such, never dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.report.dmf_facts import FactBook
from harness.scenario import LoadedScenario
from harness.scenario.model import Expect, StepBase, step_kind
from harness.target.defects import KNOWN_DEFECTS
from harness.target.irql import Irql
from harness.target.status import STATUS_CODES

API_ROUTINES: dict[str, str] = {
    "store": "DMF_LiveKernelDump_DataBufferSourceAdd",
    "remove": "DMF_LiveKernelDump_DataBufferSourceRemove",
    "create": "DMF_LiveKernelDump_LiveKernelMemoryDumpCreate",
    "store_collection": "DMF_LiveKernelDump_StoreDmfCollectionAsBugcheckParameter",
    "ioctl_create": "IOCTL_LIVEKERNELDUMP_CREATE",
}
"""The module's APIs a scenario step calls, by the step's operation key."""

VERIFIER_STATES = ("on", "off", "target")
OUTCOMES = ("success", "status", "bugcheck", "no dump")

CELL_REASONS: dict[tuple[str, Irql], str] = {
    ("ioctl_create", Irql.APC_LEVEL): "an application's DeviceIoControl reaches the handler at PASSIVE_LEVEL "
    "(F31); no caller can choose another IRQL",
    ("ioctl_create", Irql.DISPATCH_LEVEL): "an application's DeviceIoControl reaches the handler at "
    "PASSIVE_LEVEL (F31); no caller can choose another IRQL",
}
"""API x IRQL cells no scenario can reach, with the reason (for Verifier on and off alike)."""

STATED_VERIFIER_STATES = ("on", "off")
"""The Verifier states a cell must be covered in; `target` (left to the target) proves neither."""

_INTERMITTENT = (
    "without Driver Verifier {what} at DISPATCH_LEVEL faults only when the page is out or the lock "
    "contended: undefined and intermittent on a real machine (F14), so no scenario can state a "
    "repeatable outcome (the simulator lets the call through)"
)
VERIFIER_CELL_REASONS: dict[tuple[str, Irql, str], str] = {
    ("store", Irql.DISPATCH_LEVEL, "off"): _INTERMITTENT.format(what="the paged wait-lock helper (F38)"),
    ("remove", Irql.DISPATCH_LEVEL, "off"): _INTERMITTENT.format(what="the paged wait-lock helper (F38)"),
    ("create", Irql.DISPATCH_LEVEL, "off"): _INTERMITTENT.format(what="the paged routine (F29)"),
    ("store_collection", Irql.DISPATCH_LEVEL, "off"): _INTERMITTENT.format(what="the paged routine (F30)"),
}
"""API x IRQL x Verifier cells no scenario can state an outcome for, with the reason. An entry for a
cell some scenario covers is reported as stale."""

UNSHOWABLE_FACTS: dict[str, str] = {
    "F43": "build-time: only a driver built against a debug (checked) DMF asserts the input size; the "
    "shipped test driver is a release build",
    "F44": "build-time: which WDK linked lkmdtel.lib against which NTDDI target the code was compiled "
    "for; a driver package is one build (its consequence, no dump before RS3, is F04's scenario)",
}
"""Facts no scenario can show, with the reason (build-time facts). An entry for a fact some scenario
covers is reported as stale."""


@dataclass(frozen=True)
class StepUse:
    """One API step: which scenario, where, and the cell it falls in."""

    scenario: str
    step: int
    location: str
    api: str
    irql: Irql
    verifier: str
    outcome: str

    def label(self) -> str:
        return f"{self.scenario}#{self.step}"


@dataclass(frozen=True)
class FactCoverage:
    id: str
    state: str  # "covered", "unshowable", "uncovered"
    scenarios: tuple[str, ...]
    reason: str | None
    stale_reason: bool = False
    """Listed in UNSHOWABLE_FACTS although a scenario covers it: the table needs updating."""


@dataclass
class CoverageReport:
    """Everything `lkdh coverage` prints and writes."""

    scenarios: int
    facts_source: str
    steps: list[StepUse] = field(default_factory=list)
    facts: list[FactCoverage] = field(default_factory=list)
    unknown_citations: list[tuple[str, str]] = field(default_factory=list)
    """(scenario, fact id) pairs citing an id the fact book does not define."""

    def cell_steps(self, api: str, irql: Irql) -> list[StepUse]:
        return [use for use in self.steps if use.api == api and use.irql == irql]

    def uncovered_cells(self) -> list[tuple[str, Irql]]:
        """API x IRQL cells no step reaches and no reason explains."""
        return [
            (api, irql)
            for api in API_ROUTINES
            for irql in Irql
            if not self.cell_steps(api, irql) and (api, irql) not in CELL_REASONS
        ]

    def uncovered_verifier_cells(self) -> list[tuple[str, Irql, str]]:
        """API x IRQL x Verifier (on, off) cells no step reaches and no reason explains; a cell
        whose API x IRQL is unreachable (CELL_REASONS) is explained in both states."""
        return [
            (api, irql, state)
            for api in API_ROUTINES
            for irql in Irql
            if (api, irql) not in CELL_REASONS
            for state in STATED_VERIFIER_STATES
            if not self.verifier_cell_steps(api, irql, state)
            and (api, irql, state) not in VERIFIER_CELL_REASONS
        ]

    def verifier_cell_steps(self, api: str, irql: Irql, state: str) -> list[StepUse]:
        return [use for use in self.cell_steps(api, irql) if use.verifier == state]

    def stale_cell_reasons(self) -> list[tuple[str, Irql, str]]:
        """VERIFIER_CELL_REASONS entries for cells a scenario now covers: the table needs updating."""
        return [cell for cell in VERIFIER_CELL_REASONS if self.verifier_cell_steps(*cell)]

    def uncovered_facts(self) -> list[str]:
        return [fact.id for fact in self.facts if fact.state == "uncovered"]

    @property
    def complete(self) -> bool:
        """Nothing uncovered without a reason, no unknown id cited, no stale reason."""
        stale = any(fact.stale_reason for fact in self.facts) or bool(self.stale_cell_reasons())
        return not (
            self.uncovered_cells()
            or self.uncovered_verifier_cells()
            or self.uncovered_facts()
            or self.unknown_citations
            or stale
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "scenarios": self.scenarios,
            "facts_source": self.facts_source,
            "complete": self.complete,
            "matrix": _matrix_json(self),
            "cells": [_cell_json(self, api, irql) for api in API_ROUTINES for irql in Irql],
            "facts": [
                {
                    "id": fact.id,
                    "state": fact.state,
                    "scenarios": list(fact.scenarios),
                    "reason": fact.reason,
                    "stale_reason": fact.stale_reason,
                }
                for fact in self.facts
            ],
            "unknown_citations": [{"scenario": s, "fact": f} for s, f in self.unknown_citations],
            "uncovered": {
                "facts": self.uncovered_facts(),
                "cells": [{"api": api, "irql": irql.name} for api, irql in self.uncovered_cells()],
                "verifier_cells": [
                    {"api": api, "irql": irql.name, "verifier": state}
                    for api, irql, state in self.uncovered_verifier_cells()
                ],
            },
            "stale_cell_reasons": [
                {"api": api, "irql": irql.name, "verifier": state}
                for api, irql, state in self.stale_cell_reasons()
            ],
        }


def scenario_facts(loaded: LoadedScenario) -> list[str]:
    """The fact ids a scenario rests on: its `facts:` and its known defect's facts, in order, once."""
    declared = list(loaded.scenario.facts)
    defect = loaded.scenario.known_defect
    if defect is not None:
        declared += KNOWN_DEFECTS[defect.id].facts
    return list(dict.fromkeys(declared))


def scenario_verifier(loaded: LoadedScenario) -> str:
    """`on`/`off` when the scenario decides Driver Verifier, `target` when it leaves it to the target.

    `machine: {verifier: ...}` (issue 11 part A) is read when the language has it.
    """
    machine = getattr(loaded.scenario, "machine", None)
    chosen = getattr(machine, "verifier", None)
    if chosen is not None:
        return "on" if chosen else "off"
    return "on" if "verifier" in loaded.scenario.requires else "target"


def expected_outcome(expect: Expect) -> str:
    """The outcome a step's `expect` states (the documented contract)."""
    if expect.bugcheck is not None:
        return "bugcheck"
    if expect.status is not None and expect.status != STATUS_CODES["STATUS_SUCCESS"]:
        return "status"
    if expect.dump_written is False:
        return "no dump"
    return "success"


def compute_coverage(scenarios: Sequence[LoadedScenario], facts: FactBook) -> CoverageReport:
    report = CoverageReport(scenarios=len(scenarios), facts_source=facts.source)
    citing: dict[str, list[str]] = {}
    for loaded in scenarios:
        report.steps += _api_steps(loaded)
        for fact_id in scenario_facts(loaded):
            if fact_id not in facts.facts:
                report.unknown_citations.append((loaded.scenario.name, fact_id))
            names = citing.setdefault(fact_id, [])
            if loaded.scenario.name not in names:  # parametrize rows share a name
                names.append(loaded.scenario.name)
    for fact_id in facts.facts:
        names = tuple(citing.get(fact_id, ()))
        reason = UNSHOWABLE_FACTS.get(fact_id)
        state = "covered" if names else "unshowable" if reason else "uncovered"
        report.facts.append(FactCoverage(fact_id, state, names, reason, stale_reason=bool(names and reason)))
    return report


def _api_steps(loaded: LoadedScenario) -> list[StepUse]:
    verifier = scenario_verifier(loaded)
    uses = []
    for index, step in enumerate(loaded.scenario.steps):
        api = step_kind(step)
        if api not in API_ROUTINES:
            continue
        assert isinstance(step, StepBase)
        location = loaded.step_locations[index]
        uses.append(
            StepUse(
                loaded.scenario.name,
                index + 1,
                f"{location.file}:{location.line}:{location.col}",
                api,
                step.irql,
                verifier,
                expected_outcome(step.expect),
            )
        )
    return uses


def _matrix_json(report: CoverageReport) -> list[dict[str, Any]]:
    rows = []
    for api, routine in API_ROUTINES.items():
        for irql in Irql:
            for verifier in VERIFIER_STATES:
                for outcome in OUTCOMES:
                    uses = [
                        use
                        for use in report.cell_steps(api, irql)
                        if use.verifier == verifier and use.outcome == outcome
                    ]
                    rows.append(
                        {
                            "api": api,
                            "routine": routine,
                            "irql": irql.name,
                            "verifier": verifier,
                            "outcome": outcome,
                            "steps": [{"step": use.label(), "location": use.location} for use in uses],
                        }
                    )
    return rows


def _cell_json(report: CoverageReport, api: str, irql: Irql) -> dict[str, Any]:
    uses = report.cell_steps(api, irql)
    return {
        "api": api,
        "irql": irql.name,
        "covered": bool(uses),
        "scenarios": sorted({use.scenario for use in uses}),
        "reason": None if uses else CELL_REASONS.get((api, irql)),
        "verifier": {
            state: {
                "covered": bool(report.verifier_cell_steps(api, irql, state)),
                "reason": None
                if report.verifier_cell_steps(api, irql, state)
                else CELL_REASONS.get((api, irql)) or VERIFIER_CELL_REASONS.get((api, irql, state)),
            }
            for state in STATED_VERIFIER_STATES
        },
    }


def format_coverage(report: CoverageReport) -> str:
    """The terminal view: one line per API x IRQL cell, one per fact, then the verdict."""
    lines = [f"API x IRQL x Verifier x outcome ({report.scenarios} scenarios; steps as scenario#step)"]
    for api in API_ROUTINES:
        for irql in Irql:
            uses = report.cell_steps(api, irql)
            if not uses:
                reason = CELL_REASONS.get((api, irql))
                detail = f"not reachable: {reason}" if reason else "UNCOVERED"
            else:
                detail = "  ".join(_cell_counts(uses))
            lines.append(f"  {api:<17}{irql.name:<15}{detail}")
            if uses:
                lines += _missing_verifier_states(report, api, irql)
    lines.append(f"\nDMF facts ({report.facts_source})")
    for fact in report.facts:
        if fact.state == "covered":
            shown = ", ".join(fact.scenarios[:4]) + (
                f" (+{len(fact.scenarios) - 4})" if len(fact.scenarios) > 4 else ""
            )
            stale = "  [UNSHOWABLE_FACTS entry is stale]" if fact.stale_reason else ""
            lines.append(f"  {fact.id} covered by {len(fact.scenarios)}: {shown}{stale}")
        elif fact.state == "unshowable":
            lines.append(f"  {fact.id} not showable: {fact.reason}")
        else:
            lines.append(f"  {fact.id} UNCOVERED")
    lines += [f"  unknown fact {fact} cited by {name}" for name, fact in report.unknown_citations]
    covered = sum(fact.state == "covered" for fact in report.facts)
    unshowable = sum(fact.state == "unshowable" for fact in report.facts)
    lines += [
        f"  reason for {api} {irql.name} verifier {state} is stale: a scenario covers it"
        for api, irql, state in report.stale_cell_reasons()
    ]
    lines.append(
        f"\n{covered} facts covered, {unshowable} not showable (with reasons), "
        f"{len(report.uncovered_facts())} uncovered; "
        f"{len(report.uncovered_cells())} API x IRQL cells uncovered, "
        f"{len(report.uncovered_verifier_cells())} API x IRQL x Verifier cells uncovered"
    )
    return "\n".join(lines)


def _missing_verifier_states(report: CoverageReport, api: str, irql: Irql) -> list[str]:
    """One line per stated Verifier state no step of a reached cell runs in: its reason or UNCOVERED."""
    lines = []
    for state in STATED_VERIFIER_STATES:
        if report.verifier_cell_steps(api, irql, state):
            continue
        reason = VERIFIER_CELL_REASONS.get((api, irql, state))
        detail = f"no outcome stated: {reason}" if reason else "UNCOVERED"
        lines.append(f"  {'':<17}{'':<15}verifier {state}: {detail}")
    return lines


def _cell_counts(uses: list[StepUse]) -> list[str]:
    parts = []
    for verifier in VERIFIER_STATES:
        counts = [
            f"{outcome} {n}"
            for outcome in OUTCOMES
            if (n := sum(1 for use in uses if use.verifier == verifier and use.outcome == outcome))
        ]
        if counts:
            parts.append(f"verifier {verifier}: " + ", ".join(counts))
    return parts

"""`lkdh explore`: generated call sequences, checked against the contract model, shrunk to YAML.

hypothesis generates sequences of `Call`s (store / remove at PASSIVE, APC or DISPATCH, create at
PASSIVE with or without DMF data); each sequence is turned into a scenario whose expectations are
the contract model's predictions (`model.py`), loaded by the ordinary loader and run on a fresh
simulated machine. A sequence the target fails is a disagreement; `hypothesis.find` shrinks it to a
minimal one, which is written out as a ready YAML scenario. After a finding, the campaign goes on
looking for a disagreement that fails at another (operation, IRQL), until the budget is spent, so
one run finds several defects. The seed fixes every choice: the same seed gives the same findings.

This is generate-and-shrink over whole sequences (`hypothesis.find` with a list strategy), not
hypothesis' RuleBasedStateMachine: each example must run as one scenario on a fresh machine, so the
sequence is built first and run whole, which is also what makes it a replayable file.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from random import Random

from harness.explore.model import BUFFERS, Call, scenario_yaml
from harness.record import RunRecord
from harness.runner import run_scenario
from harness.scenario import load_scenario_file
from harness.target.irql import Irql
from harness.target.sim import SimSettings, SimulatedMachine


@dataclass(frozen=True)
class Finding:
    """A minimal sequence the target disagreed with the model on, and where it first failed."""

    calls: tuple[Call, ...]
    operation: str
    irql: str
    message: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.operation, self.irql)


@dataclass
class Campaign:
    """One seeded exploration of the simulator with `profile`."""

    seed: int
    steps: int
    profile: str = "dmf-bfac434"
    examples: int = 60
    """hypothesis' budget per search (examples tried before a search gives up)."""
    max_findings: int = 4
    findings: list[Finding] = field(default_factory=list)
    runs: int = 0

    def run(self, progress: Callable[[str], None] = lambda _: None) -> list[Finding]:
        for _ in range(self.max_findings):
            finding = self._search()
            if finding is None:
                break
            self.findings.append(finding)
            progress(f"found: {' -> '.join(c.describe() for c in finding.calls)} fails at {finding.key}")
        return self.findings

    def _search(self) -> Finding | None:
        from hypothesis import HealthCheck, find, settings
        from hypothesis.errors import NoSuchExample

        known = {finding.key for finding in self.findings}
        try:
            calls = find(
                call_sequences(self.steps, avoid=known),
                lambda calls: (found := self.check(calls)) is not None and found.key not in known,
                settings=settings(
                    max_examples=self.examples,
                    database=None,
                    deadline=None,
                    suppress_health_check=list(HealthCheck),
                ),
                random=Random(self.seed + len(self.findings)),
            )
        except NoSuchExample:
            return None
        return self.check(calls)

    def check(self, calls: list[Call]) -> Finding | None:
        """Run the sequence as a scenario; the first failing step, or None when the target agrees."""
        self.runs += 1
        record = run_calls(calls, self.profile)
        failed = record.failed_steps
        if record.outcome != "failed" or not failed:
            return None
        step = failed[0]
        index = step.index - 1 - _alloc_count(calls)  # the scenario's allocs come first
        call = _call_at(calls, index)
        irql = call.irql.name if call is not None else Irql.PASSIVE_LEVEL.name
        message = step.failures[0] if step.failures else ""
        return Finding(tuple(calls), step.operation, irql, message.split(": ", 1)[-1])


def call_sequences(steps: int, avoid: set[tuple[str, str]] | frozenset[tuple[str, str]] = frozenset()):
    """Sequences of up to `steps` calls on the buffers of `BUFFERS`, without the (operation, IRQL)
    pairs in `avoid`: a disagreement already found ends every sequence that reaches it, and would
    hide whatever comes after. PASSIVE_LEVEL is drawn more often, as drivers call it most."""
    from hypothesis import strategies as st

    buffers = st.sampled_from(sorted(BUFFERS))
    levels = [Irql.PASSIVE_LEVEL, Irql.PASSIVE_LEVEL, Irql.APC_LEVEL, Irql.DISPATCH_LEVEL]
    irqls = st.sampled_from(levels)
    store_or_remove = st.builds(Call, st.sampled_from(["store", "remove"]), buffers, irqls).filter(
        lambda call: (call.operation, call.irql.name) not in avoid
    )
    create = st.builds(Call, st.just("create"), exclude=st.booleans())
    return st.lists(st.one_of(store_or_remove, create), min_size=1, max_size=steps)


def run_calls(calls: list[Call], profile: str) -> RunRecord:
    """The sequence as a scenario file in a temporary folder, loaded and run on a fresh simulator."""
    with tempfile.TemporaryDirectory(prefix="lkdh-explore-") as folder:
        path = Path(folder) / "sequence.yaml"
        path.write_text(scenario_yaml("explored", calls, "generated"), encoding="utf-8")
        (loaded,) = load_scenario_file(path)
        with SimulatedMachine(Path(folder) / "out", SimSettings(profile=profile)) as machine:
            return run_scenario(loaded, machine)


def write_findings(findings: list[Finding], out: Path, *, seed: int, profile: str) -> list[Path]:
    """Each finding as `out/explore_<seed>_<n>.yaml`, a scenario that fails on `profile` today."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for number, finding in enumerate(findings, 1):
        name = f"explore_{seed}_{number}"
        header = (
            f"Found by `lkdh explore --seed {seed}` on sim/{profile}: the documented contract predicts\n"
            f"every expectation below; the target first failed at {finding.operation} ({finding.irql}):\n"
            + "\n".join(finding.message.splitlines()[:3])
        )
        description = "The documented contract holds for " + " -> ".join(c.describe() for c in finding.calls)
        path = out / f"{name}.yaml"
        path.write_text(scenario_yaml(name, list(finding.calls), description, header), encoding="utf-8")
        paths.append(path)
    return paths


def _alloc_count(calls: list[Call]) -> int:
    return len({call.buffer for call in calls if call.buffer})


def _call_at(calls: list[Call], step_index: int) -> Call | None:
    """The call behind scenario step `step_index` (after the allocs); a create is two steps."""
    position = 0
    for call in calls:
        width = 2 if call.operation == "create" else 1
        if position <= step_index < position + width:
            return call
        position += width
    return None

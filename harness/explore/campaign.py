"""`lkdh explore`: seeded searches for sequences the target and the reference model disagree on.

A campaign runs searches (`generator.search`) one after another. Each generated sequence is written as
a scenario whose expectations are the model's predictions (`scenario_text.py`), loaded by the ordinary
loader and run by the ordinary runner on a freshly prepared target: a new simulator, or the VM of a
target config, reverted or rebooted by its `prepare()`. The first disagreement of a search pins its
key (the aspects of the failing call, `model.aspects_of`); hypothesis shrinks the sequence while the
target still fails with that key, and the minimal sequence is a `Finding`. The next search leaves
calls with that key out, so one campaign finds several disagreements. Every choice comes from the
seed and the model; the target only decides pass or fail, so two targets that behave alike (the
simulator and a VM with the same DMF) are given the very same sequences (`Campaign.tried`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.explore.model import MODELS, Bfac434Model, Call, ContractModel, Step, predict_sequence
from harness.explore.scenario_text import scenario_yaml
from harness.runner import ScenarioRun
from harness.scenario import load_scenario_file
from harness.target.base import Target, TargetError
from harness.target.defects import KNOWN_DEFECTS
from harness.target.sim import SimSettings, SimulatedMachine
from harness.verify.known_defect import StepFailure, explains

TargetOpener = Callable[[Path], AbstractContextManager[Target]]
"""A prepared-per-run target writing under the given folder (harness.targets.TargetFactory.target)."""


@dataclass(frozen=True)
class Finding:
    """A minimal sequence the target disagreed with the model on, and where it first failed."""

    steps: tuple[Step, ...]
    index: int
    """The failing step, 0-based."""
    message: str
    defects: tuple[str, ...]
    """The known defects that explain the failure (the bfac434 model's deviation there, confirmed by
    the defect's signature), or every defect whose signature explains it; empty: none does."""

    @property
    def calls(self) -> tuple[Call, ...]:
        return tuple(step.call for step in self.steps)

    @property
    def key(self) -> frozenset[str]:
        return self.steps[self.index].aspects

    def describe(self) -> str:
        return " -> ".join(call.describe() for call in self.calls)


class Disagreement(Exception):
    """Raised to hypothesis for a sequence the target failed (the search shrinks it)."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.describe())
        self.finding = finding


def simulator(profile: str) -> TargetOpener:
    """A fresh simulated machine with `profile` per run."""

    @contextmanager
    def open_target(folder: Path) -> Iterator[Target]:
        with SimulatedMachine(folder, SimSettings(profile=profile)) as machine:
            yield machine

    return open_target


@dataclass
class Campaign:
    """One seeded exploration of a target with a model."""

    seed: int
    steps: int
    open_target: TargetOpener
    model: str = "contract"
    examples: int = 60
    """hypothesis' budget per search (sequences tried before a search gives up)."""
    max_findings: int = 6
    shrink_runs: int = 30
    """Target runs hypothesis' shrinker may spend per finding (its stateful shrinker is thorough but
    slow on whole-scenario runs); the call-by-call pass of `_minimise` always follows."""
    keep_runs: Path | None = None
    """Keep every run's output (its dumps, its log) under this folder (a VM's are worth keeping)."""
    findings: list[Finding] = field(default_factory=list)
    tried: list[tuple[Call, ...]] = field(default_factory=list)
    """Every distinct sequence run, in order: a function of the seed and the outcomes."""
    _results: dict[tuple[Call, ...], Finding | None] = field(default_factory=dict, init=False)
    _pinned: frozenset[str] | None = field(default=None, init=False)
    _shrink_runs: int = field(default=0, init=False)
    _aborted: str | None = field(default=None, init=False)
    _best: Finding | None = field(default=None, init=False)

    @property
    def runs(self) -> int:
        return len(self.tried)

    def run(self, progress: Callable[[str], None] = lambda _: None) -> list[Finding]:
        """Search until `max_findings` or a search finds nothing; TargetError if the target failed."""
        from harness.explore.generator import search

        model = MODELS[self.model]
        for number in range(self.max_findings):
            self._pinned, self._shrink_runs, self._best = None, 0, None
            avoid = [finding.key for finding in self.findings]
            try:
                search(
                    self.seed * 1000 + number,
                    steps=self.steps,
                    examples=self.examples,
                    model=model,
                    avoid=avoid,
                    judge=self._judge,
                )
            except Disagreement as found:
                self._best = found.finding
            if self._aborted is not None:
                raise TargetError(self._aborted)
            if self._best is None:
                break
            finding = self._minimise(self._best, model)
            if self._aborted is not None:
                raise TargetError(self._aborted)
            self.findings.append(finding)
            defects = ", ".join(finding.defects) or "no known defect"
            progress(f"found ({defects}): {finding.describe()}")
        return self.findings

    def _judge(self, steps: Sequence[Step]) -> None:
        if self._aborted is not None:
            return  # the target failed: let hypothesis finish without running anything more
        fresh = tuple(step.call for step in steps) not in self._results
        if fresh and self._pinned is not None:
            if self._shrink_runs >= self.shrink_runs:
                return  # hypothesis' share of the shrinking is spent; `_minimise` finishes it
            self._shrink_runs += 1
        finding = self.check(steps)
        if finding is None:
            return
        if self._pinned is None:
            self._pinned = finding.key
        if finding.key == self._pinned:  # shrinking keeps to the disagreement first found
            if self._best is None or len(finding.steps) < len(self._best.steps):
                self._best = finding  # kept here too: hypothesis does not always re-raise it
            raise Disagreement(finding)

    def _minimise(self, finding: Finding, model: type[ContractModel]) -> Finding:
        """hypothesis' stateful shrinker often keeps steps that do not matter (it shrinks the choice
        sequence, and deleting an early rule shifts every later choice), and its share of runs is
        bounded. So, until nothing changes: drop what follows the failing step, then try the
        sequence without each call in turn, or with one of its choices made plain (`_plainer`); the
        model predicts each candidate afresh, and a candidate is kept when the target still fails
        with the same key or with a part of it. Every kept candidate ran whole on a fresh target."""
        best = finding
        calls = list(finding.calls[: finding.index + 1])
        if len(calls) < len(finding.calls):
            steps = predict_sequence(model, calls)
            found = self.check(steps) if steps is not None else None
            if found is not None and found.key <= best.key:
                best = found
        calls = list(best.calls[: best.index + 1])
        changed = True
        while changed:
            changed = False
            for candidate in _candidates(calls):
                steps = predict_sequence(model, candidate) if candidate else None
                found = self.check(steps) if steps is not None else None
                if found is not None and found.key <= best.key:
                    calls, best, changed = list(found.calls[: found.index + 1]), found, True
                    break
        return best

    def check(self, steps: Sequence[Step]) -> Finding | None:
        """Run the sequence as one scenario; the finding, or None when the target agreed. Each
        distinct sequence runs once: hypothesis replaying it gets the recorded verdict, so a target
        that is not deterministic (a VM) cannot make hypothesis' search flaky."""
        calls = tuple(step.call for step in steps)
        if calls in self._results:
            return self._results[calls]
        self.tried.append(calls)
        text = scenario_yaml("explored", steps, f"generated by lkdh explore --seed {self.seed}")
        with tempfile.TemporaryDirectory(prefix="lkdh-explore-") as folder:
            path = Path(folder) / "sequence.yaml"
            path.write_text(text, encoding="utf-8")
            (loaded,) = load_scenario_file(path)
            output = (
                Path(folder) / "out" if self.keep_runs is None else self.keep_runs / f"run-{self.runs:05d}"
            )
            with self.open_target(output) as target:
                scenario = ScenarioRun(loaded, target, [])
                record = scenario.run()
        if record.error or record.skip_reason:
            self._aborted = (
                f"lkdh explore: the target could not run a sequence: {record.error or record.skip_reason}"
            )
            return None
        failure = scenario.first_failure
        finding = None
        if failure is not None:
            step = record.steps[failure.index - 1]
            message = step.failures[0].split(": ", 1)[-1] if step.failures else ""
            defects = _explaining_defects(calls, failure)
            finding = Finding(tuple(steps), failure.index - 1, message, defects)
        self._results[calls] = finding
        return finding


def _candidates(calls: list[Call]) -> Iterator[list[Call]]:
    """Shorter sequences first (each call dropped, last first), then each call made plainer."""
    for drop in reversed(range(len(calls))):
        yield calls[:drop] + calls[drop + 1 :]
    for index, call in enumerate(calls):
        for plainer in _plainer(call):
            yield [*calls[:index], plainer, *calls[index + 1 :]]


def _plainer(call: Call) -> Iterator[Call]:
    """The call with one choice set back to its plain value (PASSIVE, FALSE, none, admin)."""
    plain = Call(call.operation, call.buffer, value=call.value)
    for name in ("irql", "exclude", "structures", "secondary", "caller"):
        if getattr(call, name) != getattr(plain, name):
            yield replace(call, **{name: getattr(plain, name)})


def _explaining_defects(calls: Sequence[Call], failure: StepFailure) -> tuple[str, ...]:
    """Which known defects explain the failure: the one the bfac434 model follows at that step when
    its signature agrees, else every defect whose signature does."""
    model = Bfac434Model()
    predicted = [model.predict(call) for call in calls]
    defect = predicted[failure.index - 1].defect
    if defect is not None and explains(KNOWN_DEFECTS[defect].signature, failure):
        return (defect,)
    return tuple(sorted(d.id for d in KNOWN_DEFECTS.values() if explains(d.signature, failure)))


def write_findings(
    findings: Sequence[Finding], out: Path, *, seed: int, target: str, model: str
) -> list[Path]:
    """Each finding as `out/explore_<seed>_<n>.yaml`, a scenario that fails on `target` today."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for number, finding in enumerate(findings, 1):
        name = f"explore_{seed}_{number}"
        failing = finding.steps[finding.index].call.describe()
        explained = ", ".join(finding.defects) or "none (a new disagreement)"
        header = "\n".join(
            [
                f"Found by `lkdh explore --seed {seed} --model {model}` on {target}: the {model} model",
                f"predicts every expectation below; the target first failed at step {finding.index + 1}",
                f"({failing}): {finding.message.splitlines()[0] if finding.message else ''}",
                f"Known defects that explain it: {explained}.",
            ]
        )
        description = f"The {model} model holds for {finding.describe()}"
        path = out / f"{name}.yaml"
        path.write_text(scenario_yaml(name, finding.steps, description, header), encoding="utf-8")
        paths.append(path)
    return paths


def model_named(name: str) -> type[ContractModel]:
    """The model class for `--model`; ValueError naming the choices."""
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}") from None

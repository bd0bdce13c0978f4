"""The upstream defect pack: one Markdown report per known defect, ready to file against microsoft/DMF.

`lkdh defects --out DIR` writes `DIR/<defect id>.md` for every id of `KNOWN_DEFECTS` (other tools,
such as the Allure known-defect links, rely on that naming) and `DIR/README.md` as an index. Each
report holds what a maintainer needs to act without running lkdh: the DMF commit, the source lines
(the file:line evidence DMF_FACTS.md gives for the defect's facts, then lines read at that commit,
`defect_sources.py`), what the documentation promises (quoted with line numbers), the minimal
scenario (each shipped scenario whose `known_defect` is the id, as its YAML), what the simulator
showed when that scenario ran on `dmf-bfac434` and on `contract`, what a real VM showed when a run
record is given, and the dump evidence of the failing step (its message, bugcheck and parameters,
the dumps with their SHA-256). The simulator's dumps are kept under `DIR/evidence/<id>/<profile>/`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.dump.bugcheck_names import bugcheck_name
from harness.record import RunRecord
from harness.report.defect_sources import EXTRA_SOURCE_LINES, Quote, quote_promises
from harness.report.dmf_facts import DMF_COMMIT, DMF_REPOSITORY, FactBook, SourceRef
from harness.runner import run_scenario
from harness.scenario import LoadedScenario
from harness.target.defects import KNOWN_DEFECTS, KnownDefect
from harness.target.sim import SimSettings, SimulatedMachine
from harness.target.status import status_name

PACK_PROFILES = ("dmf-bfac434", "contract")
"""Each minimal scenario runs on DMF as shipped (it must reproduce) and on the documented contract."""


@dataclass(frozen=True)
class Observation:
    """One run of a defect's scenario, from a fresh RunRecord or from a run-record file's entry."""

    scenario: str
    target: str
    profile: str
    outcome: str
    defect_note: str | None
    failed_step: dict[str, Any] | None
    """The first failing step as the run record writes it (index, operation, location, failures, crash)."""
    dumps: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_record(cls, record: RunRecord, relative_to: Path | None = None) -> Observation:
        document = record.to_json()
        if relative_to is not None:
            for dump in document["dumps"]:
                dump["path"] = _relative(Path(dump["path"]), relative_to)
        return cls.from_json(document)

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> Observation:
        failed = [step for step in entry.get("steps", []) if step.get("outcome") == "failed"]
        return cls(
            scenario=entry.get("scenario", "?"),
            target=entry.get("target", "?"),
            profile=entry.get("profile", ""),
            outcome=entry.get("outcome", "?"),
            defect_note=entry.get("defect_note"),
            failed_step=failed[0] if failed else None,
            dumps=list(entry.get("dumps", [])),
        )


class RunRecordError(ValueError):
    """A `--run-record` file that is not lkdh's run record (what was wrong, and where)."""


def read_run_record(path: Path) -> list[dict[str, Any]]:
    """The scenario entries of a run record written by `lkdh run` (version 1)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise RunRecordError(f"{path}:{error.lineno}:{error.colno}: not JSON: {error.msg}") from None
    if not isinstance(document, dict) or document.get("version") != 1:
        raise RunRecordError(f"{path}: not an lkdh run record (expected a mapping with version: 1)")
    scenarios = document.get("scenarios")
    if not isinstance(scenarios, list) or not all(isinstance(entry, dict) for entry in scenarios):
        raise RunRecordError(f"{path}: `scenarios` must be a list of mappings")
    return scenarios


def scenario_text(loaded: LoadedScenario) -> str:
    """The YAML document of `loaded` as written in its file (comments kept), without `---` lines."""
    documents: list[list[str]] = [[]]
    for line in loaded.file.read_text(encoding="utf-8").splitlines():
        if line.rstrip() == "---":
            documents.append([])
        else:
            documents[-1].append(line)
    return "\n".join(documents[loaded.document_index]).strip("\n") + "\n"


def simulate(loaded: LoadedScenario, profile: str, output_dir: Path) -> RunRecord:
    """Run `loaded` on a fresh simulated machine with `profile`; its dumps stay in `output_dir`."""
    with SimulatedMachine(output_dir, SimSettings(profile=profile)) as machine:
        return run_scenario(loaded, machine)


@dataclass
class DefectPack:
    """Inputs of the pack: the scenarios, the facts, the documentation text, an optional run record."""

    scenarios: Sequence[LoadedScenario]
    facts: FactBook
    doc_text: str
    doc_name: str
    run_record: list[dict[str, Any]] | None = None
    run_record_name: str = ""

    def write(self, out: Path) -> list[Path]:
        """Every defect's report and the index; returns the paths written (index last)."""
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for defect in KNOWN_DEFECTS.values():
            path = out / f"{defect.id}.md"
            path.write_text(self.render(defect, out), encoding="utf-8")
            written.append(path)
        index = out / "README.md"
        index.write_text(self.render_index(), encoding="utf-8")
        written.append(index)
        return written

    def scenarios_of(self, defect_id: str) -> list[LoadedScenario]:
        return [loaded for loaded in self.scenarios if _defect_id(loaded) == defect_id]

    def render(self, defect: KnownDefect, out: Path) -> str:
        scenarios = self.scenarios_of(defect.id)
        sections = [
            f"# DMF_LiveKernelDump: {defect.summary}\n",
            f"- Defect id (lkdh): `{defect.id}`\n- Repository: {DMF_REPOSITORY}\n"
            f"- DMF commit: `{DMF_COMMIT}`\n- Facts: {', '.join(defect.facts)} (DMF_FACTS.md)\n"
            f"- How a scenario shows it: {defect.signature.describe()}\n",
            self._facts_section(defect),
            self._source_section(defect),
            self._promise_section(defect),
            _scenario_section(scenarios),
            self._simulator_section(defect, scenarios, out),
            self._vm_section(defect),
        ]
        return "\n".join(sections)

    def render_index(self) -> str:
        lines = [
            "# Known DMF_LiveKernelDump defects (lkdh upstream defect pack)\n",
            f"DMF commit `{DMF_COMMIT}`; facts from {self.facts.source}.\n",
            "| defect | summary | minimal scenarios |",
            "| --- | --- | --- |",
        ]
        for defect in KNOWN_DEFECTS.values():
            shown = self.scenarios_of(defect.id)
            names = ", ".join(f"`{loaded.scenario.name}`" for loaded in shown) or "none"
            lines.append(f"| [{defect.id}]({defect.id}.md) | {defect.summary} | {names} |")
        return "\n".join(lines) + "\n"

    def _facts_section(self, defect: KnownDefect) -> str:
        lines = ["## What DMF does (DMF_FACTS.md)\n"]
        for fact_id in defect.facts:
            text = self.facts.text(fact_id) or f"(not in {self.facts.source})"
            lines.append(f"- **{fact_id}** {text}")
        return "\n".join(lines) + "\n"

    def _source_section(self, defect: KnownDefect) -> str:
        lines = [f"## Source lines (microsoft/DMF at `{DMF_COMMIT[:7]}`)\n"]
        for fact_id in defect.facts:
            for ref in self.facts.source_refs(fact_id):
                lines.append(f"- {_ref_link(ref)} (cited by {fact_id} as `{ref.cited_as}`)")
        for ref, what in EXTRA_SOURCE_LINES.get(defect.id, ()):
            lines.append(f"- {_ref_link(ref)}: {what} (read at {DMF_COMMIT[:7]})")
        if len(lines) == 1:
            lines.append("- none cited: the facts name no file:line")
        return "\n".join(lines) + "\n"

    def _promise_section(self, defect: KnownDefect) -> str:
        quotes: list[Quote] = quote_promises(self.doc_text, defect.id, self.doc_name)
        lines = [f"## What the documentation promises ({self.doc_name})\n"]
        lines += [f"> {quote.text}  \n> (`{quote.section}`, line {quote.line})\n" for quote in quotes]
        if not quotes:
            lines.append("The documentation says nothing about this case.\n")
        return "\n".join(lines)

    def _simulator_section(self, defect: KnownDefect, scenarios: list[LoadedScenario], out: Path) -> str:
        lines = ["## What the lkdh simulator showed\n"]
        if not scenarios:
            return "\n".join([*lines, "Not run: no shipped scenario shows this defect.\n"])
        for loaded in scenarios:
            for profile in PACK_PROFILES:
                evidence = out / "evidence" / defect.id / loaded.scenario.name / profile
                record = simulate(loaded, profile, evidence)
                lines.append(_observation_text(Observation.from_record(record, out), f"sim/{profile}"))
        return "\n".join(lines)

    def _vm_section(self, defect: KnownDefect) -> str:
        lines = ["## What a real VM showed\n"]
        if self.run_record is None:
            return "\n".join([*lines, "No run record given (`lkdh defects --run-record FILE`).\n"])
        entries = [
            entry
            for entry in self.run_record
            if entry.get("known_defect") == defect.id and entry.get("target") != "sim"
        ]
        if not entries:
            note = f"{self.run_record_name} holds no VM run of a scenario with known_defect `{defect.id}`.\n"
            return "\n".join([*lines, note])
        where = f"vm ({self.run_record_name})"
        lines += [_observation_text(Observation.from_json(entry), where) for entry in entries]
        return "\n".join(lines)


def _defect_id(loaded: LoadedScenario) -> str | None:
    defect = loaded.scenario.known_defect
    return defect.id if defect else None


def _scenario_section(scenarios: list[LoadedScenario]) -> str:
    lines = ["## Minimal scenario\n"]
    if not scenarios:
        lines.append("No shipped scenario declares this defect (see `lkdh coverage`).\n")
    shown: set[tuple[str, int]] = set()
    for loaded in scenarios:
        if (str(loaded.file), loaded.line) in shown:
            continue  # another parametrize row of the same document
        shown.add((str(loaded.file), loaded.line))
        lines.append(f"`{loaded.file.name}`, line {loaded.line} (`lkdh run` this file to reproduce):\n")
        lines.append("```yaml\n" + scenario_text(loaded) + "```\n")
    return "\n".join(lines)


def _observation_text(observation: Observation, where: str) -> str:
    verdicts = {
        "xfailed": "failed as the defect predicts (reproduced)",
        "passed": "passed",
        "failed": "failed, but not the way the defect predicts",
        "xpassed": "passed where the defect predicts a failure",
    }
    verdict = verdicts.get(observation.outcome, observation.outcome)
    lines = [f"### `{observation.scenario}` on {where}: {observation.outcome}\n", f"The scenario {verdict}."]
    if observation.defect_note:
        lines.append(f"\n{observation.defect_note}")
    step = observation.failed_step
    if step is not None:
        lines.append(
            f"\nFirst failing step: {step.get('index')} `{step.get('operation')}` "
            f"({step.get('title')}) at {step.get('location')}"
        )
        crash = step.get("crash")
        if step.get("status") is not None and not crash:
            lines.append(f"- returned {status_name(step['status'])}")
        if crash:
            code = crash["bugcheck_code"]
            name = bugcheck_name(code) or "unknown bugcheck"
            parameters = ", ".join(f"0x{p:X}" for p in crash["parameters"])
            lines.append(f"- bugcheck 0x{code:X} {name} ({parameters}): {crash.get('reason', '')}")
        lines.append("- message:\n\n```text\n" + "\n".join(step.get("failures", [])) + "\n```")
    if observation.dumps:
        lines.append("\nDumps:\n")
        lines += [
            f"- `{dump['path']}` ({dump.get('kind', '?')}, sha256 `{dump.get('sha256', '?')}`)"
            for dump in observation.dumps
        ]
    return "\n".join(lines) + "\n"


def _ref_link(ref: SourceRef) -> str:
    url = ref.url()
    label = f"`{ref.label()}`"
    return f"[{label}]({url})" if url else f"{label} ({ref.repository})"


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)

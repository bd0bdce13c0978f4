"""The Allure result of one scenario run, written the same way by `lkdh run --alluredir` and
`pytest --alluredir`: one `<uuid>-result.json` per scenario and target plus its attachment files,
so results from several workers or shards merge by copying folders.

Fed by runner events only (labgrid's habit): one Allure step per YAML step with its IRQL, status,
YAML position and time; on the step, each dump's summary, the dump file (up to a size limit) and
its SVG map; on the result, the scenario's YAML, the run log and, when the target kept one, the
serial console (console.log, harness/target/ops.py). Serialised with allure-python-
commons' own model and file logger, so the files are what every Allure adapter writes.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from allure_commons.logger import AllureFileLogger
from allure_commons.model2 import (
    Attachment,
    Parameter,
    Status,
    StatusDetails,
    TestResult,
    TestStepResult,
)
from allure_commons.utils import uuid4

from harness.record import RunRecord, StepRecord
from harness.report import allure_labels as meta
from harness.report.dump_map import render_dump_map
from harness.runner import RunListener
from harness.scenario import LoadedScenario
from harness.target.ops import CONSOLE_LOG, CollectedDump
from harness.target.status import status_name
from harness.verify.evidence import DumpEvidence

DEFAULT_DUMP_LIMIT = 8 * 1024 * 1024
"""Dumps up to this size are attached (a live triage dump is 256 KiB plus its secondary data);
larger ones are named with their path, which is kept either way."""

TEXT, YAML, SVG, DUMP = (
    ("text/plain", "txt"),
    ("application/yaml", "yaml"),
    ("image/svg+xml", "svg"),
    (
        "application/octet-stream",
        "dmp",
    ),
)


@dataclass(frozen=True)
class AllureOptions:
    """Where results go and what they may hold; the same for both entry points."""

    results_dir: Path
    defect_pack: Path | None = None
    dump_limit: int = DEFAULT_DUMP_LIMIT
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))


def options_from(
    results_dir: Path, defect_pack: Path | None = None, dump_limit: int | None = None
) -> AllureOptions:
    """Options from the command line, then the environment (LKDH_DEFECT_PACK)."""
    pack = defect_pack or (
        Path(os.environ["LKDH_DEFECT_PACK"]) if os.environ.get("LKDH_DEFECT_PACK") else None
    )
    return AllureOptions(Path(results_dir), pack, DEFAULT_DUMP_LIMIT if dump_limit is None else dump_limit)


def now_ms() -> int:
    return int(time.time() * 1000)


class AllureScenarioResult(RunListener):
    """Builds the result of one scenario run; `write()` puts it in the results folder.

    Writing is the caller's move after the run returns, so a harness that raised mid-run leaves no
    result of ours behind (pytest then reports the item broken with its traceback)."""

    def __init__(self, loaded: LoadedScenario, options: AllureOptions) -> None:
        self.loaded = loaded
        self.options = options
        self.files = AllureFileLogger(options.results_dir)
        self.result = TestResult(uuid=uuid4(), start=now_ms(), stage="finished")
        self._step_start = 0
        self._pending: list[Attachment] = []
        self._os_build: int | None = None
        self._failed_maps: list[Attachment] = []
        self._written = False

    # --- runner events -------------------------------------------------------------------------
    def step_started(self, record: RunRecord, step: StepRecord) -> None:
        self._step_start = now_ms()

    def step_finished(self, record: RunRecord, step: StepRecord) -> None:
        started = self._step_start if step.outcome != "skipped" else now_ms()
        irql = self.loaded.scenario.steps[step.index - 1].irql.name
        written = self.loaded.step_locations[step.index - 1]
        short = f"{written.file.name}:{written.line}:{written.col}"
        shown = step.status is not None and step.crash is None
        parameters = [Parameter("IRQL", irql), Parameter("YAML", step.location)]
        if shown:
            parameters.append(Parameter("status", status_name(step.status)))
        if step.crash is not None:
            parameters.append(Parameter("bugcheck", f"0x{step.crash.bugcheck_code:X}"))
        details = StatusDetails(message="\n".join(step.failures)) if step.failures else None
        self.result.steps.append(
            TestStepResult(
                name=f"{step.index}. {step.title}  ({short})",
                status={"passed": Status.PASSED, "failed": Status.FAILED}.get(step.outcome, Status.SKIPPED),
                statusDetails=details,
                stage="finished",
                start=started,
                stop=max(started, now_ms()),
                parameters=parameters,
                attachments=self._pending,
            )
        )
        if step.outcome == "failed":  # also on the result: one click from the failure message
            self._failed_maps += [
                # A file of its own: Allure's page shows a preview in the first row of that file.
                self._attach_file(
                    self.options.results_dir / a.source, f"{a.name} (failed step {step.index})", SVG
                )
                for a in self._pending
                if a.type == SVG[0]
            ]
        self._pending = []
        self._step_start = 0

    def dump_collected(self, record: RunRecord, dump: CollectedDump, summary: str) -> None:
        self._pending.append(self._attach_data(summary, f"{dump.kind} dump {dump.path.name}: summary", TEXT))
        size = dump.path.stat().st_size
        if size <= self.options.dump_limit:
            self._pending.append(self._attach_file(dump.path, f"{dump.kind} dump {dump.path.name}", DUMP))
        else:
            note = f"{dump.path} is {size} bytes, over the {self.options.dump_limit}-byte attachment limit"
            self._pending.append(
                self._attach_data(note, f"{dump.kind} dump {dump.path.name} (not attached)", TEXT)
            )

    def dump_mapped(self, record: RunRecord, step: StepRecord | None, evidence: DumpEvidence) -> None:
        if evidence.build:
            self._os_build = self._os_build or evidence.build
        where = f"step {step.index} ({step.title})" if step is not None else "collected after the run"
        svg = render_dump_map(evidence, title=f"{record.scenario} {where}: {evidence.path.name}")
        self._pending.append(self._attach_data(svg, f"dump map {evidence.path.name}", SVG))

    def scenario_finished(self, record: RunRecord) -> None:
        result = self.result
        for name, value in meta.identity(self.loaded, record).items():
            setattr(result, name, value)
        result.description = meta.description(self.loaded, record)
        result.labels = meta.labels(self.loaded, record)
        result.parameters = meta.parameters(record, self._os_build)
        if self.loaded.row is not None:  # each parametrize row its own test case (as in pytest)
            result.parameters.append(Parameter("row", self.loaded.row.id))
        defect = self.loaded.scenario.known_defect
        if defect is not None:
            result.links = [meta.defect_link(defect.id, self.options.defect_pack, self.options.environ)]
        result.status, result.statusDetails = outcome_status(record)
        result.stop = max(result.start, now_ms())
        result.attachments = [*self._failed_maps, *self._pending, *self._scenario_attachments(record)]
        self._pending = []

    # --- writing --------------------------------------------------------------------------------
    def write(self) -> Path:
        """Write the result JSON (once) and return its path."""
        if not self._written:
            self.files.report_result(self.result)
            self._written = True
        return self.options.results_dir

    def _scenario_attachments(self, record: RunRecord) -> list[Attachment]:
        attachments = [
            self._attach_data(
                self.loaded.file.read_text(encoding="utf-8"), f"scenario {self.loaded.file.name}", YAML
            )
        ]
        log = record.output_dir / "run.log" if record.output_dir is not None else None
        if log is not None and log.is_file():
            attachments.append(self._attach_file(log, "run log", TEXT))
        console = record.output_dir / CONSOLE_LOG if record.output_dir is not None else None
        if console is not None and console.is_file():  # kept by a target whose hypervisor sees it
            attachments.append(self._attach_file(console, "serial console", TEXT))
        return attachments

    def _attach_data(self, body: str | bytes, name: str, kind: tuple[str, str]) -> Attachment:
        file_name = f"{uuid4()}-attachment.{kind[1]}"
        self.files.report_attached_data(body, file_name)
        return Attachment(name=name, source=file_name, type=kind[0])

    def _attach_file(self, path: Path, name: str, kind: tuple[str, str]) -> Attachment:
        file_name = f"{uuid4()}-attachment.{kind[1]}"
        self.files.report_attached_file(path, file_name)
        return Attachment(name=name, source=file_name, type=kind[0])


def outcome_status(record: RunRecord) -> tuple[str, StatusDetails | None]:
    """The Allure status and message of a run; the wording feeds categories.json's patterns."""
    trace = record.failure_text() or None
    target = record.profile or record.target
    if record.outcome == "passed":
        return Status.PASSED, None
    if record.outcome == "xfailed":
        first = record.failed_steps[0].failures[0].splitlines()[0] if record.failed_steps else ""
        message = f"known defect {record.known_defect} reproduced on {target}: {first}"
        return Status.SKIPPED, StatusDetails(message=message, trace=trace)
    if record.outcome == "xpassed":
        message = (
            f"{record.location}: known defect {record.known_defect} did not reproduce on {target}: "
            "the scenario passed where it was predicted to fail"
        )
        return Status.FAILED, StatusDetails(message=message, trace=trace)
    if record.outcome == "skipped":
        return Status.SKIPPED, StatusDetails(message=record.skip_reason or "skipped")
    if record.outcome == "error":
        return Status.BROKEN, StatusDetails(message=record.error or "error", trace=trace)
    message = "\n".join(failure for step in record.failed_steps for failure in step.failures)
    return Status.FAILED, StatusDetails(message=message, trace=trace)

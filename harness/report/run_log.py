"""A plain-text log per scenario run, kept beside its dumps: what ran, what came back, what failed.

Written line by line as events arrive (appended, flushed), so a run cut short by a dead VM or a
killed CI job still leaves everything up to that point. Each collected dump also gets its readable
summary in `<dump>.txt`, so the evidence can be read without the harness installed.
"""

from __future__ import annotations

import time
from pathlib import Path

from harness.record import RunRecord, StepRecord
from harness.runner import RunListener
from harness.target.ops import CollectedDump
from harness.target.status import status_name


class RunLog(RunListener):
    """Appends to `<output_dir>/run.log` for each event of one scenario run."""

    def __init__(self, output_dir: Path) -> None:
        self.path = output_dir / "run.log"

    def scenario_started(self, record: RunRecord) -> None:
        profile = f", profile {record.profile}" if record.profile else ""
        self._write(f"scenario {record.scenario} on {record.target}{profile} ({record.location})")

    def step_finished(self, record: RunRecord, step: StepRecord) -> None:
        shown = step.status is not None and step.crash is None
        status = f", status {status_name(step.status)}" if shown else ""
        self._write(f"step {step.index} {step.title} [{step.location}]: {step.outcome}{status}")
        if step.crash is not None:
            self._write(f"  bugcheck 0x{step.crash.bugcheck_code:X}: {step.crash.reason}")
        for failure in step.failures:
            self._write("  " + failure.replace("\n", "\n  "))

    def dump_collected(self, record: RunRecord, dump: CollectedDump, summary: str) -> None:
        dump.path.with_name(dump.path.name + ".txt").write_text(summary + "\n", encoding="utf-8")
        self._write(f"collected {dump.kind} dump {dump.path} (sha256 {dump.sha256}) from {dump.remote_name}")

    def scenario_finished(self, record: RunRecord) -> None:
        reason = record.error or record.skip_reason
        self._write(f"outcome {record.outcome}" + (f": {reason}" if reason else ""))

    def _write(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with self.path.open("a", encoding="utf-8") as stream:
            stream.write(f"{stamp} {line}\n")

"""The run record: what happened when one scenario ran on one target, step by step.

Plain data, so the terminal table, Allure, the JSON run record and pytest's failure message all
read the same facts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from harness.target.ops import CollectedDump, Crash

StepOutcome = Literal["passed", "failed", "skipped"]
RunOutcome = Literal["passed", "failed", "xfailed", "xpassed", "skipped", "error"]


@dataclass
class StepRecord:
    """One YAML step as it ran."""

    index: int
    operation: str
    title: str
    location: str
    outcome: StepOutcome = "skipped"
    status: int | None = None
    failures: list[str] = field(default_factory=list)
    crash: Crash | None = None
    dumps: list[CollectedDump] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class RunRecord:
    """One scenario on one target."""

    scenario: str
    file: Path
    location: str
    target: str
    profile: str = ""
    target_facts: dict[str, str] = field(default_factory=dict)
    """DriverInfo.facts: what the target said about itself (profile, Verifier, driver version; on a VM
    also the driver's SHA-256 and the DMF commit that were tested)."""
    known_defect: str | None = None
    defect_active: bool = False
    defect_note: str | None = None
    """Why a failure of a known-defect scenario is not its defect's (then `outcome` is "failed")."""
    outcome: RunOutcome = "passed"
    steps: list[StepRecord] = field(default_factory=list)
    dumps: list[CollectedDump] = field(default_factory=list)
    error: str | None = None
    skip_reason: str | None = None
    seconds: float = 0.0
    output_dir: Path | None = None

    @property
    def failed_steps(self) -> list[StepRecord]:
        return [step for step in self.steps if step.outcome == "failed"]

    def failure_text(self) -> str:
        """Every failing step with its YAML location and evidence, then where the dumps are kept."""
        lines = [f"{self.location}: {self.defect_note}"] if self.defect_note else []
        lines += [f"{failure}" for step in self.failed_steps for failure in step.failures]
        if self.error:
            lines.append(self.error)
        if self.dumps:
            lines.append("dumps kept: " + ", ".join(str(dump.path) for dump in self.dumps))
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """A stable, JSON-ready form for the run record file."""
        return {
            "scenario": self.scenario,
            "file": str(self.file),
            "location": self.location,
            "target": self.target,
            "profile": self.profile,
            "target_facts": dict(self.target_facts),
            "known_defect": self.known_defect,
            "defect_active": self.defect_active,
            "defect_note": self.defect_note,
            "outcome": self.outcome,
            "seconds": round(self.seconds, 6),
            "error": self.error,
            "skip_reason": self.skip_reason,
            "steps": [
                {
                    "index": step.index,
                    "operation": step.operation,
                    "title": step.title,
                    "location": step.location,
                    "outcome": step.outcome,
                    "status": step.status,
                    "failures": step.failures,
                    "crash": None
                    if step.crash is None
                    else {
                        "bugcheck_code": step.crash.bugcheck_code,
                        "parameters": list(step.crash.parameters),
                        "reason": step.crash.reason,
                    },
                    "dumps": [str(dump.path) for dump in step.dumps],
                }
                for step in self.steps
            ],
            "dumps": [
                {
                    "path": str(dump.path),
                    "kind": dump.kind,
                    "sha256": dump.sha256,
                    "remote_name": dump.remote_name,
                }
                for dump in self.dumps
            ],
        }

"""Allure reporting: one Allure step per YAML step, each dump attached with its summary.

Uses allure-pytest's public API (`allure.step`, `allure.attach`, `allure.dynamic`); outside a
pytest run with `--alluredir` these calls are no-ops, so the listener is always safe to add.
"""

from __future__ import annotations

import contextlib
from typing import Any

import allure

from harness.record import RunRecord, StepRecord
from harness.runner import RunListener
from harness.target.ops import CollectedDump


class AllureSteps(RunListener):
    """Opens an Allure step when a YAML step starts and closes it with the step's outcome."""

    def __init__(self) -> None:
        self._open: contextlib.AbstractContextManager[Any] | None = None

    def scenario_started(self, record: RunRecord) -> None:
        allure.dynamic.story(record.scenario)
        allure.dynamic.label("target", record.target)
        if record.profile:
            allure.dynamic.label("sim_profile", record.profile)
        if record.known_defect:
            allure.dynamic.label("known_defect", record.known_defect)

    def step_started(self, record: RunRecord, step: StepRecord) -> None:
        self._open = allure.step(f"{step.index}. {step.title}  ({step.location})")
        self._open.__enter__()

    def step_finished(self, record: RunRecord, step: StepRecord) -> None:
        if self._open is None:  # a skipped step was never started
            with allure.step(f"{step.index}. {step.title}  (skipped)"):
                pass
            return
        for failure in step.failures:
            allure.attach(
                failure, name=f"step {step.index} failure", attachment_type=allure.attachment_type.TEXT
            )
        error = AssertionError("; ".join(step.failures)) if step.failures else None
        opened, self._open = self._open, None
        if error is None:
            opened.__exit__(None, None, None)
        else:
            opened.__exit__(AssertionError, error, None)

    def dump_collected(self, record: RunRecord, dump: CollectedDump, summary: str) -> None:
        allure.attach(
            summary, name=f"{dump.kind} dump {dump.path.name}", attachment_type=allure.attachment_type.TEXT
        )

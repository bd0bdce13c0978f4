"""Running a scenario written inline in a test on a fresh simulator, and pointing at its YAML.

Shared by the tests that check a verdict's message and position (runner, expectation failures,
dump-location expectations): one scenario file per test folder, so `position` can name it.
"""

from __future__ import annotations

from pathlib import Path

from harness.record import RunRecord
from harness.runner import run_scenario
from harness.scenario import load_scenario_file
from harness.target.sim import SimSettings, SimulatedMachine


def run_text(tmp_path: Path, text: str, profile: str = "dmf-bfac434") -> RunRecord:
    """Write `text` as `tmp_path/scenario.yaml` and run its one scenario on a fresh simulator."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "scenario.yaml"
    path.write_text(text, encoding="utf-8")
    (loaded,) = load_scenario_file(path)
    return run_scenario(loaded, SimulatedMachine(tmp_path / "out", SimSettings(profile=profile)))


def position(tmp_path: Path, text: str, needle: str) -> str:
    """`file:line:col` of the last `needle` in `text` (1-based, as the loader reports)."""
    before = text[: text.rindex(needle)]
    line = before.count("\n") + 1
    col = len(before) - (before.rfind("\n") + 1) + 1
    return f"{tmp_path / 'scenario.yaml'}:{line}:{col}"


def only_failure(record: RunRecord) -> str:
    """The one failure of the one failed step of a failed run."""
    assert record.outcome == "failed", record.failure_text()
    (step,) = record.failed_steps
    (failure,) = step.failures
    return failure

"""The benchmark's 300-step scenario is itself correct: it passes on the simulator and really hits
what it claims to (evictions, the 60-second rule, a crash and reboot). Its speed is measured in
bench/bench_sim_long_run.py, never here."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from harness.runner import run_scenario
from harness.scenario.errors import ScenarioErrors
from harness.scenario.loader import load_scenario_file
from harness.target.sim import SimSettings, SimulatedMachine
from harness.target.status import STATUS_OBJECT_NAME_COLLISION

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _long_scenario_yaml() -> str:
    spec = importlib.util.spec_from_file_location("long_scenario", BENCH / "long_scenario.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.long_scenario_yaml()


def test_long_scenario_passes_and_hits_evictions_collision_and_crash(tmp_path: Path) -> None:
    path = tmp_path / "long.yaml"
    path.write_text(_long_scenario_yaml(), encoding="utf-8")
    (loaded,) = load_scenario_file(path)
    assert len(loaded.scenario.steps) == 300
    sim = SimulatedMachine(tmp_path / "out", SimSettings())
    record = run_scenario(loaded, sim)
    assert record.outcome == "passed", record.failure_text()
    assert any(step.status == STATUS_OBJECT_NAME_COLLISION for step in record.steps)
    assert sum(step.crash is not None for step in record.steps) == 1
    assert sorted(d.kind for d in record.dumps) == ["crash", "live", "live"]
    assert sim.boot_number == 2 and sim.module.ring.evictions == 0  # the new boot's ring is fresh


def test_realloc_is_refused_in_one_boot_and_allowed_after_a_reboot(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: s\nsteps:\n  - alloc: {name: a, size: 8}\n  - reboot: true\n  - alloc: {name: a, size: 8}\n"
        "  - store: a\n  - create: {bugcheck_code: 1}\n    expect: {dump: {contains: [a]}}\n"
    )
    (loaded,) = load_scenario_file(path)
    assert run_scenario(loaded, SimulatedMachine(tmp_path / "out")).outcome == "passed"
    path.write_text("name: s\nsteps:\n  - alloc: {name: a, size: 8}\n  - alloc: {name: a, size: 8}\n")
    with pytest.raises(ScenarioErrors, match=r":4:19: .*already allocated at .*:3:5"):
        load_scenario_file(path)

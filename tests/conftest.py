"""Fixtures shared by the harness's own tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """Where ../shared lives: beside the repository, as CI lays it out (LKDH_SHARED overrides)."""
    return Path(os.environ.get("LKDH_SHARED", REPO_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def fixture_dumps() -> Path:
    """The folder of real Windows dumps in ../shared/fixtures/dumps; skips when it is absent."""
    folder = shared_dir() / "fixtures" / "dumps"
    if not (folder / "triage_x64.dmp").is_file():
        pytest.skip(f"real dump fixtures not found at {folder} (set LKDH_SHARED to the shared/ folder)")
    return folder


pytest_plugins = ["pytester", "required_tools"]

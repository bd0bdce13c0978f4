"""Fixtures shared by the harness's own tests."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # imported lazily: signing imports required_tools, a plugin pytest must rewrite first
    from driver_package import BuiltPackage
    from signing import SigningIdentity

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


def pytest_report_header(config: pytest.Config) -> str:
    """How the KVM guest tests will run (KVM, emulated, or skipped and why), before they take minutes."""
    from kvm_guest import accelerator_header

    return accelerator_header()


@pytest.fixture(scope="session")
def identity(tmp_path_factory: pytest.TempPathFactory) -> SigningIdentity:
    """A throwaway code-signing identity (tests/signing.py) shared by the Windows-target tests."""
    from signing import make_identity

    return make_identity(tmp_path_factory.mktemp("identity"), "lkdh-machine-test")


@pytest.fixture(scope="session")
def packages(tmp_path_factory: pytest.TempPathFactory, identity: SigningIdentity) -> dict[str, BuiltPackage]:
    """Two real signed builds (tests/driver_package.py): the one under test and a newer one."""
    from driver_package import build_package

    root = tmp_path_factory.mktemp("packages")
    return {
        version: build_package(root / version / "LkdhTestDriver", identity, version=version)
        for version in ("1.2.3.4", "1.2.3.5")
    }

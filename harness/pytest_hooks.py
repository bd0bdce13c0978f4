"""Hooks the lkdh pytest plugin offers (registered through `pytest_addhooks`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from harness.target.base import Target
    from harness.target.windows.config import TargetConfig


@pytest.hookspec(firstresult=True)
def pytest_lkdh_make_vm(target_config: TargetConfig, output_dir: Path) -> Target | None:
    """Build the Target for one Windows VM config (a single VM or a pool member), or return None
    for the default: a WindowsMachine over the sessions the config describes. A project uses it
    to reach its VMs another way; the harness's own tests use it to put test doubles in a pool."""

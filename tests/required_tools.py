"""The real tools the suite runs (sshd, virsh, mingw-w64, wine, osslsigncode, a C compiler, Chromium,
the Allure command line), and the one rule about their absence.

Outside CI a missing tool skips its tests with the install hint. Under CI=true, where `.ci/run` has
installed every one of them, the same skip is a failure: a broken install step must not turn real
tests into quiet skips. Tests say a tool is missing only through `ToolMissing` (`require_tool`,
`tool_missing`); the single hook below decides what that means. A plugin (registered by
conftest.py), so a pytester run can load it with `-p required_tools`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest


class ToolMissing(pytest.skip.Exception):  # type: ignore[name-defined,misc]
    """A skip because a tool `.ci/run` installs is not on this machine."""


def running_in_ci() -> bool:
    """CI=true (or 1), as .ci/run's environment and every common CI service set it."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def tool_missing(reason: str) -> NoReturn:
    """Skip (outside CI) or fail (under CI=true) because a tool is missing; `reason` says which and how
    to install it."""
    raise ToolMissing(reason)


def require_tool(name: str, *, install: str, also: tuple[Path, ...] = ()) -> str:
    """The path of `name` on PATH (or the first existing path of `also`); else `tool_missing` with
    the install hint (`apt-get install wine`, say)."""
    found = shutil.which(name) or next((str(path) for path in also if path.exists()), None)
    if found is None:
        tool_missing(f"{name} not found ({install}; .ci/run installs it)")
    return found


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if call.excinfo is not None and call.excinfo.errisinstance(ToolMissing) and running_in_ci():
        report.outcome = "failed"
        report.longrepr = f"CI=true, but {call.excinfo.value.msg}: the CI run must install what the tests use"

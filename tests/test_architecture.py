"""Boundaries the README's architecture section promises, checked on the source itself."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    return modules


@pytest.mark.parametrize(
    "source",
    [
        "harness/runner.py",
        "harness/record.py",
        *sorted(str(p.relative_to(REPO)) for p in (REPO / "harness/verify").glob("*.py")),
    ],
)
def test_the_runner_and_the_checker_know_no_particular_target(source: str) -> None:
    """Expected bytes and verdicts come from the scenario and the Target interface, never from the
    simulator (whose bugs would then agree with themselves) or the Windows target."""
    forbidden = [
        m
        for m in imported_modules(REPO / source)
        if m.startswith(("harness.target.sim", "harness.target.windows"))
    ]
    assert forbidden == []


def test_tests_do_not_importorskip_anything() -> None:
    """The project's own modules always import, and the dev extra is installed wherever tests run: a
    missing one is an install error to see, not a quiet skip (tools go through required_tools.py)."""
    offenders = [
        f"{path.name}:{node.lineno}"
        for path in sorted((REPO / "tests").glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Attribute) and node.attr == "importorskip"
    ]
    assert offenders == []

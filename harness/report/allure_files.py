"""The two files Allure reads beside the results: environment.properties and categories.json.

Categories keep a nightly report readable: a reproduced known defect is not a new product bug, and
a dead VM is not a driver failure. Allure takes the first category whose pattern matches.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping
from pathlib import Path

import harness

CATEGORIES = [
    {
        "name": "Known DMF defects (reproduced as predicted)",
        "matchedStatuses": ["skipped"],
        "messageRegex": "(?s).*known defect .* reproduced.*",
    },
    {
        "name": "Infrastructure failures (target, transport, VM)",
        "matchedStatuses": ["failed", "broken"],
        "messageRegex": "(?s).*(target \\S+ failed|TargetError|collecting dumps from).*",
    },
    {
        "name": "Prediction errors (known defect did not reproduce)",
        "matchedStatuses": ["failed"],
        "messageRegex": "(?s).*did not reproduce.*",
    },
    {
        "name": "Product defects (expectation not met)",
        "matchedStatuses": ["failed"],
    },
    {
        "name": "Harness errors",
        "matchedStatuses": ["broken"],
    },
]


def write_allure_files(results_dir: Path, environment: Mapping[str, str]) -> None:
    """Write environment.properties (the run's setup) and categories.json into the results folder."""
    results_dir.mkdir(parents=True, exist_ok=True)
    values = {"lkdh": harness.__version__, "python": platform.python_version(), **environment}
    lines = [f"{key}={_escape(value)}" for key, value in sorted(values.items())]
    (results_dir / "environment.properties").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (results_dir / "categories.json").write_text(json.dumps(CATEGORIES, indent=2) + "\n", encoding="utf-8")


def _escape(value: str) -> str:
    """Java properties: backslashes and line breaks escaped."""
    return value.replace("\\", "\\\\").replace("\n", "\\n")

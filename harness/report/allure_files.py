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


def executor_from(environ: Mapping[str, str]) -> dict[str, object] | None:
    """Who ran the tests, from the CI's own variables: GitHub Actions, GitLab CI or Jenkins (their
    documented names); None for a run outside CI. Allure's trend charts order builds by
    `buildOrder` and link each to `buildUrl`; `reportUrl` (LKDH_REPORT_URL) is where the published
    report lives."""
    report_url = environ.get("LKDH_REPORT_URL")
    if environ.get("GITHUB_ACTIONS") == "true":
        server, repository = environ.get("GITHUB_SERVER_URL", ""), environ.get("GITHUB_REPOSITORY", "")
        number = environ.get("GITHUB_RUN_NUMBER", "0")
        found: dict[str, object] = {
            "name": "GitHub Actions",
            "type": "github",
            "url": f"{server}/{repository}",
            "buildOrder": int(number) if number.isdigit() else 0,
            "buildName": f"{environ.get('GITHUB_WORKFLOW', 'lkdh')} #{number}",
            "buildUrl": f"{server}/{repository}/actions/runs/{environ.get('GITHUB_RUN_ID', '')}",
        }
    elif environ.get("GITLAB_CI") == "true":
        number = environ.get("CI_PIPELINE_IID", "0")
        found = {
            "name": "GitLab CI",
            "type": "gitlab",
            "url": environ.get("CI_PROJECT_URL", ""),
            "buildOrder": int(number) if number.isdigit() else 0,
            "buildName": f"{environ.get('CI_PROJECT_NAME', 'lkdh')} #{number}",
            "buildUrl": environ.get("CI_PIPELINE_URL", ""),
        }
    elif environ.get("JENKINS_URL") and environ.get("BUILD_NUMBER"):
        number = environ["BUILD_NUMBER"]
        found = {
            "name": "Jenkins",
            "type": "jenkins",
            "url": environ["JENKINS_URL"],
            "buildOrder": int(number) if number.isdigit() else 0,
            "buildName": f"{environ.get('JOB_NAME', 'lkdh')} #{number}",
            "buildUrl": environ.get("BUILD_URL", ""),
        }
    else:
        return None
    found["reportName"] = "lkdh: DMF_LiveKernelDump"
    if report_url:
        found["reportUrl"] = report_url
    return found


def write_executor(results_dir: Path, environ: Mapping[str, str]) -> Path | None:
    """Write executor.json when the run happens in a CI it recognises."""
    executor = executor_from(environ)
    if executor is None:
        return None
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / "executor.json"
    path.write_text(json.dumps(executor, indent=2) + "\n", encoding="utf-8")
    return path

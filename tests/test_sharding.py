"""`pytest --lkdh-shard I/N`: N CI runners, each its share, every item exactly once, one Allure report.

Runs pytest as the nightly's runners do (a subprocess per shard over the shipped scenarios), then
merges the shards' Allure result folders with one `allure generate` (Allure 2 takes several
result folders and reads them as one run), as the nightly's report job does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from test_allure_report import allure_cli, generate
from test_pool_xdist import outcomes

from harness.sharding import shard_of

REPO_ROOT = Path(__file__).resolve().parents[1]


def pytest_run(*args: str | Path) -> str:
    command = [sys.executable, "-m", "pytest", "scenarios", "-p", "no:cacheprovider", *map(str, args)]
    result = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, check=False, env={**os.environ}, timeout=300
    )
    assert result.returncode in (0, 5), result.stdout + result.stderr
    return result.stdout


def collected(*args: str) -> list[str]:
    output = pytest_run("--collect-only", "-q", *args)
    return [line for line in output.splitlines() if "::" in line]


def test_n_shards_together_collect_every_item_exactly_once() -> None:
    everything = collected()
    shards = [collected("--lkdh-shard", f"{index}/3") for index in (1, 2, 3)]
    assert sorted(item for shard in shards for item in shard) == sorted(everything)
    assert all(shards), "an empty shard"
    for index, shard in enumerate(shards, start=1):  # the split is the node id's hash, nothing else
        assert shard == [item for item in everything if shard_of(item, 3) == index]


def test_a_bad_shard_is_a_usage_error() -> None:
    command = [sys.executable, "-m", "pytest", "scenarios", "--lkdh-shard", "4/3"]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 4 and "shard '4/3': I must be 1..N" in result.stderr


def test_the_shards_allure_results_merge_into_one_report(tmp_path: Path) -> None:
    folders, ran = [], 0
    for index in (1, 2):
        folder, junit = tmp_path / f"allure-shard-{index}", tmp_path / f"junit-{index}.xml"
        args = ["--target", "sim", "--lkdh-shard", f"{index}/2", "--alluredir", folder, "-q"]
        pytest_run(*args, "--junitxml", junit, "--lkdh-out", tmp_path / f"out-{index}")
        ran += sum(1 for outcome in outcomes(junit).values() if outcome != "skipped")
        folders.append(folder)
    cli = allure_cli()
    report = tmp_path / "report"
    subprocess.run(
        [cli, "generate", *map(str, folders), "-o", str(report), "--clean"],
        check=True,
        capture_output=True,
        timeout=180,
    )
    summary = json.loads((report / "widgets" / "summary.json").read_text())
    assert summary["statistic"]["total"] == ran > 20, summary
    alone = generate(cli, folders[0], tmp_path / "alone")
    assert json.loads((alone / "widgets" / "summary.json").read_text())["statistic"]["total"] < ran

"""The VM path's own cost, the split of a hardware suite across hosts, and a pool's throughput.

    .venv/bin/python bench/bench_vm_path.py

Three parts, each against a peer measured in the same run (bench/README.md, "VM path"):
1. Harness overhead per scenario on the Windows target: the shipped scenarios on a WindowsMachine
   over the Windows test double (tests/windows_double.py, in-process: no WinRM or SSH underneath),
   whose required waits (the one-minute spacing, `wait:` steps, reboots) pass on a virtual clock.
   So the wall time is all overhead (harness + double), and the virtual time is the floor a real
   VM would spend waiting. Peer: the same scenarios on the simulator directly.
2. Sharding: the virtual seconds of part 1 as each item's duration on a VM. The hash split
   (harness/sharding.py) against pytest-split's least-duration split given exact stored
   durations (its best case): the longest shard against the ideal (total / N), and how many items
   change shard when one scenario is added.
3. Scenarios per minute with 1 and 2 xdist workers: a pool of two simulators over the shipped
   scenarios, and a pool of three Windows doubles (tests/test_pool_xdist.py's project).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import pytest  # noqa: E402
from driver_package import BuiltPackage, build_package  # noqa: E402
from pytest_split.algorithms import LeastDurationAlgorithm  # noqa: E402
from signing import SigningIdentity, make_identity  # noqa: E402
from test_pool_xdist import SCENARIO_FILES, make_windows_pool_project, outcomes  # noqa: E402
from test_windows_machine import SHIPPED, build_lab  # noqa: E402

from harness.runner import run_scenario  # noqa: E402
from harness.sharding import shard_of  # noqa: E402
from harness.target.sim import SimulatedMachine  # noqa: E402


def overhead(work: Path, identity: SigningIdentity, package: BuiltPackage) -> dict[str, float]:
    packages = {"1.2.3.4": package}
    with pytest.MonkeyPatch.context() as monkeypatch:
        lab = build_lab(work / "lab", monkeypatch, packages, identity)
        runnable = [loaded for loaded in SHIPPED if not loaded.scenario.machine]
        durations, wall_vm = {}, 0.0
        for loaded in runnable:
            began, virtual = time.perf_counter(), lab.vm.sim.now
            run_scenario(loaded, lab.machine)
            wall_vm += time.perf_counter() - began
            durations[f"scenarios/{loaded.file.name}::{loaded.run_name}[vm]"] = lab.vm.sim.now - virtual
        lab.machine.close()
    began = time.perf_counter()
    for loaded in runnable:
        with SimulatedMachine(work / "sim") as machine:
            run_scenario(loaded, machine)
    wall_sim = time.perf_counter() - began
    count = len(runnable)
    print(f"1. {count} scenarios on the Windows double: {wall_vm / count * 1000:.0f} ms wall each")
    print(f"   same scenarios on the simulator directly: {wall_sim / count * 1000:.0f} ms each")
    print(f"   overhead ratio (double / simulator): {wall_vm / wall_sim:.1f}x")
    floor = sum(durations.values())
    print(
        f"   virtual waits a VM would spend: {floor / count:.0f} s per scenario, {floor / 60:.0f} min in all"
    )
    print(f"   wall overhead against that floor: {wall_vm / floor * 100:.2f} %")
    return durations


class _Item:
    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid


def sharding(durations: dict[str, float]) -> None:
    total = sum(durations.values())
    print(f"2. {len(durations)} items, {total / 60:.0f} min of VM time in all")
    for count in (2, 3, 4):
        by_hash = [0.0] * count
        for node, seconds in durations.items():
            by_hash[shard_of(node, count) - 1] += seconds
        groups = LeastDurationAlgorithm()(count, [_Item(n) for n in durations], durations)
        by_split = [sum(durations[item.nodeid] for item in group.selected) for group in groups]
        ideal = total / count
        before = {item.nodeid: index for index, group in enumerate(groups) for item in group.selected}
        grown = {**durations, "scenarios/new.yaml::new_scenario[vm]": 75.0}
        after_groups = LeastDurationAlgorithm()(count, [_Item(n) for n in grown], grown)
        after = {item.nodeid: index for index, group in enumerate(after_groups) for item in group.selected}
        moved = sum(1 for node in durations if before[node] != after[node])
        print(
            f"   N={count}: longest shard / ideal: hash {max(by_hash) / ideal:.2f},"
            f" pytest-split {max(by_split) / ideal:.2f}; items moved by one new scenario:"
            f" hash 0, pytest-split {moved}"
        )


def pytest_rate(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, int]:
    junit = Path(tempfile.mkdtemp()) / "junit.xml"
    command = [
        sys.executable,
        "-m",
        "pytest",
        *args,
        "-q",
        "-p",
        "no:cacheprovider",
        "--junitxml",
        str(junit),
    ]
    began = time.perf_counter()
    subprocess.run(command, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, check=False)
    seconds = time.perf_counter() - began
    ran = sum(1 for outcome in outcomes(junit).values() if outcome != "skipped")
    return seconds, ran


def throughput(work: Path, identity: SigningIdentity, package: BuiltPackage) -> None:
    pool = work / "sim-pool.yaml"
    pool.write_text("pool:\n  - {kind: sim, name: sim-a}\n  - {kind: sim, name: sim-b}\n")
    print("3. scenarios per minute (whole pytest process, start-up included)")
    for workers in (1, 2):
        args = ["scenarios", "--target", "sim", "--target-config", str(pool), "-n", str(workers)]
        args += [
            "--basetemp",
            str(work / f"bt-sim-{workers}"),
            "--lkdh-out",
            str(work / f"out-sim-{workers}"),
        ]
        seconds, ran = pytest_rate(args, REPO)
        print(f"   simulator pool, -n {workers}: {ran} in {seconds:.1f} s = {ran / seconds * 60:.0f}/min")
    project, env = make_windows_pool_project(work / "win", package, identity, stops_answering="")
    print(f"   (Windows pool: three doubles, {', '.join(SCENARIO_FILES)})")
    for workers in (1, 2):
        args = ["scenarios", "--target", "vm", "--target-config", "pool.yaml", "-n", str(workers)]
        args += ["--basetemp", str(project / f"bt-{workers}"), "--lkdh-out", f"out-{workers}"]
        seconds, ran = pytest_rate(args, project, env)
        print(
            f"   Windows-double pool, -n {workers}: {ran} in {seconds:.1f} s = {ran / seconds * 60:.0f}/min"
        )


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="lkdh-bench-vm-"))
    try:
        print(f"load average at start: {os.getloadavg()[0]:.1f} (2 shared cores)")
        identity = make_identity(work / "identity", "bench")
        package = build_package(work / "pkg" / "LkdhTestDriver", identity, version="1.2.3.4")
        durations = overhead(work, identity, package)
        sharding(durations)
        throughput(work, identity, package)
        print(f"load average at end: {os.getloadavg()[0]:.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""The pool on two KVM guests: scenarios per minute with 1 and 2 workers, the harness's own overhead
per scenario on a guest, and the run's total against its floor.

    .venv/bin/python bench/bench_kvm_pool.py

The project and guests are tests/test_pool_on_kvm.py's (tests/kvm_pool_project.py: four short
scenarios, each a live dump; two guests from tests/windows_kvm_lab.py, 512 MiB each, the Windows
test double provisioned and snapshotted). Each figure is a whole `pytest -n N` process over the
same four scenarios (bench/README.md, "The pool on two KVM guests"):
1. scenarios per minute, -n 1 and -n 2, on a pool of the two guests and on a pool of two simulators;
   peer: the same pool with one worker;
2. on the guests, what each scenario's wall time (its JUnit time) is made of: the VM's parts, timed
   by the project's conftest around the hypervisor's revert (QMP `snapshot-load`), the wait for the
   machine to answer again, and the machine's sleeps (the one-minute spacing left after the revert,
   `wait:` steps); the rest is the harness's own overhead (with the double's work in the guest and
   SSH: under TCG, both emulated). Peer: those waits, the run's floor. The CPU time of the pytest
   processes themselves (host side: the harness, its SSH client) is given beside it, since under
   TCG most of the rest is the guest's emulated CPU.
The load average is sampled every 5 s through each run.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from driver_package import build_package  # noqa: E402
from kvm_pool_project import SCENARIOS, make_project, pytest_args, start_pytest  # noqa: E402
from signing import make_identity  # noqa: E402
from windows_kvm_lab import lab_missing_reason, provisioned_lab  # noqa: E402


class LoadSampler:
    """The 1-minute load average every `every` s while a run lasts."""

    def __init__(self, every: float = 5.0) -> None:
        self.every, self.samples = every, [os.getloadavg()[0]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self.every):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])

    def describe(self) -> str:
        mean = sum(self.samples) / len(self.samples)
        return f"load {min(self.samples):.1f}-{max(self.samples):.1f} (mean {mean:.1f})"


def case_seconds(junit: Path, target: str) -> dict[str, float]:
    """Item name -> its JUnit time (setup, call and teardown: the lease and health check included),
    for the items of `target` (the other target's items are skipped)."""
    return {
        str(case.get("name")): float(case.get("time", 0))
        for case in ET.parse(junit).getroot().iter("testcase")
        if str(case.get("name")).endswith(f"[{target}]")
    }


def failures(junit: Path) -> list[str]:
    return [
        str(case.get("name"))
        for case in ET.parse(junit).getroot().iter("testcase")
        if case.find("failure") is not None or case.find("error") is not None
    ]


def timed_run(project: Path, target: str, workers: int, waits: Path | None = None) -> dict[str, object]:
    tag = f"{target}-{workers}"
    env = {"LKDH_WAIT_LOG": str(waits)} if waits else {}
    with LoadSampler() as load:
        began, cpu_before = time.perf_counter(), _children_cpu()
        process = start_pytest(project, pytest_args(target, workers, tag), env)
        output = process.communicate()[0].decode(errors="replace")
        seconds, cpu = time.perf_counter() - began, _children_cpu() - cpu_before
    junit = project / f"junit-{tag}.xml"
    cases = case_seconds(junit, target)
    failed = failures(junit)
    if len(cases) != len(SCENARIOS) or failed:
        print(output[-4000:])
        raise SystemExit(f"{tag}: {len(cases)} items, failed: {failed}")
    rate = len(cases) / seconds * 60
    print(
        f"   {target} pool, -n {workers}: {len(cases)} in {seconds:.1f} s = {rate:.2f}/min; {load.describe()}"
    )
    print(f"      CPU of the pytest processes (host side, start-up included): {cpu:.1f} s")
    return {"seconds": seconds, "rate": rate, "cases": cases, "load": load.describe(), "cpu": cpu}


def _children_cpu() -> float:
    """User + system seconds of the reaped child processes: pytest and its xdist workers (each
    reaped by its parent), and their ssh clients; not QEMU, which is this process's and still runs."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def split(waits: Path, cases: dict[str, float]) -> None:
    parts: dict[str, float] = {"revert": 0.0, "boot": 0.0, "wait": 0.0}
    for line in waits.read_text().splitlines():
        event = json.loads(line)
        parts[event["kind"]] += event["seconds"]
    count, wall = len(cases), sum(cases.values())
    floor = sum(parts.values())
    overhead = wall - floor
    print(f"   scenario wall, sum of {count} JUnit times: {wall:.1f} s ({wall / count:.1f} s each)")
    print(
        f"   the VM's parts: reverts {parts['revert']:.1f} s,"
        f" answering again after them {parts['boot']:.1f} s,"
        f" the machine's sleeps (spacing, wait:) {parts['wait']:.1f} s: floor {floor:.1f} s"
    )
    print(
        f"   harness overhead: {overhead:.1f} s = {overhead / count:.1f} s per scenario,"
        f" {overhead / floor * 100:.0f} % of the floor; total / floor = {wall / floor:.2f}"
    )


def main() -> None:
    reason = lab_missing_reason()
    if reason is not None:
        raise SystemExit(f"no KVM guest here: {reason}")
    work = Path(tempfile.mkdtemp(prefix="lkdh-bench-kvm-pool-"))
    try:
        print(f"load average at start: {os.getloadavg()[0]:.1f} (2 shared cores)")
        identity = make_identity(work / "identity", "bench")
        package = build_package(work / "pkg" / "LkdhTestDriver", identity, version="1.2.3.4")
        with contextlib.ExitStack() as stack:
            labs = {}
            for name in ("kvm-a", "kvm-b"):
                with LoadSampler() as load:
                    began = time.perf_counter()
                    labs[name] = stack.enter_context(
                        provisioned_lab(work / name, package, identity, name=name, memory_mib=512)
                    )
                print(
                    f"guest {name} ({labs[name].guest.accel}): booted, double installed, provisioned"
                    f" (one real reboot {labs[name].provision_seconds:.0f} s), snapshot taken in"
                    f" {time.perf_counter() - began:.0f} s; {load.describe()}"
                )
            project = make_project(work / "project", labs, package, identity)
            print(f"1. scenarios per minute, whole pytest processes: {', '.join(SCENARIOS)}")
            runs = {
                (target, workers): timed_run(
                    project, target, workers, work / f"waits-{workers}.jsonl" if target == "vm" else None
                )
                for target in ("sim", "vm")
                for workers in (1, 2)
            }
            for target in ("sim", "vm"):
                ratio = runs[(target, 2)]["rate"] / runs[(target, 1)]["rate"]  # type: ignore[operator]
                print(f"   {target}: -n 2 / -n 1 = {ratio:.2f}x")
            for workers in (1, 2):
                print(f"2. on the guests, -n {workers} (both workers' scenarios summed):")
                split(work / f"waits-{workers}.jsonl", runs[("vm", workers)]["cases"])  # type: ignore[arg-type]
        print(f"load average at end: {os.getloadavg()[0]:.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""The pool on two real VMs: two KVM guests (windows_kvm_lab.py, 512 MiB each), each the Windows
test double provisioned and snapshotted, listed in one pool config and driven by `pytest -n 2`.

Phase 1: each xdist worker leases a different guest (a flock per guest, harness/pool.py), the four
scenarios are spread over both guests, each ends as on the simulator, and the two workers' Allure
results make one report. Phase 2, on the same guests: as soon as a worker has leased guest A (its
health check passed), A's QEMU is stopped through its QMP monitor, as a host losing a VM does. The
scenario running there ends in a target error, A then fails its health check and is taken out with
the reason in the run summary, and the scenario runs again on guest B once B's worker is done with
it; every scenario still ends as on the simulator, each once in Allure.

The pytest runs are real subprocesses in a throwaway project (kvm_pool_project.py) whose conftest
builds each member's WindowsMachine through `pytest_lkdh_make_vm`, commands over SSH. Both guests
boot once for the whole test; they are stopped in the lab's finalizer. Skipped, with the reason,
where the guests cannot boot (kvm_guest.py).
"""

from __future__ import annotations

import contextlib
import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from driver_package import BuiltPackage
from kvm_pool_project import SCENARIOS, make_project, pytest_args, start_pytest
from signing import SigningIdentity
from test_allure_report import allure_cli, generate
from test_pool_xdist import outcomes
from windows_kvm_lab import WindowsLab, lab_missing_reason, provisioned_lab

from harness.pool import lease_history, out_of_pool

KVM_MISSING = lab_missing_reason()
pytestmark = pytest.mark.skipif(KVM_MISSING is not None, reason=KVM_MISSING or "")

RUN_TIMEOUT = 1800.0
"""Two TCG guests on two shared cores: a scenario took 1-3 minutes here; this is a bound."""


@pytest.fixture(scope="module")
def two_guests(
    tmp_path_factory: pytest.TempPathFactory,
    packages: dict[str, BuiltPackage],
    identity: SigningIdentity,
) -> Iterator[dict[str, WindowsLab]]:
    folder = tmp_path_factory.mktemp("pool-on-kvm")
    with contextlib.ExitStack() as stack:
        labs = {
            name: stack.enter_context(
                provisioned_lab(folder / name, packages["1.2.3.4"], identity, name=name, memory_mib=512)
            )
            for name in ("kvm-a", "kvm-b")
        }
        yield labs


def by_scenario(junit: Path, target: str) -> dict[str, str]:
    """Scenario name -> outcome, for the items of one target."""
    suffix = f"[{target}]"
    return {
        name.rsplit("::", 1)[1].removesuffix(suffix): outcome
        for name, outcome in outcomes(junit).items()
        if name.endswith(suffix)
    }


def machines_used(junit: Path) -> dict[str, list[str]]:
    """Scenario name -> the pool members it ran on, in order (the plugin's `lkdh_machine` property,
    one per attempt)."""
    found: dict[str, list[str]] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = str(case.get("name"))
        if not name.endswith("[vm]"):
            continue  # the [sim] items of the same files, skipped under --target vm
        found[name.removesuffix("[vm]")] = [
            str(prop.get("value")) for prop in case.iter("property") if prop.get("name") == "lkdh_machine"
        ]
    return found


def allure_results(folder: Path) -> list[str]:
    return sorted(json.loads(path.read_text())["name"] for path in folder.glob("*-result.json"))


def run(project: Path, args: list[str]) -> str:
    process = start_pytest(project, args)
    return process.communicate(timeout=RUN_TIMEOUT)[0].decode(errors="replace")


def test_two_kvm_guests_in_a_pool_share_the_scenarios_and_one_that_dies_is_replaced(
    two_guests: dict[str, WindowsLab],
    tmp_path: Path,
    packages: dict[str, BuiltPackage],
    identity: SigningIdentity,
) -> None:
    project = make_project(tmp_path / "project", two_guests, packages["1.2.3.4"], identity)
    reference = run(project, pytest_args("sim", 1, "sim"))
    on_sim = by_scenario(project / "junit-sim.xml", "sim")
    assert sorted(on_sim) == sorted(SCENARIOS) and "failed" not in on_sim.values(), reference

    # Phase 1: two workers, two guests.
    output = run(project, pytest_args("vm", 2, "both"))
    leases = lease_history(project / "bt-both" / "lkdh-leases")
    assert len(leases) == 2, output
    assert {item["member"] for item in leases} == {"kvm-a", "kvm-b"}, output
    assert len({item["worker"] for item in leases}) == 2 and len({item["pid"] for item in leases}) == 2
    assert all("snapshot exists" in item["health"] for item in leases), "leased after the QMP check"
    assert out_of_pool(project / "bt-both" / "lkdh-leases") == [], output
    used = machines_used(project / "junit-both.xml")
    assert all(len(members) == 1 for members in used.values()), used
    assert {members[0] for members in used.values()} == {"kvm-a", "kvm-b"}, "spread over both guests"
    assert by_scenario(project / "junit-both.xml", "vm") == on_sim, output
    assert allure_results(project / "allure-both") == sorted(f"{name}[vm]" for name in SCENARIOS)
    report = generate(allure_cli(), project / "allure-both", project / "report-both")
    summary = json.loads((report / "widgets" / "summary.json").read_text())
    assert summary["statistic"]["total"] == len(SCENARIOS), summary

    # Phase 2: guest A's QEMU stopped under the worker that just leased it.
    process = start_pytest(project, pytest_args("vm", 2, "loss"))
    lease_folder = project / "bt-loss" / "lkdh-leases"
    deadline, holder = time.monotonic() + RUN_TIMEOUT, None
    while holder is None and time.monotonic() < deadline and process.poll() is None:
        holder = next((item for item in lease_history(lease_folder) if item["member"] == "kvm-a"), None)
        time.sleep(0.2)
    assert holder is not None, "a worker leased kvm-a"
    two_guests["kvm-a"].guest.vm.stop()  # `quit` on its QMP monitor: the VM is gone
    output = process.communicate(timeout=RUN_TIMEOUT)[0].decode(errors="replace")

    (out,) = out_of_pool(lease_folder)
    assert (out.member, out.worker) == ("kvm-a", holder["worker"]), output
    assert "ended in a target error" in out.reason and "then" in out.reason, out.reason
    assert f"kvm-a taken out by {holder['worker']}: " in output, "the reason is in the run summary"
    later = [item for item in lease_history(lease_folder) if item["worker"] == holder["worker"]]
    assert [item["member"] for item in later] == ["kvm-a", "kvm-b"], "its worker went on on kvm-b"
    used = machines_used(project / "junit-loss.xml")
    retried = [name for name, members in used.items() if members == ["kvm-a", "kvm-b"]]
    assert len(retried) == 1, used
    assert all(members[-1] == "kvm-b" for members in used.values()), "kvm-b ran every scenario in the end"
    assert by_scenario(project / "junit-loss.xml", "vm") == on_sim, output
    assert allure_results(project / "allure-loss") == sorted(f"{name}[vm]" for name in SCENARIOS)

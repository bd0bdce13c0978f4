"""A pool under real pytest-xdist runs: the leases, a worker killed while holding one, a machine
taken out and its scenario retried elsewhere, Allure results of every worker in one report.

Each test starts pytest in a subprocess, as a user would. The simulator pool runs the shipped
scenarios; the Windows pool puts one test double per member (tests/windows_double.py, as
tests/test_windows_machine.py's `build_lab` wires it) behind the plugin's `pytest_lkdh_make_vm`
hook, in a throwaway project whose conftest builds them. One member ("win-a") stops answering
after a number of commands, as a VM that hangs or loses its network does.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from driver_package import BuiltPackage
from signing import SigningIdentity
from test_allure_report import allure_cli, generate
from test_windows_machine import ADMIN_PASSWORD, CONFIG, USER_PASSWORD, _write_build

from harness.pool import lease_history, out_of_pool

REPO_ROOT = Path(__file__).resolve().parents[1]
TESTS = REPO_ROOT / "tests"
SCENARIO_FILES = (
    "store_then_create.yaml",
    "remove_then_create.yaml",
    "collection_parameter.yaml",
    "dmf_data_size.yaml",
    "secondary_data.yaml",
)

INNER_CONFTEST = '''
import os, sys
sys.path.insert(0, os.environ["LKDH_TESTS_DIR"])
from windows_double import WindowsDoubleSession, WindowsDoubleSessions, WindowsVmDouble
from harness.target.sim import SimSettings, SimulatedMachine
from harness.target.windows.machine import WindowsMachine
from harness.target.windows.session import SessionError

ADMIN, USER = "lkdh-admin", "lkdh-user"


class StopsAnswering(WindowsDoubleSession):
    """The VM answers `budget` commands, then refuses every connection (it hung, or lost its network)."""

    def __init__(self, vm, host, counter):
        super().__init__(vm, host)
        self.counter = counter

    def run(self, argv, **kwargs):
        self.counter[0] -= 1
        if self.counter[0] < 0:
            raise SessionError("tcp", self.host, "connection refused: the VM stopped answering")
        return super().run(argv, **kwargs)


class Sessions(WindowsDoubleSessions):
    def __init__(self, vm, budget):
        super().__init__(vm)
        self.counter = [budget]

    def winrm(self, host, settings):
        super().winrm(host, settings)
        return StopsAnswering(self.vm, host, self.counter)


def pytest_lkdh_make_vm(target_config, output_dir):
    sim = SimulatedMachine(output_dir.parent / f"disk-{target_config.name}", SimSettings(verifier=False))
    env = os.environ
    accounts = {ADMIN: env["LKDH_DOUBLE_ADMIN_PASSWORD"], USER: env["LKDH_DOUBLE_USER_PASSWORD"]}
    vm = WindowsVmDouble(sim, host=target_config.host, accounts=accounts, admin=ADMIN)
    flaky, _, budget = os.environ.get("LKDH_STOPS_ANSWERING", "").partition(":")
    sessions = Sessions(vm, int(budget) if flaky == target_config.name else 10**9)

    def sleep(seconds):
        sim.now += seconds

    clocks = {"sleep": sleep, "clock": sim.clock, "wall_clock": sim.clock}
    return WindowsMachine(output_dir, target_config, sessions, **clocks)
'''


def pytest_run(
    args: list[str | Path], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", *map(str, args)],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def outcomes(junit: Path) -> dict[str, str]:
    """Item name -> passed / failed / skipped / xfailed, from pytest's JUnit XML."""
    found = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        skipped = case.find("skipped")
        if skipped is not None and skipped.get("type") == "pytest.xfail":
            found[name] = "xfailed"
        else:
            found[name] = {"failure": "failed", "error": "failed", "skipped": "skipped"}.get(
                kinds[0] if kinds else "", "passed"
            )
    return found


def test_a_worker_killed_while_holding_a_lease_frees_its_machine_at_once(tmp_path: Path) -> None:
    """One machine, two workers: the second waits for the lease the first holds. SIGKILL the first
    (no cleanup, no atexit): the kernel drops its flock, so a waiting worker gets the machine at
    once, well inside the lease timeout, instead of failing with "no machine came free"."""
    pool = tmp_path / "one-sim.yaml"
    pool.write_text("pool:\n  - {kind: sim, name: sim-a}\n", encoding="utf-8")
    base = tmp_path / "bt"
    args = ["scenarios", "--target", "sim", "--target-config", pool, "-n", "2"]
    args += ["--basetemp", base, "-p", "no:cacheprovider", "--lkdh-out", tmp_path / "out"]
    args += ["--lkdh-lease-timeout", "60", "--junitxml", tmp_path / "junit.xml", "-q"]
    process = pytest_run(args, REPO_ROOT)
    leases = base / "lkdh-leases"
    deadline = time.monotonic() + 120
    victim, killed_at = None, 0.0
    while victim is None and time.monotonic() < deadline:
        held = lease_history(leases)
        if held:
            victim = held[0]
            os.kill(victim["pid"], signal.SIGKILL)
            killed_at = time.monotonic()
        time.sleep(0.01)
    taken_again = None
    while victim is not None and taken_again is None and time.monotonic() < killed_at + 60:
        later = lease_history(leases)[1:]
        taken_again = time.monotonic() if later else None
        time.sleep(0.05)
    output = process.communicate(timeout=300)[0].decode()
    assert victim is not None and taken_again is not None, output
    assert taken_again - killed_at < 30, "leased again long before the 60 s lease timeout"
    successor = lease_history(leases)[1]
    assert successor["pid"] != victim["pid"] and successor["member"] == "sim-a"
    assert "came free" not in output, output
    results = outcomes(tmp_path / "junit.xml")
    failed = [name for name, outcome in results.items() if outcome == "failed"]
    assert len(failed) <= 1 and f"worker '{victim['worker']}' crashed" in output, output
    assert sum(outcome in ("passed", "xfailed") for outcome in results.values()) >= 40, output


@pytest.fixture
def windows_pool_project(
    tmp_path: Path, packages: dict[str, BuiltPackage], identity: SigningIdentity
) -> tuple[Path, dict[str, str]]:
    return make_windows_pool_project(tmp_path, packages["1.2.3.4"], identity)


def make_windows_pool_project(
    tmp_path: Path, package: BuiltPackage, identity: SigningIdentity, stops_answering: str = "win-a:60"
) -> tuple[Path, dict[str, str]]:
    """A project with three Windows doubles in one pool; win-a stops answering after 60 commands."""
    project = tmp_path / "project"
    project.mkdir(parents=True)
    _write_build(project / "build", package, identity)
    (project / "conftest.py").write_text(INNER_CONFTEST, encoding="utf-8")
    (project / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n", encoding="utf-8")
    (project / "scenarios").mkdir()
    for name in SCENARIO_FILES:
        shutil.copy(REPO_ROOT / "scenarios" / name, project / "scenarios" / name)
    members = []
    for name in ("win-a", "win-b", "win-c"):
        member = CONFIG.format(
            host=f"{name}.test",
            admin="lkdh-admin",
            user="lkdh-user",
            certificate_line="  certificate: build/LkdhTest.cer\n",
            package="build/LkdhTestDriver",
        ).replace("name: win-double", f"name: {name}")
        members.append("  - " + member.replace("\n", "\n    ").rstrip() + "\n")
    (project / "pool.yaml").write_text("pool:\n" + "".join(members), encoding="utf-8")
    env = {
        "LKDH_TESTS_DIR": str(TESTS),
        "LKDH_DOUBLE_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "LKDH_DOUBLE_USER_PASSWORD": USER_PASSWORD,
        "LKDH_STOPS_ANSWERING": stops_answering,
    }
    return project, env


def run_windows_pool(project: Path, env: dict[str, str], workers: int, tag: str) -> tuple[str, Path]:
    base = project / f"bt-{tag}"
    args = ["scenarios", "--target", "vm", "--target-config", "pool.yaml", "-n", str(workers)]
    args += ["--basetemp", base, "--lkdh-out", f"out-{tag}", "--alluredir", f"allure-{tag}"]
    args += ["--junitxml", f"junit-{tag}.xml", "-rA"]
    process = pytest_run(args, project, env)
    output = process.communicate(timeout=600)[0].decode()
    return output, base / "lkdh-leases"


def sim_outcomes(project: Path, env: dict[str, str]) -> dict[str, str]:
    args = ["scenarios", "--target", "sim", "--junitxml", "junit-sim.xml", "-q", "--lkdh-out", "out-sim"]
    process = pytest_run(args, project, env)
    output = process.communicate(timeout=300)[0].decode()
    assert process.returncode == 0, output
    return outcomes(project / "junit-sim.xml")


@pytest.mark.parametrize("workers", [1, 2])
def test_a_windows_pool_spreads_scenarios_and_retries_on_another_vm_when_one_fails(
    windows_pool_project: tuple[Path, dict[str, str]], workers: int
) -> None:
    project, env = windows_pool_project
    output, leases = run_windows_pool(project, env, workers, f"n{workers}")
    history = lease_history(leases)
    holders = {item["member"]: item["worker"] for item in history}
    assert len({item["worker"] for item in history}) == workers, output
    (out,) = out_of_pool(leases)
    assert out.member == "win-a", output
    assert "ended in a target error" in out.reason and "the VM stopped answering" in out.reason
    assert "win-a taken out by" in output and "the VM stopped answering" in output, "reported in the summary"
    assert holders["win-a"] == out.worker and len(holders) == workers + 1, "a spare took win-a's place"

    # the same outcome per scenario as the simulator itself, the retried one included
    vm_run = outcomes(project / f"junit-n{workers}.xml").items()
    on_vms = {name.replace("[vm]", ""): result for name, result in vm_run if "[vm]" in name}
    on_sim = {
        name.replace("[sim]", ""): result
        for name, result in sim_outcomes(project, env).items()
        if "[sim]" in name
    }
    assert on_vms == on_sim and "failed" not in on_vms.values(), output

    # every worker's Allure results in one folder make one report with every item once
    results = project / f"allure-n{workers}"
    report = generate(allure_cli(), results, project / f"report-n{workers}")
    summary = json.loads((report / "widgets" / "summary.json").read_text())
    assert summary["statistic"]["total"] == len(on_vms), summary  # the retried item once

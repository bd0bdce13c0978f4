"""A throwaway project whose target config is a pool of provisioned KVM guests (windows_kvm_lab.py).

Shared by tests/test_pool_on_kvm.py (the pool's behaviour on real VMs) and bench/bench_kvm_pool.py
(its throughput and the harness's overhead there): one recipe, so the figures are of what is tested.

The project's conftest builds each member's machine through the plugin's `pytest_lkdh_make_vm` hook:
a WindowsMachine over the member's own config, with the product's own sessions (the lab's config
says `commands: ssh`: no WinRM server runs on Linux). It also times, per worker, the parts of each run
that are the VM's and not the harness's: the hypervisor's revert, the wait for the machine to answer
again (after a revert, a reboot or a crash), and the machine's own sleeps (the one-minute spacing,
`wait:` steps). Those go to `LKDH_WAIT_LOG` (one JSON line per interval) when it is set; the nested
intervals (the guest's polling sleeps inside a boot wait) count once, as the outer one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from driver_package import BuiltPackage
from signing import SigningIdentity
from test_windows_machine import _write_build
from windows_kvm_lab import WindowsLab

REPO_ROOT = Path(__file__).resolve().parents[1]
TESTS = REPO_ROOT / "tests"
SCENARIO_FILES = ("store_then_create.yaml", "remove_then_create.yaml", "store_remove_more.yaml")
SCENARIOS = (
    "store_then_create_contains_buffer",
    "store_duplicate_is_kept_twice",
    "remove_then_create_excludes_buffer",
    "store_exact_ranges",
)
"""Four short scenarios, each a live dump pulled and checked: no reboot, no 16 MiB buffer, so that
two TCG guests on two shared cores get through them in minutes. Each creates a live dump, so the
one-minute rule applies between them on one machine: the wait a second VM takes off the run."""
SELECTION = " or ".join(SCENARIOS)

CONFTEST = '''
import json, os, sys, time
sys.path.insert(0, os.environ["LKDH_TESTS_DIR"])
from harness.target.windows.stage_check import ConfiguredSessions
from harness.target.windows.machine import WindowsMachine

_depth = [0]


def _record(member, kind, began, seconds):
    path = os.environ.get("LKDH_WAIT_LOG")
    if not path:
        return
    line = {"member": member, "kind": kind, "began": began, "seconds": seconds, "pid": os.getpid()}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (json.dumps(line) + "\\n").encode())
    finally:
        os.close(fd)


def _timed(member, kind, function):
    """`function`, its time recorded as `kind` unless it runs inside another timed part."""
    def timed(*args, **kwargs):
        _depth[0] += 1
        began, started = time.time(), time.monotonic()
        try:
            return function(*args, **kwargs)
        finally:
            _depth[0] -= 1
            if _depth[0] == 0:
                _record(member, kind, began, time.monotonic() - started)
    return timed


def pytest_lkdh_make_vm(target_config, output_dir):
    name = target_config.name
    sessions = ConfiguredSessions()
    machine = WindowsMachine(output_dir, target_config, sessions, sleep=_timed(name, "wait", time.sleep))
    machine.hypervisor.revert = _timed(name, "revert", machine.hypervisor.revert)
    machine.guest.wait_for_new_boot = _timed(name, "boot", machine.guest.wait_for_new_boot)
    return machine
'''


def member_text(lab: WindowsLab, name: str) -> str:
    """The lab's own target config (kvm.yaml) as a pool member called `name`, indented for `pool:`."""
    text = (lab.folder / "kvm.yaml").read_text(encoding="utf-8")
    renamed = text.replace(f"name: {lab.config.name}\n", f"name: {name}\n", 1)
    assert renamed != text, "the lab's config names its machine on its first line"
    return "  - " + renamed.rstrip().replace("\n", "\n    ") + "\n"


def make_project(
    folder: Path, labs: dict[str, WindowsLab], package: BuiltPackage, identity: SigningIdentity
) -> Path:
    """The project: the scenario files, the driver build, the conftest, and pool.yaml listing `labs`
    under their member names (in that order: worker gwN starts at member N)."""
    folder.mkdir(parents=True)
    _write_build(folder / "build", package, identity)
    (folder / "conftest.py").write_text(CONFTEST, encoding="utf-8")
    (folder / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n", encoding="utf-8")
    (folder / "scenarios").mkdir()
    for name in SCENARIO_FILES:
        shutil.copy(REPO_ROOT / "scenarios" / name, folder / "scenarios" / name)
    members = "".join(member_text(lab, name) for name, lab in labs.items())
    (folder / "pool.yaml").write_text("pool:\n" + members, encoding="utf-8")
    (folder / "sim-pool.yaml").write_text(
        "pool:\n" + "".join(f"  - {{kind: sim, name: sim-{name}}}\n" for name in labs), encoding="utf-8"
    )
    return folder


def pytest_args(target: str, workers: int, tag: str) -> list[str]:
    """One run over the four scenarios on a pool (`vm`: the guests, `sim`: as many simulators)."""
    pool = "pool.yaml" if target == "vm" else "sim-pool.yaml"
    args = ["scenarios", "--target", target, "--target-config", pool, "-k", SELECTION]
    args += ["-n", str(workers), "--basetemp", f"bt-{tag}", "--lkdh-out", f"out-{tag}"]
    args += ["--alluredir", f"allure-{tag}", "--junitxml", f"junit-{tag}.xml", "-rA"]
    return args


def start_pytest(
    project: Path, args: list[str], env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", *args],
        cwd=project,
        env={**os.environ, "LKDH_TESTS_DIR": str(TESTS), **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )

"""The run journal on a real VM: `lkdh run --target vm --journal`, SIGKILLed mid-scenario, `--resume`.

The KVM lab (windows_kvm_lab.py: the Windows test double in a Debian guest, provisioned once and
reverted to its snapshot before every scenario through `kind: qemu`) is driven by `lkdh run` itself,
as a real process, through nothing but its target config: `commands: ssh` sends the harness's
commands to the guest's sshd, dumps come back over its SFTP server.

Three shipped scenarios run: a live dump; a bugcheck under Verifier (a real kernel panic and
reboot), then a 61 s wait and another live dump; a standard-user IOCTL. The harness is frozen each
time the journal grows and SIGKILLed once the second scenario has journalled its first step (the
crash, its crash dump pulled): a kill inside a scenario, after a dump of it was collected. The
resumed run must
- skip the finished scenario (its recorded result stands) and run the cut-off one again, on a
  reverted VM (a file written on the guest after the kill is gone when it starts again);
- end with the records of an uninterrupted run: the same scenarios run directly on the simulator
  (`lkdh run --target sim`) give the same outcomes, step facts and dump facts (as
  test_windows_on_kvm.py compares a VM run with a simulator run);
- keep every dump and log collected before the kill, and pull no dump twice: each local dump file
  present after the kill is the same file (inode, modification time) after the resume, and the
  crash dump the re-run wrote again (same guest name, same SHA-256) is that kept copy.
Skipped, with the reason, where the lab cannot be built (windows_kvm_lab.lab_missing_reason).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from driver_package import BuiltPackage
from signing import SigningIdentity
from test_journal import LKDH, kill_inside_a_scenario
from test_windows_machine import _dump_facts, _step_facts
from windows_kvm_lab import PROFILE, SCENARIOS, SNAPSHOT, WindowsLab, lab_missing_reason, provisioned_lab

from harness.report.journal import read_journal, record_from_json
from harness.scenario import load_scenarios
from harness.target.windows.session import CommandTimeout, SessionError

KVM_MISSING = lab_missing_reason()
pytestmark = pytest.mark.skipif(KVM_MISSING is not None, reason=KVM_MISSING or "")

REPO_ROOT = Path(__file__).resolve().parents[1]
CUT = SCENARIOS[1]
KILL_DEADLINE = 2400.0
RUN_DEADLINE = 3600.0
"""Bounds for TCG on busy cores (a provisioned guest's scenario took minutes there), not expectations."""
MARKER = "/root/written-after-the-kill"


@pytest.fixture(scope="module")
def windows_lab(
    tmp_path_factory: pytest.TempPathFactory,
    packages: dict[str, BuiltPackage],
    identity: SigningIdentity,
) -> Iterator[WindowsLab]:
    with provisioned_lab(tmp_path_factory.mktemp("journal-on-kvm"), packages["1.2.3.4"], identity) as lab:
        yield lab


def shipped_documents(names: tuple[str, ...], destination: Path) -> Path:
    """The shipped scenario documents named, verbatim and in this order, as one scenario file."""
    loaded = {item.scenario.name: item for item in load_scenarios(REPO_ROOT / "scenarios")}
    documents = []
    for name in names:
        text = loaded[name].file.read_text(encoding="utf-8")
        (document,) = [part for part in text.split("\n---\n") if f"\nname: {name}\n" in f"\n{part}\n"]
        documents.append(document.strip("\n") + "\n")
    destination.write_text("---\n".join(documents), encoding="utf-8")
    return destination


def lkdh_run(log: Path, *args: str | Path) -> subprocess.Popen[bytes]:
    """`lkdh run` as its own process (so SIGKILL takes nothing of the test with it); output to `log`."""
    with log.open("ab") as output:
        return subprocess.Popen(
            [*LKDH, "run", *map(str, args)],
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def records(out: Path) -> dict[str, dict]:
    return {item["scenario"]: item for item in json.loads((out / "run-record.json").read_text())["scenarios"]}


def dump_files(out: Path) -> dict[Path, tuple[int, int]]:
    """Every dump file under `out` with its inode and modification time: a file pulled again is a
    new file (or at least a newer one)."""
    return {
        path: (path.stat().st_ino, path.stat().st_mtime_ns)
        for path in out.rglob("dumps/**/*")
        if path.is_file() and not path.name.endswith((".txt", ".svg"))
    }


def started(journal: Path, name: str) -> int:
    lines = [json.loads(line) for line in journal.read_text().splitlines() if line.endswith("}")]
    return sum(1 for event in lines if event["event"] == "scenario_started" and event["scenario"] == name)


def guest_has(lab: WindowsLab, path: str, deadline: float = 900.0) -> bool:
    """Whether the guest's disk holds `path`, asked until the guest answers: the cut-off scenario
    bugchecks at its first step, so the guest may be panicking and rebooting (from the same reverted
    disk) just when the test asks, and a busy TCG guest takes minutes to come back (seen in a loaded
    run: no SSH answer within 60 s)."""
    until = time.monotonic() + deadline
    while True:
        try:
            with lab.guest.session() as root:
                return root.run(["test", "-e", path], timeout=300).ok
        except (SessionError, CommandTimeout):
            if time.monotonic() > until:
                raise
            time.sleep(2)


def test_a_run_on_the_guest_killed_mid_scenario_resumes_to_an_uninterrupted_runs_record(
    windows_lab: WindowsLab, tmp_path: Path
) -> None:
    lab = windows_lab
    scenario_file = shipped_documents(SCENARIOS, tmp_path / "kvm_journal.yaml")
    sim_out, cut_out, journal = tmp_path / "sim", tmp_path / "vm", tmp_path / "run.journal"
    reference = lkdh_run(tmp_path / "sim.log", scenario_file, "--sim-profile", PROFILE, "--out", sim_out)
    reference_code = reference.wait(timeout=600)
    assert (sim_out / "run-record.json").exists(), (tmp_path / "sim.log").read_text()

    target = ("--target", "vm", "--target-config", lab.folder / "kvm.yaml", "--out", cut_out)
    seconds: dict[str, float] = {}
    began = time.monotonic()
    first = lkdh_run(tmp_path / "first.log", scenario_file, *target, "--journal", journal)
    cut_off = kill_inside_a_scenario(first, journal, finished=1, steps=1, deadline=KILL_DEADLINE, poll=0.05)
    seconds["until the kill"] = round(time.monotonic() - began, 1)
    assert cut_off == [CUT], (tmp_path / "first.log").read_text()
    before = read_journal(journal)
    assert list(before.finished) == [SCENARIOS[0]]
    pulled_before = [dump for dump in before.dumps if dump["scenario"] == CUT]
    assert pulled_before, "the crash dump of the cut-off scenario was pulled before the kill"
    kept = dump_files(cut_out)
    assert {Path(d["path"]).absolute() for d in before.dumps} <= {p.absolute() for p in kept}
    cut_log = cut_out / CUT / "vm" / "run.log"
    log_before = cut_log.read_text()
    assert not (cut_out / "run-record.json").exists(), "killed: it never wrote its record"

    with lab.guest.session() as root:  # after the snapshot: a revert takes it away
        # synced: the re-run's bugcheck panics the guest, and an unsynced marker would vanish with it
        assert root.run(["sh", "-c", f"touch {MARKER} && sync"], timeout=300).ok
    began = time.monotonic()
    resumed = lkdh_run(tmp_path / "resumed.log", scenario_file, *target, "--resume", journal)
    try:
        until = time.monotonic() + KILL_DEADLINE
        while started(journal, CUT) < 2:  # emitted after prepare(): the revert is done
            assert resumed.poll() is None, (tmp_path / "resumed.log").read_text()
            assert time.monotonic() < until, "the cut-off scenario did not start again"
            time.sleep(0.5)
        # the re-run's next revert is a scenario later, past the scenario's own 61 s wait
        assert not guest_has(lab, MARKER), "the cut-off scenario runs again on a reverted VM"
        code = resumed.wait(timeout=RUN_DEADLINE)
    finally:
        if resumed.poll() is None:
            resumed.kill()
            resumed.wait()
    seconds["resumed run"] = round(time.monotonic() - began, 1)
    assert code == reference_code, (tmp_path / "resumed.log").read_text()

    final, simulated = records(cut_out), records(sim_out)
    assert list(final) == list(simulated) == list(SCENARIOS)
    assert final[SCENARIOS[0]] == before.finished[SCENARIOS[0]], "the finished scenario's record stands"
    for name in SCENARIOS:
        on_vm, on_sim = record_from_json(final[name]), record_from_json(simulated[name])
        assert (on_vm.outcome, on_vm.error) == (on_sim.outcome, on_sim.error), on_vm.failure_text()
        assert _step_facts(on_vm) == _step_facts(on_sim), name
        assert _dump_facts(on_vm) == _dump_facts(on_sim), name
    journalled = [line for line in journal.read_text().splitlines() if '"scenario_started"' in line]
    assert [json.loads(line)["scenario"] for line in journalled] == [*SCENARIOS[:2], *SCENARIOS[1:]]

    # Nothing collected before the kill was lost or pulled again: the same files, untouched.
    after = dump_files(cut_out)
    assert {path: after.get(path) for path in kept} == kept
    recorded = [Path(dump["path"]) for item in final.values() for dump in item["dumps"]]
    assert len(recorded) == len(set(recorded)), "each dump once in the record"
    re_run = {Path(dump["path"]) for dump in final[CUT]["dumps"]}
    assert {Path(d["path"]) for d in pulled_before} <= re_run, "the crash dump written again is the kept copy"
    assert cut_log.read_text().startswith(log_before), "the log of the cut-off attempt is kept"
    print(f"\njournal on the {lab.guest.accel} guest, seconds (a record, not a test): {seconds}")


def test_lkdh_target_check_tests_the_ssh_channel_of_the_guest(windows_lab: WindowsLab) -> None:
    """`lkdh target check` on the lab's config, as a process: every stage passes over the SSH
    channel (no TLS stage), and the report names the channel it tested and SFTP on the same server."""
    checked = subprocess.run(
        [*LKDH, "target", "check", str(windows_lab.folder / "kvm.yaml")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_DEADLINE,
        check=False,
    )
    report = checked.stdout
    assert checked.returncode == 0, report + checked.stderr
    port = windows_lab.guest.ssh_port
    assert f"connected to 127.0.0.1:{port}" in report
    assert "skip  tls" in report and "commands: ssh: no TLS" in report
    assert f"; commands over Windows OpenSSH (ssh://lkdh-admin@127.0.0.1:{port}, cmd.exe)" in report
    assert "SFTP answers on the command connection (home /" in report
    assert "service LkdhTestDriver Running" in report and SNAPSHOT in report  # the hypervisor stage
    print(f"\n{report}")

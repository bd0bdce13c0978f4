"""WindowsMachine with its hypervisor as a crash witness (harness/target/windows/crash_witness.py).

The machine runs on the Windows double (tests/windows_double.py) with the real `QemuHypervisor` over
a QEMU stand-in that hears pvpanic when the double bugchecks (tests/crash_witness_double.py). Pinned
here: exactly what the Crash, the run log and the run record say when the witness reports a panic,
when it reports none (connected too late), when there is no witness; that a panic with no new boot
makes the machine wait for one; that the console is kept in the scenario's folder even when the
scenario fails; and that closing the machine closes the hypervisor. The real QEMU side (GUEST_PANICKED
from a real kernel panic, the console file QEMU writes) is tests/test_windows_on_kvm.py's.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from crash_witness_double import PvpanicQemu
from driver_package import BuiltPackage
from signing import SigningIdentity
from test_windows_machine import SHIPPED, Lab, build_lab

from harness.record import RunRecord
from harness.report.allure_results import AllureScenarioResult, options_from
from harness.report.run_log import RunLog
from harness.report.run_record import write_run_record
from harness.runner import run_scenario
from harness.target.base import TargetError
from harness.target.irql import Irql
from harness.target.ops import CONSOLE_LOG, Alloc, Store
from harness.target.windows.crash_witness import ConsoleFile, GuestPanic, crash_note, witness_of
from harness.target.windows.guest import BOOT_POLL_SECONDS
from harness.target.windows.hypervisor import NoHypervisor
from harness.target.windows.qemu_hypervisor import QemuHypervisor

CRASHING = "create_at_dispatch_bugchecks_under_verifier"
LOST = "the machine bugchecked and rebooted (the connection was reset while the command ran)"
BLUE = "*** STOP 0x000000D1 (the test's own console line)"


@pytest.fixture
def lab(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    packages: dict[str, BuiltPackage],
    identity: SigningIdentity,
) -> Lab:
    lab = build_lab(tmp_path, monkeypatch, packages, identity)
    lab.machine.prepare()
    return lab


def watched(lab: Lab, tmp_path: Path, *, earlier: str = "", **options: str) -> PvpanicQemu:
    """The machine's hypervisor becomes a QemuHypervisor watching the double; `earlier` is on the
    console before it attaches."""
    qemu = PvpanicQemu(lab.vm, tmp_path / "qemu-state" / "console.log", **options)
    qemu.console_lines_at_crash = [BLUE]
    qemu.write_console(earlier)
    lab.machine.hypervisor = QemuHypervisor(qemu)
    return qemu


def run_crashing(lab: Lab, out: Path) -> RunRecord:
    """The shipped bugcheck scenario with the run log and an Allure result (in out/allure)."""
    (loaded,) = [s for s in SHIPPED if s.scenario.name == CRASHING]
    lab.machine.output_dir = out
    allure = AllureScenarioResult(loaded, options_from(out / "allure"))
    record = run_scenario(loaded, lab.machine, [RunLog(out), allure], prepare=False)
    allure.write()
    return record


def allure_attachments(out: Path) -> dict[str, str]:
    """The Allure result's own attachments (name -> text)."""
    (result,) = [json.loads(p.read_text()) for p in (out / "allure").glob("*-result.json")]
    return {a["name"]: (out / "allure" / a["source"]).read_text() for a in result["attachments"]}


def crash_reason(record: RunRecord) -> str:
    (crashed,) = [step for step in record.steps if step.crash is not None]
    assert crashed.crash is not None
    return crashed.crash.reason


def test_a_panic_the_witness_reports_is_recorded_beside_the_new_boot(
    lab: Lab, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # What the console held before the harness attached is not this run's: copying starts after it.
    qemu = watched(lab, tmp_path, earlier="an earlier run\n")
    qemu.write_console("booted\n")
    caplog.set_level(logging.WARNING)
    out = tmp_path / "run"

    record = run_crashing(lab, out)

    assert record.outcome == "passed", record.failure_text()
    panic = "the hypervisor saw the panic too: QEMU (VM 'win-double') reported GUEST_CRASHLOADED (action run)"
    assert crash_reason(record) == f"{LOST}; {panic}"
    run_log = (out / "run.log").read_text(encoding="utf-8")
    assert f"  bugcheck 0xD1: {LOST}; {panic}\n" in run_log
    saved = json.loads(write_run_record(tmp_path / "record.json", [record]).read_text(encoding="utf-8"))
    (step,) = [s for s in saved["scenarios"][0]["steps"] if s["crash"] is not None]
    assert step["crash"]["reason"] == f"{LOST}; {panic}"
    assert (out / CONSOLE_LOG).read_text(encoding="utf-8") == f"booted\n{BLUE}\n"
    assert allure_attachments(out)["serial console"] == f"booted\n{BLUE}\n"
    seen = [r.getMessage() for r in caplog.records if "crash seen by" in r.getMessage()]
    assert len(seen) == 2, seen
    assert seen[0].startswith("win-double: crash seen by the boot identity (boot id 42, up ")
    assert " -> boot id 43, up " in seen[0]
    assert seen[1].startswith(
        "win-double: crash seen by the hypervisor: QEMU (VM 'win-double') reported GUEST_CRASHLOADED"
        " (action run), "
    )
    assert seen[1].endswith(" s after the operation started")


def test_a_witness_that_missed_the_panic_says_so_and_the_boot_identity_decides(
    lab: Lab, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    qemu = watched(lab, tmp_path, event="GUEST_PANICKED")
    qemu.connected = False  # QMP tells only connected clients: this one attached after the event
    caplog.set_level(logging.WARNING)

    record = run_crashing(lab, tmp_path / "run")

    assert record.outcome == "passed", record.failure_text()
    assert crash_reason(record) == (
        f"{LOST}; the hypervisor reported no panic (the new boot alone shows the crash: no pvpanic"
        " driver in the guest, or the hypervisor connected after the event)"
    )
    (seen,) = [r.getMessage() for r in caplog.records if "crash seen by" in r.getMessage()]
    assert seen.startswith("win-double: crash seen by the boot identity only (boot id 42")
    assert seen.endswith(": the hypervisor reported no panic")
    assert (tmp_path / "run" / CONSOLE_LOG).read_text(encoding="utf-8") == f"{BLUE}\n"


def test_without_a_witness_the_crash_is_the_boot_identitys_alone(lab: Lab, tmp_path: Path) -> None:
    assert isinstance(lab.machine.hypervisor, NoHypervisor) and witness_of(lab.machine.hypervisor) is None
    record = run_crashing(lab, tmp_path / "run")
    assert record.outcome == "passed", record.failure_text()
    assert crash_reason(record) == LOST
    assert not (tmp_path / "run" / CONSOLE_LOG).exists()
    assert "serial console" not in allure_attachments(tmp_path / "run")


def test_a_panic_without_a_new_boot_waits_for_one_and_keeps_the_console_of_the_failed_run(
    lab: Lab, tmp_path: Path
) -> None:
    """The witness heard a panic, yet the machine answers from the old boot: it has not come back
    yet, so the wait goes on to the boot deadline (no "did not reboot" at the first answer), then
    the error names both; the console is kept even though the scenario ends in an error."""
    qemu = watched(lab, tmp_path)
    lab.machine.output_dir = tmp_path / "run"
    lab.machine.execute(Alloc("a", 16, b"a"))
    qemu.panic_now()
    qemu.write_console("panic text\n")
    lab.vm.lose_next_lkdctl = True
    lab.sleeps.clear()
    with pytest.raises(TargetError) as caught:
        lab.machine.execute(Store("a", 16))
    message = str(caught.value)
    assert "it still answered from the old boot (no reboot happened)" in message
    assert message.endswith(
        "; yet the hypervisor saw a panic (QEMU (VM 'win-double') reported GUEST_CRASHLOADED (action run)):"
        " the machine crashed and has not come back from it"
    )
    boot_deadline = lab.machine.config.timeouts.boot
    assert lab.sleeps == [BOOT_POLL_SECONDS] * int(boot_deadline / BOOT_POLL_SECONDS)
    assert (tmp_path / "run" / CONSOLE_LOG).read_text(encoding="utf-8") == "panic text\n"


def test_without_a_panic_an_old_boot_answer_still_fails_at_once(lab: Lab, tmp_path: Path) -> None:
    watched(lab, tmp_path)
    lab.vm.lose_next_lkdctl = True
    lab.sleeps.clear()
    with pytest.raises(TargetError, match="did not reboot: it answers from the same boot") as caught:
        lab.machine.execute(Alloc("a", 16, b"a"))
    assert "hypervisor" not in str(caught.value)
    assert lab.sleeps == []


def test_a_crash_between_operations_is_still_the_witnesss(lab: Lab, tmp_path: Path) -> None:
    """Panics are asked for since the boot was confirmed, not since the operation began."""
    qemu = watched(lab, tmp_path)
    lab.machine.execute(Alloc("isr_data", 32, b"isr|"))
    result = lab.machine.execute(Store("isr_data", 32, irql=Irql.DISPATCH_LEVEL))
    assert result.crash is not None and result.crash.reason.endswith("(action run)")
    assert len(qemu.monitor.received) == 1
    after = lab.machine.execute(Alloc("b", 16, b"b"))  # the new boot: the old panic is not reported again
    assert after.crash is None


def test_a_machine_down_after_its_last_command_is_explained_by_the_witness(lab: Lab, tmp_path: Path) -> None:
    """A panic after the last command returned: nothing lost a command, but the dumps cannot be
    listed; the witness's report says why (the runner records it as the scenario's error)."""
    qemu = watched(lab, tmp_path)
    lab.vm._unreachable = 1  # the next connection is refused, as while the machine is down
    qemu.panic_now()
    with pytest.raises(TargetError) as caught:
        lab.machine.collect_dumps()
    assert str(caught.value) == (
        "the dumps could not be listed (win-double.test: tcp: connection refused (the machine is booting));"
        " yet the hypervisor saw a panic (QEMU (VM 'win-double') reported GUEST_CRASHLOADED (action run)):"
        " the machine crashed and has not come back from it"
    )
    lab.vm._unreachable = 1
    lab.machine.hypervisor = NoHypervisor()
    with pytest.raises(TargetError, match="connection refused") as plain:
        lab.machine.collect_dumps()
    assert "hypervisor" not in str(plain.value)


def test_closing_the_machine_keeps_the_console_and_closes_the_hypervisor(lab: Lab, tmp_path: Path) -> None:
    closed: list[str] = []

    class Recording(QemuHypervisor):
        def close(self) -> None:
            closed.append("hypervisor")
            super().close()

    qemu = PvpanicQemu(lab.vm, tmp_path / "console.log")
    lab.machine.hypervisor = Recording(qemu)
    lab.machine.output_dir = tmp_path / "last"
    qemu.write_console("shutting down\n")
    lab.machine.close()
    assert closed == ["hypervisor"]
    assert (tmp_path / "last" / CONSOLE_LOG).read_text(encoding="utf-8") == "shutting down\n"
    assert not qemu.monitor.closed, "a QemuMachine that is no AttachedQemu is its owner's to close"


def test_the_console_copy_starts_where_the_file_stood_and_follows_a_rewrite(tmp_path: Path) -> None:
    source, kept = tmp_path / "console.log", tmp_path / "out" / "console.log"
    source.write_bytes(b"an earlier run\n")
    console = ConsoleFile(source)
    assert console.keep(kept) == ""
    with source.open("ab") as stream:
        stream.write(b"this run \xff\n")
    assert console.keep(kept) == "this run \ufffd\n"
    source.write_bytes(b"new\n")  # QEMU restarted without append=on: the file starts again
    assert console.keep(kept) == "new\n"
    assert kept.read_bytes() == b"this run \xff\nnew\n"
    assert ConsoleFile(tmp_path / "none").keep(kept) == "" and ConsoleFile(None).keep(kept) == ""


def test_the_crash_note_names_the_first_report_and_counts_the_rest() -> None:
    first = GuestPanic(1.0, "GUEST_PANICKED", {"action": "run"}, "QEMU (VM 'x')")
    second = GuestPanic(2.0, "GUEST_CRASHLOADED", {}, "QEMU (VM 'x')")
    assert crash_note(None) == ""
    assert crash_note([first, second]) == (
        "; the hypervisor saw the panic too: QEMU (VM 'x') reported GUEST_PANICKED (action run) and 1 more"
    )
    assert second.describe() == "QEMU (VM 'x') reported GUEST_CRASHLOADED"

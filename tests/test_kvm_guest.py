"""A real Debian guest under QEMU, driven by the QEMU hypervisor: SSH, revert, reboot, panic, power cycle.

The guest is built once and cached (kvm_image.py); this module boots one overlay of it and takes its
clean snapshot once sshd answers. Boots are the expensive part, so one guest serves every test, and
each test that needs the clean machine reverts first, as a scenario's `prepare()` does.

What is asserted is what the Windows target relies on, for any guest:
- the project's SSH session reaches the guest and refuses a host key other than the pinned one;
- a revert (`snapshot-load`) forgets what was written after the snapshot and resumes the snapshot's
  own boot (same boot identity, /proc/sys/kernel/random/boot_id: a fresh random UUID per boot,
  independent of any clock);
- a reboot is seen by QEMU (a guest RESET event) and by the guest (a new boot identity), and the
  session reconnects;
- a kernel panic (sysrq 'c') reaches QEMU through pvpanic as GUEST_PANICKED, the panic's text is
  kept in the run's console log, the guest reboots itself (panic=1), and a revert gives the next
  scenario the clean machine back;
- a power cycle is a cold boot that keeps the disk, and the snapshot survives it.
Skipped, with the reason, where /dev/kvm is not usable (see kvm_guest.accelerator for where it opens
but cannot run Debian's kernel).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import kvm_image
import pytest
from kvm_guest import KvmGuest, kvm_missing_reason

from harness.target.windows.hypervisor import HypervisorError
from harness.target.windows.qemu_hypervisor import QemuHypervisor
from harness.target.windows.session import SessionError

KVM_MISSING = kvm_missing_reason()
pytestmark = pytest.mark.skipif(KVM_MISSING is not None, reason=KVM_MISSING or "")

MARKER = "/root/written-after-snapshot"
PANIC_TEXT = "Kernel panic - not syncing: sysrq triggered crash"
EVENT_DEADLINE = 120.0
TIMINGS: dict[str, float] = {}
"""Seconds each wait took in this run, printed at the end (run with -s to see them): a record of
what this machine needed, not a test; bench/ measures properly."""


def timed(name: str, since: float) -> None:
    TIMINGS[name] = round(time.monotonic() - since, 1)


@dataclass
class Lab:
    guest: KvmGuest
    hypervisor: QemuHypervisor
    clean_boot_id: str
    boot_seconds: float


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    image = kvm_image.ensure_image(tmp_path_factory.mktemp("kvm-build") / "build.log")
    guest = KvmGuest(image, tmp_path_factory.mktemp("kvm-guest"))
    started = time.monotonic()
    guest.vm.start()
    try:
        with guest.wait_for_ssh() as session:
            clean_boot_id = guest.boot_id(session)
        boot_seconds = time.monotonic() - started
        timed(f"cold boot to SSH ({guest.accel})", started)
        hypervisor = QemuHypervisor(guest.vm, snapshot="clean")
        started = time.monotonic()
        hypervisor.take_snapshot()
        timed("snapshot-save", started)
        yield Lab(guest, hypervisor, clean_boot_id, boot_seconds)
    finally:
        guest.vm.stop()
        print(f"\nKVM guest timings (build {image.build_seconds:.0f} s once per recipe): {TIMINGS}")


def marker_present(guest: KvmGuest) -> bool:
    with guest.wait_for_ssh() as session:
        result = session.run(["test", "-e", MARKER], timeout=60)
    assert result.exit_code in (0, 1), result
    return result.exit_code == 0


def write_marker(guest: KvmGuest) -> None:
    with guest.wait_for_ssh() as session:
        result = session.run(["sh", "-c", f"echo dirty > {MARKER} && sync"], timeout=60)
    assert result.ok, result


def current_boot_id(guest: KvmGuest) -> str:
    with guest.wait_for_ssh() as session:
        return guest.boot_id(session)


def test_ssh_reaches_the_guest_and_its_own_kernel_python_and_pvpanic(lab: Lab) -> None:
    with lab.guest.wait_for_ssh() as session:
        release = session.run(["python3", "-c", "import platform; print(platform.release())"], timeout=60)
        modules = session.run(["cat", "/proc/modules"], timeout=60)
    assert release.ok, release
    assert release.stdout.decode().strip().endswith("-amd64"), release.stdout  # Debian's kernel
    assert b"pvpanic_mmio" in modules.stdout, "pvpanic driver not loaded: panics would go unseen"


def test_a_host_key_other_than_the_pinned_one_is_refused(lab: Lab, tmp_path: Path) -> None:
    other = tmp_path / "known_hosts"
    # A real ed25519 key, just not the guest's: the client's own public key.
    client_public = lab.guest.image.client_key.with_suffix(".pub").read_text().split()
    other.write_text(f"[127.0.0.1]:{lab.guest.ssh_port} {client_public[0]} {client_public[1]}\n")
    session = lab.guest.session()
    session.known_hosts = other
    with pytest.raises(SessionError) as refused:
        session.connect()
    assert refused.value.stage == "auth"
    assert "does not match known_hosts" in str(refused.value)


def test_check_confirms_the_snapshot_and_a_missing_one_is_named(lab: Lab) -> None:
    assert "snapshot exists" in lab.hypervisor.check()
    assert "clean" in lab.hypervisor.snapshots()
    with pytest.raises(HypervisorError, match="no snapshot 'no-such-snapshot'"):
        QemuHypervisor(lab.guest.vm, snapshot="no-such-snapshot").revert()


def test_a_revert_forgets_what_was_written_after_the_snapshot(lab: Lab) -> None:
    write_marker(lab.guest)
    assert marker_present(lab.guest)
    started = time.monotonic()
    lab.hypervisor.revert()
    assert not marker_present(lab.guest)
    timed("revert to SSH", started)
    assert current_boot_id(lab.guest) == lab.clean_boot_id  # the snapshot's own boot, resumed


def test_a_reboot_is_seen_by_qemu_and_as_a_new_boot_identity(lab: Lab) -> None:
    lab.hypervisor.revert()
    since = time.monotonic()
    with lab.guest.wait_for_ssh() as session:
        lab.guest.send_and_lose(session, "/sbin/lkdh-reboot; sleep 600", timeout=20)
    reset = lab.guest.vm.qmp().wait_for("RESET", since=since, timeout=EVENT_DEADLINE)
    assert reset is not None and reset.data.get("guest") is True, "QEMU saw no guest-initiated reset"
    assert current_boot_id(lab.guest) != lab.clean_boot_id
    timed("guest reboot to SSH", since)
    assert lab.hypervisor.panics(since) == []  # a reboot is not a crash


def test_a_panic_is_reported_by_pvpanic_with_the_console_kept(lab: Lab, tmp_path: Path) -> None:
    lab.hypervisor.revert()
    run_console = tmp_path / "run" / "console.log"
    lab.hypervisor.keep_console(run_console)  # what came before this scenario
    since = time.monotonic()
    with lab.guest.wait_for_ssh() as session:
        lab.guest.send_and_lose(session, "echo c > /proc/sysrq-trigger", timeout=10)
    panic = lab.hypervisor.wait_for_panic(since=since, timeout=EVENT_DEADLINE)
    assert panic is not None, f"no GUEST_PANICKED; console:\n{lab.guest.console_tail()}"
    assert panic.event == "GUEST_PANICKED"  # a Linux guest without kdump: PVPANIC_PANICKED
    assert panic.details.get("action") == "run"  # -action panic=none: the guest reboots itself
    assert lab.hypervisor.panics(since) == [panic]
    assert current_boot_id(lab.guest) != lab.clean_boot_id  # panic=1: it rebooted and came back
    timed("panic to SSH", since)
    kept = lab.hypervisor.keep_console(run_console)
    assert PANIC_TEXT in kept
    assert PANIC_TEXT in run_console.read_text(errors="replace")
    lab.hypervisor.revert()  # the next scenario gets the clean machine
    assert current_boot_id(lab.guest) == lab.clean_boot_id
    assert not marker_present(lab.guest)


def test_a_power_cycle_is_a_cold_boot_that_keeps_the_disk_and_the_snapshot(lab: Lab) -> None:
    lab.hypervisor.revert()
    write_marker(lab.guest)
    started = time.monotonic()
    lab.hypervisor.power_cycle()
    assert current_boot_id(lab.guest) != lab.clean_boot_id
    timed("power cycle to SSH", started)
    assert marker_present(lab.guest)
    lab.hypervisor.revert()  # the snapshot lives in the qcow2 file, so it outlives the process
    assert not marker_present(lab.guest)
    assert current_boot_id(lab.guest) == lab.clean_boot_id

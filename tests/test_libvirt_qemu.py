"""libvirt for real: the cached Debian guest as a QEMU domain of a system libvirtd, reset three ways.

tests/test_libvirt_api.py covers the API against libvirt's test driver; here the same hypervisors
drive a real domain (tests/libvirt_domain.py: TCG or KVM, pvpanic, serial console to a file, user
networking with restrict=on and one loopback forward) on the `qemu:///system` daemon the tests
start when none runs (tests/libvirt_daemon.py):
- `LibvirtApiHypervisor` on `qemu:///system`: an internal snapshot with memory, and a revert forgets
  what was written after it and resumes the snapshot's boot (same /proc/sys/kernel/random/boot_id);
  a guest reboot is libvirt's reboot event and a new boot identity, and SSH reconnects; a panic
  (sysrq 'c') is pvpanic's VIR_DOMAIN_EVENT_CRASHED / PANICKED and a new boot identity, the
  console libvirt wrote keeps the kernel's panic text, the "crash dump" the guest wrote and synced
  first is pulled over SFTP with its hash checked, and after a revert the next scenario sees the
  clean machine; a power cycle (destroy, start) is a cold boot keeping the disk and the snapshot;
- the same over libvirt's SSH transport to a real loopback sshd (tests/sshd_server.py), the far
  side's `virt-ssh-helper` (libvirt-daemon) relaying to the daemon: `qemu+libssh://` with the sshd's
  host key pinned in a known_hosts file (strict: another key is refused); `qemu+ssh://` runs
  OpenSSH, which ignores known_hosts= (refused by the harness) and, with the key unknown to the
  user's known_hosts, refuses the host;
- `LibvirtHost` (client virsh) over the project's SSH session to that sshd: check and revert;
- an external snapshot, which libvirt 9.0 cannot revert to, refused with what to do instead.
Skipped like the other guest tests (kvm_guest.kvm_missing_reason); a missing libvirtd is a failure
under CI. Run with -s for the timings.
"""

from __future__ import annotations

import hashlib
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import kvm_image
import libvirt_domain
import pytest
from kvm_guest import KvmGuest, kvm_missing_reason
from libvirt_daemon import LibvirtDaemons, libvirtd_missing_reason
from required_tools import tool_missing
from sshd_server import SshdServer, sshd_missing_reason

from harness.target.windows.config import LibvirtSettings
from harness.target.windows.hypervisor import HypervisorError, LibvirtHost
from harness.target.windows.libvirt_api import LibvirtApiHypervisor, uri_problem
from harness.target.windows.sftp_transfer import download
from harness.target.windows.ssh_session import SshSession

KVM_MISSING = kvm_missing_reason()
pytestmark = pytest.mark.skipif(KVM_MISSING is not None, reason=KVM_MISSING or "")

SYSTEM = "qemu:///system"
MARKER = "/root/written-after-snapshot"
CRASH_FILE = "/root/crash.dmp"
PANIC_TEXT = "Kernel panic - not syncing: sysrq triggered crash"
EVENT_DEADLINE = 300.0
REVERT_TIMEOUT = 300.0
CRASHED_PANICKED = 0
"""virDomainEventCrashedDetailType: VIR_DOMAIN_EVENT_CRASHED_PANICKED."""
TIMINGS: dict[str, float] = {}
"""Seconds each wait took in this run, printed at the end (-s): a record, not a test."""


def timed(name: str, since: float) -> None:
    TIMINGS[name] = round(time.monotonic() - since, 1)


@dataclass
class Lab:
    guest: KvmGuest
    hypervisor: LibvirtApiHypervisor
    clean_boot_id: str


@pytest.fixture(scope="session")
def libvirt_daemons(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LibvirtDaemons]:
    """The system libvirtd (and virtlogd), started here if not running, stopped if started here."""
    reason = libvirtd_missing_reason()
    if reason is not None:
        tool_missing(reason)
    daemons = LibvirtDaemons(tmp_path_factory.mktemp("libvirtd"))
    daemons.start()
    try:
        yield daemons
    finally:
        daemons.stop()


@pytest.fixture(scope="module")
def connection(libvirt_daemons: LibvirtDaemons) -> Iterator[object]:
    import libvirt

    opened = libvirt.open(SYSTEM)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture(scope="module")
def lab(connection: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    image = kvm_image.ensure_image(tmp_path_factory.mktemp("kvm-build") / "build.log")
    guest = KvmGuest(image, tmp_path_factory.mktemp("libvirt-guest"), name=f"lkdh-{uuid.uuid4().hex[:8]}")
    started = time.monotonic()
    libvirt_domain.define_and_start(connection, guest)
    hypervisor = LibvirtApiHypervisor(SYSTEM, guest.name, "clean", timeout=REVERT_TIMEOUT)
    try:
        clean_boot_id = current_boot_id(guest)
        timed(f"cold boot to SSH ({guest.accel})", started)
        started = time.monotonic()
        hypervisor.take_snapshot()
        timed("internal snapshot with memory", started)
        yield Lab(guest, hypervisor, clean_boot_id)
    finally:
        hypervisor.close()
        libvirt_domain.remove(connection, guest.name)
        print(f"\nlibvirt guest timings: {TIMINGS}")


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdServer]:
    """A loopback sshd logging root in: the 'libvirt host' of qemu+libssh:// and of client virsh."""
    reason = sshd_missing_reason()
    if reason is not None:
        tool_missing(reason)
    with SshdServer(tmp_path_factory.mktemp("libvirt-sshd")) as server:
        yield server


def run(guest: KvmGuest, script: str) -> str:
    with guest.wait_for_ssh() as session:
        result = session.run(["sh", "-c", script], timeout=120)
    assert result.ok, result
    return result.stdout.decode()


def current_boot_id(guest: KvmGuest) -> str:
    with guest.wait_for_ssh() as session:
        return guest.boot_id(session)


def present(guest: KvmGuest, path: str) -> bool:
    return run(guest, f"test -e {path} && echo yes || echo no").strip() == "yes"


def test_the_domain_runs_the_guest_with_pvpanic_and_a_network_that_reaches_nothing(
    lab: Lab, connection: object
) -> None:
    domain = connection.lookupByName(lab.guest.name)  # type: ignore[attr-defined]
    xml = domain.XMLDesc(0)
    assert f"<domain type='{'kvm' if lab.guest.accel == 'kvm' else 'qemu'}'" in xml
    assert "restrict=on" in xml and f"hostfwd=tcp:127.0.0.1:{lab.guest.ssh_port}-:22" in xml
    assert "pvpanic_mmio" in run(lab.guest, "cat /proc/modules"), "panics would go unseen"
    # restrict=on: not even the host's own address answers the guest (here: the guest's sshd forward).
    port = lab.guest.ssh_port
    probe = (
        f"import socket\ntry:\n socket.create_connection(('10.0.2.2', {port}), 5)\n print('reached')\n"
        "except OSError as e:\n print('refused', e)\n"
    )
    assert run(lab.guest, f'python3 -c "{probe}"').startswith("refused")
    assert "lkdh-guest: up" in lab.guest.console_tail(100_000)  # libvirt writes the console file


def test_a_revert_forgets_what_was_written_after_the_snapshot(lab: Lab) -> None:
    assert "domain is running, snapshot exists" in lab.hypervisor.check()
    run(lab.guest, f"echo dirty > {MARKER} && sync")
    started = time.monotonic()
    lab.hypervisor.revert()
    assert not present(lab.guest, MARKER)
    timed("revert to SSH", started)
    assert current_boot_id(lab.guest) == lab.clean_boot_id  # the snapshot's own boot, resumed


def test_a_reboot_is_seen_by_libvirt_and_as_a_new_boot_identity(lab: Lab) -> None:
    lab.hypervisor.revert()
    since = time.monotonic()
    with lab.guest.wait_for_ssh() as session:
        lab.guest.send_and_lose(session, "/sbin/lkdh-reboot; sleep 600", timeout=20)
    assert lab.hypervisor.wait_for("rebooted", since=since, timeout=EVENT_DEADLINE) is not None
    assert current_boot_id(lab.guest) != lab.clean_boot_id  # and SSH came back
    timed("guest reboot to SSH", since)
    assert lab.hypervisor.crashes(since) == []  # a reboot is not a crash


def test_a_panic_is_a_crash_event_and_a_new_boot_with_console_and_dump_kept(lab: Lab, tmp_path: Path) -> None:
    lab.hypervisor.revert()
    kept = tmp_path / "run" / "console.log"  # the run's copy of what the scenario printed
    lab.hypervisor.keep_console(tmp_path / "before.log")  # the crash witness keeps from here on
    written = run(lab.guest, f"head -c 1048576 /dev/urandom > {CRASH_FILE} && sync && sha256sum {CRASH_FILE}")
    guest_sha256 = written.split()[0]
    since = time.monotonic()
    with lab.guest.wait_for_ssh() as session:
        lab.guest.send_and_lose(session, "echo c > /proc/sysrq-trigger", timeout=10)
    crash = lab.hypervisor.wait_for("crashed", since=since, timeout=EVENT_DEADLINE)
    assert crash is not None, f"no crashed event; console:\n{lab.guest.console_tail()}"
    assert crash.detail == CRASHED_PANICKED
    assert current_boot_id(lab.guest) != lab.clean_boot_id  # on_crash restart: it came back
    timed("panic to SSH", since)
    # The crash witness WindowsMachine asks (crash_witness.py): the event as a panic, and the console
    # file the domain's <serial type='file'> writes, found from the domain XML, copied into the run.
    assert [panic.describe() for panic in lab.hypervisor.panics(since)] == [
        f"libvirt qemu:///system (domain '{lab.hypervisor.domain}') reported VIR_DOMAIN_EVENT_CRASHED"
        " (detail panicked)"
    ]
    assert lab.hypervisor.console_unavailable is None
    assert PANIC_TEXT in lab.hypervisor.keep_console(kept)
    assert PANIC_TEXT in kept.read_text(errors="replace")
    with lab.guest.wait_for_ssh() as session:
        sftp = session.open_sftp()
        try:
            pulled = download(sftp, CRASH_FILE, tmp_path / "run" / "crash.dmp", guest_sha256)
        finally:
            sftp.close()
    assert pulled.size == 1048576
    assert hashlib.sha256(pulled.path.read_bytes()).hexdigest() == guest_sha256
    lab.hypervisor.revert()  # the next scenario
    assert not present(lab.guest, CRASH_FILE)
    assert current_boot_id(lab.guest) == lab.clean_boot_id


def test_a_power_cycle_is_a_cold_boot_that_keeps_the_disk_and_the_snapshot(lab: Lab) -> None:
    lab.hypervisor.revert()
    run(lab.guest, f"echo dirty > {MARKER} && sync")
    since = time.monotonic()
    lab.hypervisor.power_cycle()
    assert lab.hypervisor.wait_for("started", since=since, timeout=EVENT_DEADLINE) is not None
    seen = [e.event for e in lab.hypervisor.events(since)]  # QEMU's own 'shutdown' may come first
    assert "stopped" in seen and seen.index("stopped") < seen.index("started"), seen
    assert current_boot_id(lab.guest) != lab.clean_boot_id
    timed("power cycle to SSH", since)
    assert present(lab.guest, MARKER)
    lab.hypervisor.revert()
    assert not present(lab.guest, MARKER)
    assert current_boot_id(lab.guest) == lab.clean_boot_id


def libssh_uri(sshd: SshdServer, known_hosts: Path) -> str:
    return (
        f"qemu+libssh://root@127.0.0.1:{sshd.port}/system?keyfile={sshd.client_key}"
        f"&known_hosts={known_hosts}&known_hosts_verify=normal&sshauth=privkey&proxy=native"
    )


def test_qemu_libssh_with_the_pinned_host_key_reverts_and_another_key_is_refused(
    lab: Lab, sshd: SshdServer, tmp_path: Path
) -> None:
    remote = LibvirtApiHypervisor(
        libssh_uri(sshd, sshd.known_hosts), lab.guest.name, "clean", timeout=REVERT_TIMEOUT
    )
    try:
        assert "snapshot exists" in remote.check()
        run(lab.guest, f"echo dirty > {MARKER} && sync")
        since = time.monotonic()
        remote.revert()
        assert remote.wait_for("started", since=since, timeout=EVENT_DEADLINE) is not None  # events too
        assert not present(lab.guest, MARKER)
        timed("revert over qemu+libssh to SSH", since)
    finally:
        remote.close()
    other = tmp_path / "known_hosts"  # a real key, just not the sshd's: the client's own
    public = Path(f"{sshd.client_key}.pub").read_text().split()
    other.write_text(f"[127.0.0.1]:{sshd.port} {public[0]} {public[1]}\n")
    impostor = LibvirtApiHypervisor(libssh_uri(sshd, other), lab.guest.name, "clean")
    with pytest.raises(HypervisorError, match="HOST KEY VERIFICATION FAILED"):
        impostor.check()
    impostor.close()


def test_qemu_ssh_runs_openssh_which_ignores_known_hosts_and_refuses_an_unknown_host(
    lab: Lab, sshd: SshdServer
) -> None:
    pinned = f"qemu+ssh://root@127.0.0.1:{sshd.port}/system?keyfile={sshd.client_key}&known_hosts={sshd.known_hosts}"
    assert "use the libssh transport" in (uri_problem(pinned) or "")
    with pytest.raises(HypervisorError, match="ignores known_hosts="):
        LibvirtApiHypervisor(pinned, lab.guest.name, "clean")
    # OpenSSH checks ~/.ssh/known_hosts, which has no key for this port: strict, so refused.
    plain = LibvirtApiHypervisor(
        f"qemu+ssh://root@127.0.0.1:{sshd.port}/system?keyfile={sshd.client_key}&no_tty=1",
        lab.guest.name,
        "clean",
    )
    with pytest.raises(HypervisorError, match="Host key verification failed"):
        plain.check()
    plain.close()


def test_libvirt_host_runs_virsh_over_the_projects_ssh_session(lab: Lab, sshd: SshdServer) -> None:
    settings = LibvirtSettings.model_validate(
        {
            "kind": "libvirt",
            "ssh": {
                "host": "127.0.0.1",
                "port": sshd.port,
                "user": sshd.user,
                "key_file": sshd.client_key,
                "known_hosts": sshd.known_hosts,
            },
            "uri": SYSTEM,
            "domain": lab.guest.name,
            "snapshot": "clean",
            "timeout": REVERT_TIMEOUT,
        }
    )

    def open_session() -> SshSession:
        return SshSession(
            "127.0.0.1", sshd.port, sshd.user, sshd.client_key, known_hosts=sshd.known_hosts, posix=True
        )

    host = LibvirtHost(settings, open_session)
    assert "domain is running, snapshot exists" in host.check()
    run(lab.guest, f"echo dirty > {MARKER} && sync")
    since = time.monotonic()
    # The Debian guest has no QEMU guest agent, so the clock step after the revert is refused, as
    # for a Windows VM without qemu-ga; the revert itself has happened by then.
    with pytest.raises(HypervisorError, match=r"its clock was not set .*not configured"):
        host.revert()
    assert not present(lab.guest, MARKER)
    assert current_boot_id(lab.guest) == lab.clean_boot_id
    timed("revert with virsh over SSH, to SSH", since)


def test_an_external_snapshot_is_refused_with_what_to_do(connection: object, tmp_path: Path) -> None:
    """libvirt 9.0 cannot revert to an external snapshot; the harness says so before asking."""
    import libvirt

    image = kvm_image.ensure_image(tmp_path / "build.log")
    guest = KvmGuest(image, tmp_path / "guest", name=f"lkdh-ext-{uuid.uuid4().hex[:8]}")
    domain = connection.defineXML(libvirt_domain.domain_xml(guest))  # type: ignore[attr-defined]
    hypervisor = LibvirtApiHypervisor(SYSTEM, guest.name, "outside", timeout=60)
    try:
        overlay = tmp_path / "guest" / "outside.qcow2"
        domain.snapshotCreateXML(
            "<domainsnapshot><name>outside</name><disks>"
            f"<disk name='vda' snapshot='external'><source file='{overlay}'/></disk>"
            "</disks></domainsnapshot>",
            libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY,
        )
        if connection.getLibVersion() >= 9_007_000:  # type: ignore[attr-defined]
            pytest.skip("this libvirt reverts external snapshots itself")
        refusal = r"is external \(disk vda\), and libvirt 9\.\d+\.\d+ on qemu:///system cannot revert"
        with pytest.raises(HypervisorError, match=refusal + r".*take an internal one"):
            hypervisor.check()
        with pytest.raises(HypervisorError, match=refusal):
            hypervisor.revert()
        with pytest.raises(libvirt.libvirtError, match="revert to external snapshot not supported yet"):
            domain.revertToSnapshot(domain.snapshotLookupByName("outside"), 0)  # libvirt's own answer
    finally:
        hypervisor.close()
        libvirt_domain.remove(connection, guest.name)
        shutil.rmtree(tmp_path / "guest", ignore_errors=True)

"""A booted KVM guest for tests: an overlay on the cached image, a loopback SSH forward, a pinned host key.

Each guest gets its own qcow2 overlay (backed by the cached image from kvm_image.py), so what one test
writes, its snapshots included, never reaches the image another test boots. The guest is reached
exactly as the Windows target reaches a VM: the project's `SshSession`, key auth, and a known_hosts
file holding the guest's real host key (strict checking; nothing first-seen is trusted).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import kvm_image
from sshd_server import free_loopback_port

from harness.target.windows.qemu_vm import HostForward, QemuVm, QemuVmSpec
from harness.target.windows.session import CommandTimeout, SessionError
from harness.target.windows.ssh_session import Backoff, SshSession, known_hosts_name

QEMU = "qemu-system-x86_64"
SSH_READY_DEADLINE = {"kvm": 120.0, "tcg": 900.0}
"""A cold boot to sshd takes seconds under KVM. Under TCG (every instruction translated) on two
shared, busy cores it took 3-6 minutes here; the deadline is a bound, not an expectation."""
CONNECT_TIMEOUT = {"kvm": 10.0, "tcg": 60.0}
"""SSH's key exchange is CPU work in the guest: under TCG on busy cores OpenSSH's own client took 11 s."""
BOOT_WAIT = Backoff(max_attempts=1, initial_delay=0.5, max_delay=1.0)
PVM_MODULE = Path("/sys/module/kvm_pvm")


def kvm_missing_reason() -> str | None:
    """Why the KVM guest tests cannot run here, or None when they can.

    They run where /dev/kvm opens: under KVM, or under TCG where that /dev/kvm is PVM (accelerator()).
    Elsewhere they skip with the reason, unless LKDH_KVM_ACCEL=tcg asks for emulation anyway;
    LKDH_KVM_ACCEL=off skips them on any machine (a developer's quick run).
    """
    forced = os.environ.get("LKDH_KVM_ACCEL")
    if forced == "off":
        return "LKDH_KVM_ACCEL=off: the KVM guest tests were turned off"
    if forced not in (None, "", "kvm", "tcg"):
        return f"LKDH_KVM_ACCEL={forced!r} is none of kvm, tcg, off: the KVM guest tests did not run"
    if forced != "tcg":
        try:
            fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
        except OSError as error:
            return (
                f"/dev/kvm is not usable here ({error.strerror}): the KVM guest tests need it"
                " (LKDH_KVM_ACCEL=tcg runs them emulated, a few times slower)"
            )
        os.close(fd)
    if shutil.which(QEMU) is None:
        return f"{QEMU} not found (.ci/run installs qemu-system-x86)"
    return kvm_image.missing_reason()


def accelerator() -> str:
    """`kvm`, or `tcg` where this /dev/kvm cannot run Debian's kernel (LKDH_KVM_ACCEL overrides).

    Some sandboxes (Firecracker VMs with nested virtualisation) provide /dev/kvm through PVM
    (`kvm_pvm`, pagetable-based virtualisation): it runs PVM-enabled guest kernels at speed, but an
    ordinary kernel such as Debian's is emulated instruction by instruction and stalled here for
    minutes in its own decompressor, printing nothing past "Probing EDD". QEMU's TCG then boots
    the same guest, same machine, same devices, QMP and snapshots, only with the CPU emulated: on a
    quiet 2-core machine here it reached SSH in 20 s (KVM: a few seconds), so the tests run under it
    by default rather than skip.
    """
    forced = os.environ.get("LKDH_KVM_ACCEL")
    if forced in ("kvm", "tcg"):
        return forced
    return "tcg" if PVM_MODULE.exists() else "kvm"


def accelerator_header() -> str:
    """One line for pytest's header: how the guest tests will run, so a slow run explains itself."""
    reason = kvm_missing_reason()
    if reason is not None:
        return f"KVM guest tests: skipped ({reason})"
    why = " (/dev/kvm is PVM: Debian's kernel runs emulated)" if PVM_MODULE.exists() else ""
    return f"KVM guest tests: accel={accelerator()}{why}"


class GuestNotReady(RuntimeError):
    """The guest did not answer SSH in time; the console log's tail is attached."""


@dataclass
class KvmGuest:
    """One VM from the cached image, with SSH on a loopback port."""

    image: kvm_image.GuestImage
    folder: Path
    name: str = "lkdh-guest"
    memory_mib: int = 256
    """Enough for sshd and Python without systemd; less RAM is less to write at each snapshot."""
    accel: str = field(default_factory=accelerator)
    extra_qmp: tuple[Path, ...] = ()
    """QMP sockets for a second client (the harness attached through `kind: qemu`)."""
    vm: QemuVm = field(init=False)
    ssh_port: int = field(init=False)

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        overlay = self.folder / "disk.qcow2"
        subprocess.run(
            [
                "qemu-img",
                "create",
                "-q",
                "-f",
                "qcow2",
                "-F",
                "qcow2",
                "-b",
                str(self.image.disk),
                str(overlay),
            ],
            check=True,
            stdin=subprocess.DEVNULL,
        )
        self.ssh_port = free_loopback_port()
        spec = QemuVmSpec(
            name=self.name,
            disk=overlay,
            state_dir=self.folder,
            forwards=(HostForward(self.ssh_port, 22),),
            memory_mib=self.memory_mib,
            kernel=self.image.kernel,
            initrd=self.image.initrd,
            kernel_args=kvm_image.KERNEL_ARGS,
            accel=self.accel,
            extra_qmp=self.extra_qmp,
        )
        self.vm = QemuVm(spec)
        self.known_hosts.write_text(
            f"{known_hosts_name('127.0.0.1', self.ssh_port)} {self.image.host_public_key}\n"
        )

    @property
    def known_hosts(self) -> Path:
        return self.folder / "known_hosts"

    def session(self) -> SshSession:
        return SshSession(
            "127.0.0.1",
            self.ssh_port,
            "root",
            self.image.client_key,
            known_hosts=self.known_hosts,
            connect_timeout=CONNECT_TIMEOUT[self.accel],
            backoff=BOOT_WAIT,
            posix=True,
        )

    def wait_for_ssh(self, deadline: float | None = None) -> SshSession:
        """A connected session once the guest's sshd answers; raises with the console's tail if not."""
        deadline = deadline or SSH_READY_DEADLINE[self.accel]
        session = self.session()
        until = time.monotonic() + deadline
        last: Exception | None = None
        while time.monotonic() < until:
            try:
                session.connect()
                return session
            except Exception as error:  # SessionError at tcp while booting; anything else is reported
                last = error
                if getattr(error, "stage", None) not in ("tcp", "resolve"):
                    raise
                time.sleep(0.5)
        raise GuestNotReady(
            f"guest {self.name} gave no SSH in {deadline:g} s ({last}); console:\n{self.console_tail()}"
        )

    def console_tail(self, size: int = 3000) -> str:
        try:
            return self.vm.spec.console_log.read_text(errors="replace")[-size:]
        except OSError:
            return "(no console log)"

    def send_and_lose(self, session: SshSession, script: str, timeout: float = 30.0) -> None:
        """Run a shell script that takes the guest down (reboot, panic): the command cannot answer.

        How it ends depends on timing (sshd killed at shutdown: exit by signal; a panic: the connection
        dies or the deadline passes), so every ending is accepted here; callers assert what the
        guest and QEMU did instead (a RESET or GUEST_PANICKED event, a new boot identity)."""
        with contextlib.suppress(SessionError, CommandTimeout):
            session.run(["sh", "-c", script], timeout=timeout)
        session.close()

    def boot_id(self, session: SshSession) -> str:
        """The kernel's boot identity: a new random UUID each boot, whatever the clock says."""
        result = session.run(["cat", "/proc/sys/kernel/random/boot_id"], timeout=60)
        assert result.ok, result
        return result.stdout.decode().strip()

"""Resetting the test machine: a hypervisor reverts it to a clean snapshot (STYLE.md: one capability,
its implementations side by side).

A scenario that bugchecks the VM, or leaves Driver Verifier state behind, must not leak into the next
one; `Target.prepare()` asks the hypervisor to revert. Three kinds:
- `HyperVHost`: the restore-checkpoint PowerShell script, run over WinRM on the Hyper-V host (the
  script and its parameters travel on stdin, so names never become command-line text);
- `LibvirtHost`: `virsh -c URI snapshot-revert DOMAIN SNAPSHOT --running` over SSH on the libvirt host,
  then `virsh domstate` until the domain runs, then `virsh domtime DOMAIN --now` (the clock resync
  below). The argv goes to the session as a list and the POSIX
  SSH session quotes it (shlex.join); the names were also checked against narrow patterns in config.py;
- `NoHypervisor`: nothing can be reverted, and saying so clearly beats a scenario failing later
  for a reason nobody can see.

A snapshot taken with memory resumes with the guest clock of the moment it was taken, days or weeks
behind; Windows' time service corrects it only at its next poll, by a step in the middle of a run
(dump file times, log timestamps, Kerberos' 5-minute skew). So the libvirt revert sets the guest's
clock to the libvirt host's through the QEMU guest agent (virsh(1) domtime: `--now` sets "the time
that is currently on the host virsh is running at"). Not `--sync`: it asks the agent to read the RTC,
which qemu-ga for Windows refuses ("Time argument is required on this platform",
qga/commands-win32.c qmp_guest_set_time). Hyper-V is left alone: its time-synchronization
integration service (on by default) sets the clock of a restored VM itself.

`check()` proves the hypervisor is reachable and knows the machine without changing anything; it is
what `lkdh target check` runs. Sessions are opened per call and closed after it: a revert is rare, and
a connection held between scenarios would only go stale. So `close()` has nothing to do here; QEMU's
and libvirt-python's hypervisors hold their monitor or connection open (events reach only connected
clients) and close it there.

A hypervisor that watches the VM may also be a crash witness (crash_witness.py: panics, console);
none of these three is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import closing
from typing import Protocol

from harness.target.base import TargetError
from harness.target.windows import powershell
from harness.target.windows.config import (
    HypervisorSettings,
    HyperVSettings,
    LibvirtSettings,
    NoHypervisorSettings,
    QemuSettings,
    SshSettings,
    WinRMSettings,
)
from harness.target.windows.session import CommandResult, CommandTimeout, RemoteSession, SessionError

STDERR_SHOWN = 500
"""Characters of a failed command's stderr kept in the error: enough for virsh's one-line reason."""

AGENT_NOT_CONNECTED = "Guest agent is not responding"
"""libvirt's VIR_ERR_AGENT_UNRESPONSIVE text ("...: QEMU guest agent is not connected"): right after a
revert, or while a booting guest has not started qemu-ga yet, the agent channel is not up; retried
until the revert's deadline. "QEMU guest agent is not configured" (no channel) is final."""

GUEST_AGENT_HELP = (
    "the guest clock needs the QEMU guest agent: an org.qemu.guest_agent.0 virtio channel on the domain"
    " and qemu-ga running in Windows (virtio-win guest tools); see vm/README.md, 'Build the VM'"
)

HYPERV_ACCESS_HELP = (
    "the account on the Hyper-V host must be allowed to use WinRM and Hyper-V: a member of"
    " 'Remote Management Users' and 'Hyper-V Administrators' there, or of 'Administrators' (a local"
    " account other than the built-in Administrator then also needs LocalAccountTokenFilterPolicy = 1);"
    " see vm/README.md, 'The clean snapshot'"
)


class HypervisorError(TargetError):
    """The hypervisor could not reset (or could not be asked about) the machine."""


class Hypervisor(Protocol):
    """Resets the test machine to a known-clean state."""

    def describe(self) -> str:
        """What would be reverted, and where, in one line (no network access)."""

    def check(self) -> str:
        """Reach the hypervisor and confirm it knows the machine; change nothing. Raises on failure."""

    def revert(self) -> None:
        """Return the machine to its clean snapshot and leave it running."""

    def close(self) -> None:
        """Release what the hypervisor holds open (a QMP monitor, a libvirt connection); the machine
        calls it when it closes. A no-op where every call opens and closes its own session."""


class SessionOpener(Protocol):
    """Opens sessions from config settings; `lkdh target check` and the Windows target share one."""

    def winrm(self, host: str, settings: WinRMSettings) -> RemoteSession: ...

    def ssh(self, host: str, settings: SshSettings, *, posix: bool = False) -> RemoteSession:
        """`posix`: the far end is a POSIX shell (the libvirt host), not Windows OpenSSH (the VM)."""


def hypervisor_from_config(settings: HypervisorSettings, sessions: SessionOpener) -> Hypervisor:
    """The hypervisor a config names, opening its sessions through `sessions`."""
    if isinstance(settings, HyperVSettings):
        return HyperVHost(settings, lambda: sessions.winrm(settings.host, settings.winrm))
    if isinstance(settings, LibvirtSettings) and settings.client == "libvirt-python":
        from harness.target.windows.libvirt_api import LibvirtApiHypervisor  # it imports this module

        return LibvirtApiHypervisor(
            settings.uri, settings.domain, settings.snapshot, timeout=settings.timeout
        )
    if isinstance(settings, LibvirtSettings):
        ssh = settings.ssh
        assert ssh is not None  # LibvirtSettings requires it for client virsh
        return LibvirtHost(settings, lambda: sessions.ssh(ssh.host, ssh, posix=True))
    if isinstance(settings, QemuSettings):
        from harness.target.windows.qemu_hypervisor import QemuHypervisor  # it imports this module

        return QemuHypervisor.from_settings(settings)
    assert isinstance(settings, NoHypervisorSettings)
    return NoHypervisor()


class HyperVHost:
    """Restores a Hyper-V checkpoint through WinRM to the Hyper-V host (not to the VM)."""

    def __init__(self, settings: HyperVSettings, open_session: Callable[[], RemoteSession]) -> None:
        self.settings = settings
        self._open_session = open_session

    def describe(self) -> str:
        s = self.settings
        return f"Hyper-V on {s.host}: VM '{s.vm_name}', checkpoint '{s.checkpoint}'"

    def check(self) -> str:
        info = self._run("host-info", {})
        if not info.get("hyperv_module"):
            raise HypervisorError(
                f"{self.settings.host} has no Hyper-V PowerShell module (is it a Hyper-V host?)"
            )
        return f"{self.describe()}; host {info.get('computer_name')} reachable as {info.get('user')}"

    def revert(self) -> None:
        params = {
            "vm_name": self.settings.vm_name,
            "checkpoint_name": self.settings.checkpoint,
            "start": True,
        }
        answer = self._run("restore-checkpoint", params)
        if answer.get("state") != "Running":
            raise HypervisorError(
                f"VM '{self.settings.vm_name}' is {answer.get('state')!r}, not Running,"
                f" after restoring checkpoint '{self.settings.checkpoint}'"
            )

    def close(self) -> None:
        """Nothing held: each call opens its own WinRM session."""

    def _run(self, name: str, params: dict[str, powershell.JsonValue]) -> dict:
        """Run a script on the host; a refusal of the account says which groups it needs.

        WinRM refuses an account its RootSDDL does not allow with WS-Management fault 5, "Access is
        denied" (MS-WSMV's wsman:AccessDenied fault; pywinrm#336 shows it for an account with too few
        rights), or, over Negotiate, by rejecting the logon (HTTP 401).
        """
        try:
            with closing(self._open_session()) as session:
                return _run_script(session, name, params, self.settings.timeout)
        except SessionError as error:
            if error.stage == "auth" or "WS-Management fault 5:" in error.detail:
                lead = "if the password is right, " if error.stage == "auth" else ""
                raise HypervisorError(f"{error}; {lead}{HYPERV_ACCESS_HELP}") from None
            raise


def _run_script(
    session: RemoteSession, name: str, params: dict[str, powershell.JsonValue], timeout: float
) -> dict:
    invocation = powershell.invocation(name, params)
    result = session.run(invocation.argv, stdin=invocation.stdin, timeout=timeout)
    return powershell.parse_result(result, name, host=session.host)


class LibvirtHost:
    """Reverts a libvirt domain snapshot with `virsh` over SSH on the libvirt host."""

    def __init__(
        self,
        settings: LibvirtSettings,
        open_session: Callable[[], RemoteSession],
        *,
        poll_interval: float = 1.0,
    ) -> None:
        self.settings = settings
        self._open_session = open_session
        self.poll_interval = poll_interval
        self._host = settings.ssh.host if settings.ssh is not None else "(no ssh)"

    def describe(self) -> str:
        s = self.settings
        return f"libvirt {s.uri} on {self._host}: domain '{s.domain}', snapshot '{s.snapshot}'"

    def check(self) -> str:
        s = self.settings
        deadline = time.monotonic() + s.timeout
        with closing(self._open_session()) as session:
            state = self._domstate(session, deadline)
            self._virsh(session, deadline, "snapshot-info", s.domain, s.snapshot)
        return f"{self.describe()}; domain is {state}, snapshot exists"

    def revert(self) -> None:
        s = self.settings
        deadline = time.monotonic() + s.timeout
        with closing(self._open_session()) as session:
            self._virsh(session, deadline, "snapshot-revert", s.domain, s.snapshot, "--running")
            state = self._domstate(session, deadline)
            while state != "running":
                if time.monotonic() + self.poll_interval > deadline:
                    raise HypervisorError(
                        f"domain '{s.domain}' is {state!r}, not running, {s.timeout:g} s after"
                        f" reverting to snapshot '{s.snapshot}'"
                    )
                time.sleep(self.poll_interval)
                state = self._domstate(session, deadline)
            self._sync_clock(session, deadline)

    def close(self) -> None:
        """Nothing held: each call opens its own SSH session."""

    def _sync_clock(self, session: RemoteSession, deadline: float) -> None:
        """`virsh domtime DOMAIN --now`, waiting for the guest agent to come up (module docstring)."""
        s = self.settings
        while True:
            try:
                self._virsh(session, deadline, "domtime", s.domain, "--now")
                return
            except HypervisorError as error:
                waiting = AGENT_NOT_CONNECTED in str(error)
                if not waiting or time.monotonic() + self.poll_interval > deadline:
                    raise HypervisorError(
                        f"domain '{s.domain}' reverted to '{s.snapshot}', but its clock was not set"
                        f" ({error}): {GUEST_AGENT_HELP}"
                    ) from None
            time.sleep(self.poll_interval)

    def _domstate(self, session: RemoteSession, deadline: float) -> str:
        result = self._virsh(session, deadline, "domstate", self.settings.domain)
        return result.stdout.decode("utf-8", "replace").strip()

    def _virsh(self, session: RemoteSession, deadline: float, *args: str) -> CommandResult:
        argv: Sequence[str] = ["virsh", "-c", self.settings.uri, *args]
        remaining = max(deadline - time.monotonic(), 0.1)
        try:
            result = session.run(argv, timeout=remaining)
        except CommandTimeout:
            raise HypervisorError(
                f"domain '{self.settings.domain}': virsh {args[0]} was still running at the "
                f"{self.settings.timeout:g} s deadline"
            ) from None
        if not result.ok:
            stderr = result.stderr.decode("utf-8", "replace").strip()[-STDERR_SHOWN:]
            raise HypervisorError(
                f"virsh {args[0]} on {self._host} failed (exit {result.exit_code}): "
                f"{stderr or 'no error text'}"
            )
        return result


class NoHypervisor:
    """No hypervisor configured: the machine is used as it is and cannot be reset."""

    def describe(self) -> str:
        return "no hypervisor: the machine cannot be reset to a clean state"

    def check(self) -> str:
        return self.describe()

    def revert(self) -> None:
        raise HypervisorError(
            "cannot reset the machine: the target config has no hypervisor (hypervisor: {kind: none});"
            " configure kind: hyperv, libvirt or qemu with a clean checkpoint/snapshot to revert to"
        )

    def close(self) -> None:
        """Nothing to release."""

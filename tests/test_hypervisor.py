"""Hypervisors: libvirt's revert sequence run for real against Debian's `virsh` with libvirt's built-in
test driver, Hyper-V's through the real PowerShell invocation, and the clear refusal without one.

`virsh -c test:///default` is libvirt's own mock hypervisor (one running domain called `test`, no
snapshots); `test:///<file>` loads a node description, here a domain `win11-lab` with the snapshot
`clean-driver-ready` (the test driver's `test:domainsnapshot` and `test:runstate` elements). Each virsh
process starts from that file, so real virsh parses every argv the harness sends, answers with its
real output and its real error messages, and a revert followed by `domstate` reads "running".
A transparent shim first on PATH records each argv and `exec`s the real virsh, so the tests see
the sequence of calls. The calls go through a real POSIX shell: `LocalPosixShell` hands `sh -c`
one string quoted with shlex.join, exactly what sshd does with an SSH command, and the same
sequence also runs over a real loopback sshd.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
import wsman_server
from required_tools import tool_missing
from sshd_server import SshdServer, sshd_missing_reason

from harness.target.windows import powershell
from harness.target.windows.config import HyperVSettings, LibvirtSettings, NoHypervisorSettings
from harness.target.windows.hypervisor import (
    HyperVHost,
    HypervisorError,
    LibvirtHost,
    NoHypervisor,
    hypervisor_from_config,
)
from harness.target.windows.session import CommandResult, CommandTimeout, OutputCallback
from harness.target.windows.ssh_session import SshSession
from harness.target.windows.winrm_session import WinRMSession

REAL_VIRSH = shutil.which("virsh")

NODE = """\
<node>
  <domain type="test" xmlns:test="http://libvirt.org/schemas/domain/test/1.0">
    <name>win11-lab</name>
    <memory>1048576</memory>
    <os><type>hvm</type></os>
{runstate}{snapshot}  </domain>
</node>
"""
SNAPSHOT = """\
    <test:domainsnapshot>
      <name>clean-driver-ready</name>
      <state>running</state>
      <creationTime>1767225600</creationTime>
      <active>1</active>
      <domain type="test">
        <name>win11-lab</name>
        <memory>1048576</memory>
        <os><type>hvm</type></os>
      </domain>
    </test:domainsnapshot>
"""
PAUSED = "    <test:runstate>3</test:runstate>\n"  # VIR_DOMAIN_PAUSED
SHIM = """\
#!/bin/sh
printf '%s\\037' "$@" >> {log}
echo >> {log}
if [ "$3" = domtime ]; then
  if [ -e {faults}/no-agent-channel ]; then
    echo "error: argument unsupported: QEMU guest agent is not configured" >&2; exit 1
  fi
  left=$(cat {faults}/agent-unconnected 2>/dev/null || echo 0)
  if [ "$left" -gt 0 ]; then
    echo $((left - 1)) > {faults}/agent-unconnected
    echo "error: Guest agent is not responding: QEMU guest agent is not connected" >&2; exit 1
  fi
fi
exec {virsh} "$@"
"""
"""The shim records each argv, then runs the real virsh. libvirt's test driver has no guest agent to
lose, so the shim alone stands in for the agent's two failures, with libvirt's own texts
(VIR_ERR_AGENT_UNRESPONSIVE while the channel is not connected, right after a revert;
"not configured" when the domain has no org.qemu.guest_agent.0 channel: qemuDomainAgentAvailable in
libvirt's qemu_domain.c), when a test asks for them."""


class Virsh:
    """The real virsh behind a recording shim, and the node files of libvirt's test driver."""

    def __init__(self, folder: Path) -> None:
        if REAL_VIRSH is None:
            tool_missing("virsh not found (Debian: apt-get install libvirt-clients; .ci/run installs it)")
        # `&`, `?` and `=` would split or background a naive shell command: they must reach virsh intact.
        self.nodes = folder / "nodes&more=1"
        self.nodes.mkdir(parents=True)
        self.bin = folder / "bin"
        self.bin.mkdir()
        self.log = folder / "virsh-calls"
        self.faults = folder / "faults"
        self.faults.mkdir()
        shim = self.bin / "virsh"
        shim.write_text(
            SHIM.format(
                log=shlex.quote(str(self.log)),
                virsh=shlex.quote(REAL_VIRSH),
                faults=shlex.quote(str(self.faults)),
            )
        )
        shim.chmod(0o755)

    def node(self, *, snapshot: bool = True, paused: bool = False) -> str:
        """A test-driver URI for a host with `win11-lab` (with its snapshot, running or paused)."""
        name = f"node-{int(snapshot)}{int(paused)}.xml"
        path = self.nodes / name
        path.write_text(NODE.format(runstate=PAUSED if paused else "", snapshot=SNAPSHOT if snapshot else ""))
        return f"test://{path}?no_verify=1&mode=ro"

    def agent_unconnected_for(self, calls: int) -> None:
        """The next `calls` domtime calls find the guest agent not (yet) connected."""
        (self.faults / "agent-unconnected").write_text(str(calls))

    def without_agent_channel(self) -> None:
        """Every domtime call finds no guest-agent channel on the domain."""
        (self.faults / "no-agent-channel").touch()

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [line.split("\037")[:-1] for line in self.log.read_text().splitlines()]


class LocalPosixShell:
    """A RemoteSession that runs argv as sshd runs an SSH command: `sh -c` with one shlex.join'ed string."""

    def __init__(self, extra_path: Path) -> None:
        self.host = "localhost"
        self.env = {**os.environ, "PATH": f"{extra_path}{os.pathsep}{os.environ['PATH']}"}
        self.closed = 0

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes = b"",
        timeout: float,
        on_output: OutputCallback | None = None,
    ) -> CommandResult:
        try:
            done = subprocess.run(
                ["sh", "-c", shlex.join(argv)],
                input=stdin,
                capture_output=True,
                timeout=timeout,
                env=self.env,
            )
        except subprocess.TimeoutExpired as exc:
            partial = CommandResult(-1, exc.stdout or b"", exc.stderr or b"")
            raise CommandTimeout(self.host, f"timed out after {timeout} s", partial) from None
        return CommandResult(done.returncode, done.stdout, done.stderr)

    def close(self) -> None:
        self.closed += 1


def _libvirt(uri: str, timeout: float = 30, domain: str = "win11-lab") -> LibvirtSettings:
    return LibvirtSettings.model_validate(
        {
            "kind": "libvirt",
            "ssh": {"host": "kvm.example.test", "user": "lkdh", "key_file": "/nonexistent/id"},
            "uri": uri,
            "domain": domain,
            "snapshot": "clean-driver-ready",
            "timeout": timeout,
        }
    )


@pytest.fixture
def virsh(tmp_path: Path) -> Virsh:
    return Virsh(tmp_path / "libvirt")


@pytest.fixture
def shell(virsh: Virsh) -> LocalPosixShell:
    return LocalPosixShell(virsh.bin)


def test_libvirt_revert_runs_snapshot_revert_then_reads_domstate(
    virsh: Virsh, shell: LocalPosixShell
) -> None:
    uri = virsh.node()
    LibvirtHost(_libvirt(uri), lambda: shell, poll_interval=0.01).revert()
    assert virsh.calls() == [
        ["-c", uri, "snapshot-revert", "win11-lab", "clean-driver-ready", "--running"],
        ["-c", uri, "domstate", "win11-lab"],  # real virsh says "running" (and a blank line)
        ["-c", uri, "domtime", "win11-lab", "--now"],  # the snapshot's clock is set to the host's
    ]
    assert shell.closed == 1  # the session is released after the revert


def test_libvirt_revert_failure_carries_virshs_own_reason(virsh: Virsh, shell: LocalPosixShell) -> None:
    with pytest.raises(HypervisorError) as caught:
        LibvirtHost(_libvirt(virsh.node(snapshot=False)), lambda: shell, poll_interval=0.01).revert()
    assert str(caught.value) == (
        "virsh snapshot-revert on kvm.example.test failed (exit 1): "
        "error: Domain snapshot not found: no domain snapshot with matching name 'clean-driver-ready'"
    )
    assert len(virsh.calls()) == 1  # no polling after a failed revert
    assert shell.closed == 1


def test_libvirt_revert_gives_up_at_its_deadline_on_a_domain_that_stays_paused(
    virsh: Virsh, shell: LocalPosixShell
) -> None:
    # Either the last poll saw it paused, or (on a loaded machine) the last poll ran into the deadline.
    with pytest.raises(HypervisorError, match=r"domain 'win11-lab'(:| is 'paused',) .*1.5 s"):
        LibvirtHost(
            _libvirt(virsh.node(paused=True), timeout=1.5), lambda: shell, poll_interval=0.05
        ).revert()
    assert len(virsh.calls()) >= 2  # it did poll before giving up


def test_libvirt_check_changes_nothing_and_names_a_missing_snapshot(
    virsh: Virsh, shell: LocalPosixShell
) -> None:
    assert (
        LibvirtHost(_libvirt(virsh.node()), lambda: shell)
        .check()
        .endswith("domain is running, snapshot exists")
    )
    with pytest.raises(HypervisorError, match="no domain snapshot with matching name 'clean-driver-ready'"):
        LibvirtHost(_libvirt(virsh.node(snapshot=False)), lambda: shell).check()
    assert {call[2] for call in virsh.calls()} == {"domstate", "snapshot-info"}  # never snapshot-revert


def test_libvirts_default_test_host_has_no_such_domain_and_no_snapshot(
    virsh: Virsh, shell: LocalPosixShell
) -> None:
    """test:///default: one running domain `test`, nothing else; virsh's own words reach the user."""
    with pytest.raises(HypervisorError, match=r"virsh domstate on kvm.example.test failed .*'win11-lab'"):
        LibvirtHost(_libvirt("test:///default"), lambda: shell).check()
    with pytest.raises(HypervisorError, match="no domain snapshot with matching name 'clean-driver-ready'"):
        LibvirtHost(_libvirt("test:///default", domain="test"), lambda: shell).check()
    with pytest.raises(HypervisorError, match=r"snapshot-revert .*no domain snapshot with matching name"):
        LibvirtHost(_libvirt("test:///default", domain="test"), lambda: shell).revert()


def test_libvirt_over_a_real_sshd(tmp_path: Path, virsh: Virsh) -> None:
    """The same revert through SshSession(posix=True) to a real OpenSSH server on loopback."""
    if reason := sshd_missing_reason():
        tool_missing(reason)
    uri = virsh.node()
    with SshdServer(tmp_path / "sshd") as server:
        # sshd gives commands a fixed PATH; a forced command puts the shim first, then runs the
        # client's command string through the shell exactly as sshd would have.
        public_key = Path(f"{server.client_key}.pub").read_text().strip()
        forced = f'command="PATH={virsh.bin}:$PATH; eval \\"$SSH_ORIGINAL_COMMAND\\"" {public_key}\n'
        (server.workdir / "authorized_keys").write_text(forced)
        session = SshSession(
            "127.0.0.1",
            server.port,
            server.user,
            server.client_key,
            known_hosts=server.known_hosts,
            connect_timeout=10,
            keepalive=30,
            posix=True,
        )
        LibvirtHost(_libvirt(uri), lambda: session, poll_interval=0.01).revert()
    assert virsh.calls() == [
        ["-c", uri, "snapshot-revert", "win11-lab", "clean-driver-ready", "--running"],
        ["-c", uri, "domstate", "win11-lab"],
        ["-c", uri, "domtime", "win11-lab", "--now"],
    ]


def test_libvirt_revert_waits_for_the_guest_agent_then_sets_the_clock(
    virsh: Virsh, shell: LocalPosixShell
) -> None:
    uri = virsh.node()
    virsh.agent_unconnected_for(2)
    LibvirtHost(_libvirt(uri), lambda: shell, poll_interval=0.01).revert()
    domtime = ["-c", uri, "domtime", "win11-lab", "--now"]
    assert virsh.calls()[-3:] == [domtime] * 3  # not connected, not connected, set


def test_libvirt_revert_without_a_guest_agent_channel_says_how_to_add_one(
    virsh: Virsh, shell: LocalPosixShell
) -> None:
    virsh.without_agent_channel()
    with pytest.raises(HypervisorError) as caught:
        LibvirtHost(_libvirt(virsh.node()), lambda: shell, poll_interval=0.01).revert()
    message = str(caught.value)
    assert message.startswith(
        "domain 'win11-lab' reverted to 'clean-driver-ready', but its clock was not set"
    )
    assert "QEMU guest agent is not configured" in message and "org.qemu.guest_agent.0" in message
    assert [call[2] for call in virsh.calls()].count("domtime") == 1  # final: not retried


class RecordingSession:
    """A Hyper-V host that answers every script with `answer` (as the real bootstrap encodes it)."""

    host = "hv01.example.test"

    def __init__(self, answer: dict) -> None:
        payload = base64.b64encode(json.dumps(answer).encode()).decode()
        self.reply = CommandResult(0, f"{powershell.RESULT_MARKER}{payload}\n".encode(), b"")
        self.runs: list[tuple[tuple[str, ...], bytes]] = []
        self.closed = 0

    def run(self, argv, *, stdin=b"", timeout, on_output=None) -> CommandResult:
        self.runs.append((tuple(argv), stdin))
        return self.reply

    def close(self) -> None:
        self.closed += 1


def _hyperv() -> HyperVSettings:
    return HyperVSettings.model_validate(
        {
            "kind": "hyperv",
            "host": "hv01.example.test",
            "winrm": {"username": "op", "password": {"env": "HV_PASSWORD"}},
            "vm_name": "Win11 Lab",
            "checkpoint": "clean (driver ready)",
        }
    )


def _params_sent(stdin: bytes) -> dict:
    return json.loads(base64.b64decode(stdin.split(b"\n", 1)[0]))


def test_hyperv_revert_sends_names_as_data_on_stdin_never_on_the_command_line() -> None:
    session = RecordingSession({"state": "Running", "vm_name": "Win11 Lab"})
    HyperVHost(_hyperv(), lambda: session).revert()
    [(argv, stdin)] = session.runs
    assert argv == powershell.BOOTSTRAP_ARGV
    assert not any("Win11" in part for part in argv)
    assert _params_sent(stdin) == {
        "vm_name": "Win11 Lab",
        "checkpoint_name": "clean (driver ready)",
        "start": True,
    }
    assert powershell.script_text("restore-checkpoint").encode() in stdin
    assert session.closed == 1


def test_hyperv_revert_that_leaves_the_vm_off_is_an_error() -> None:
    session = RecordingSession({"state": "Off"})
    with pytest.raises(HypervisorError, match=r"VM 'Win11 Lab' is 'Off', not Running"):
        HyperVHost(_hyperv(), lambda: session).revert()


def test_hyperv_check_needs_the_hyperv_module_on_the_host() -> None:
    good = RecordingSession({"computer_name": "HV01", "user": "LAB\\op", "hyperv_module": True})
    assert HyperVHost(_hyperv(), lambda: good).check().endswith("host HV01 reachable as LAB\\op")
    not_hyperv = RecordingSession({"computer_name": "WS01", "user": "op", "hyperv_module": False})
    with pytest.raises(HypervisorError, match="no Hyper-V PowerShell module"):
        HyperVHost(_hyperv(), lambda: not_hyperv).check()


def test_without_a_hypervisor_revert_says_the_machine_cannot_be_reset() -> None:
    hypervisor = NoHypervisor()
    with pytest.raises(
        HypervisorError, match="cannot reset the machine: the target config has no hypervisor"
    ):
        hypervisor.revert()
    assert "cannot be reset" in hypervisor.check()


def test_the_config_chooses_the_implementation_and_its_sessions() -> None:
    opened: list[tuple[str, str]] = []

    class Sessions:
        def winrm(self, host, settings):
            opened.append(("winrm", host, settings.username))
            return RecordingSession({"state": "Running"})

        def ssh(self, host, settings, *, posix=False):
            opened.append(("ssh", host, posix))
            raise ConnectionError("the libvirt host is not reached in this test")

    assert isinstance(hypervisor_from_config(NoHypervisorSettings(kind="none"), Sessions()), NoHypervisor)
    libvirt = hypervisor_from_config(_libvirt("qemu:///system"), Sessions())
    assert isinstance(libvirt, LibvirtHost) and "domain 'win11-lab'" in libvirt.describe()
    hyperv = hypervisor_from_config(_hyperv(), Sessions())
    assert isinstance(hyperv, HyperVHost)
    assert opened == []  # describing opens nothing
    hyperv.revert()
    with pytest.raises(ConnectionError):
        libvirt.check()
    # Hyper-V: WinRM to the Hyper-V host with its own account; libvirt: SSH to a POSIX shell.
    assert opened == [("winrm", "hv01.example.test", "op"), ("ssh", "kvm.example.test", True)]


def test_a_hyperv_account_winrm_refuses_is_told_which_groups_it_needs() -> None:
    """A real WinRM session to a WS-Management server that accepts the password and denies the shell."""
    with wsman_server.running_wsman_server("op", "pw") as server:
        server.service.deny_access = True

        def session() -> WinRMSession:
            return WinRMSession(
                server.host,
                port=server.port,
                username="op",
                password="pw",
                transport="basic",
                scheme="http",
                allow_insecure_http=True,
                connect_timeout=5,
                operation_timeout=5,
            )

        for attempt in (HyperVHost(_hyperv(), session).check, HyperVHost(_hyperv(), session).revert):
            with pytest.raises(HypervisorError) as caught:
                attempt()
            message = str(caught.value)
            assert message.startswith(
                "127.0.0.1: shell: cannot create a shell: WS-Management fault 5: Access"
            )
            assert "'Remote Management Users' and 'Hyper-V Administrators'" in message

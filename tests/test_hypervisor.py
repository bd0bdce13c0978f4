"""Hypervisors: libvirt's revert sequence run for real against a fake `virsh`, Hyper-V's through the real
PowerShell invocation, and the clear refusal without one.

The fake `virsh` is an executable on PATH that records its argv (one JSON list per call) and answers
like virsh: `snapshot-revert` leaves the domain paused for a few polls, `domstate` prints the state,
`domtime --now` fails with libvirt's own texts while the guest agent is not connected (for a few
calls after a revert) or not configured (qemuDomainAgentAvailable in libvirt's qemu_domain.c), and
prints nothing once it set the time (virsh(1) domtime). The real virsh runs `domtime` too, against
libvirt's test driver (test:///default).
It runs behind a real POSIX shell: `LocalPosixShell` hands `sh -c` one string quoted with shlex.join,
exactly what sshd does with an SSH command, so the recorded argv proves the quoting round-trips. With
harness.target.windows.ssh_session present, the same sequence also runs over a real loopback sshd.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

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

# `&`, `?` and `=` would split or background a naive shell command: they must reach virsh intact.
URI = "qemu+ssh://lkdh@kvm.example.test/system?keyfile=/home/lkdh/.ssh/id&no_verify=1"

FAKE_VIRSH = """\
#!{python}
import json, sys
from pathlib import Path

state = Path({state!r})
args = sys.argv[1:]
with (state / "calls.jsonl").open("a") as log:
    log.write(json.dumps(args) + "\\n")
behaviour = json.loads((state / "behaviour.json").read_text())
if args[:1] != ["-c"] or len(args) < 3:
    sys.exit("error: expected -c URI COMMAND")
command, rest = args[2], args[3:]
polls = state / "paused_polls_left"
agent = state / "agent_polls_left"
if command == "snapshot-revert":
    if behaviour.get("revert_error"):
        sys.exit(behaviour["revert_error"])
    polls.write_text(str(behaviour.get("paused_polls", 0)))
    agent.write_text(str(behaviour.get("agent_unconnected_polls", 0)))
elif command == "domtime":
    left = int(agent.read_text()) if agent.exists() else 0
    if behaviour.get("no_agent_channel"):
        sys.exit("error: argument unsupported: QEMU guest agent is not configured")
    if left > 0:
        agent.write_text(str(left - 1))
        sys.exit("error: Guest agent is not responding: QEMU guest agent is not connected")
    if rest[1:] != ["--now"]:
        sys.exit("error: this fake virsh only sets the time with --now")
elif command == "domstate":
    left = int(polls.read_text()) if polls.exists() else 0
    if behaviour.get("never_running") or left > 0:
        polls.write_text(str(max(left - 1, 0)))
        print("paused\\n")
    else:
        print("running\\n")
elif command == "snapshot-info":
    if rest[1] != behaviour.get("snapshot"):
        sys.exit(f"error: Domain snapshot not found: no domain snapshot with matching name '{{rest[1]}}'")
    print("Name:           " + rest[1])
else:
    sys.exit(f"error: unknown command '{{command}}'")
"""


class FakeVirsh:
    """A `virsh` in its own folder, and what it was asked."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        script = folder / "virsh"
        script.write_text(FAKE_VIRSH.format(python=sys.executable, state=str(folder)))
        script.chmod(0o755)
        self.behave(snapshot="clean-driver-ready")

    def behave(self, **behaviour: object) -> None:
        (self.folder / "behaviour.json").write_text(json.dumps(behaviour))

    def calls(self) -> list[list[str]]:
        log = self.folder / "calls.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


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


def _libvirt(timeout: float = 30) -> LibvirtSettings:
    return LibvirtSettings.model_validate(
        {
            "kind": "libvirt",
            "ssh": {"host": "kvm.example.test", "user": "lkdh", "key_file": "/nonexistent/id"},
            "uri": URI,
            "domain": "win11-lab",
            "snapshot": "clean-driver-ready",
            "timeout": timeout,
        }
    )


@pytest.fixture
def virsh(tmp_path: Path) -> FakeVirsh:
    return FakeVirsh(tmp_path / "bin")


@pytest.fixture
def shell(virsh: FakeVirsh) -> LocalPosixShell:
    return LocalPosixShell(virsh.folder)


def test_libvirt_revert_runs_snapshot_revert_then_polls_domstate(
    virsh: FakeVirsh, shell: LocalPosixShell
) -> None:
    virsh.behave(snapshot="clean-driver-ready", paused_polls=2)
    host = LibvirtHost(_libvirt(), lambda: shell, poll_interval=0.01)
    host.revert()
    domstate = ["-c", URI, "domstate", "win11-lab"]
    assert virsh.calls() == [
        ["-c", URI, "snapshot-revert", "win11-lab", "clean-driver-ready", "--running"],
        domstate,
        domstate,
        domstate,  # paused, paused, running
        ["-c", URI, "domtime", "win11-lab", "--now"],  # the snapshot's clock is set to the host's
    ]
    assert shell.closed == 1  # the session is released after the revert


def test_libvirt_revert_failure_carries_virshs_reason(virsh: FakeVirsh, shell: LocalPosixShell) -> None:
    virsh.behave(revert_error="error: Requested operation is not valid: domain is locked")
    with pytest.raises(HypervisorError) as caught:
        LibvirtHost(_libvirt(), lambda: shell, poll_interval=0.01).revert()
    assert str(caught.value) == (
        "virsh snapshot-revert on kvm.example.test failed (exit 1): "
        "error: Requested operation is not valid: domain is locked"
    )
    assert len(virsh.calls()) == 1  # no polling after a failed revert
    assert shell.closed == 1


def test_libvirt_revert_gives_up_at_its_deadline(virsh: FakeVirsh, shell: LocalPosixShell) -> None:
    virsh.behave(snapshot="clean-driver-ready", never_running=True)
    # Either the last poll saw it paused, or (on a loaded machine) the last poll ran into the deadline.
    # 3 s: each fake virsh is a Python start-up, which a loaded 2-core machine can stretch past 0.5 s.
    with pytest.raises(HypervisorError, match=r"domain 'win11-lab'(:| is 'paused',) .*3 s"):
        LibvirtHost(_libvirt(timeout=3), lambda: shell, poll_interval=0.05).revert()
    assert len(virsh.calls()) >= 2  # it did poll before giving up


def test_libvirt_check_changes_nothing_and_names_a_missing_snapshot(
    virsh: FakeVirsh, shell: LocalPosixShell
) -> None:
    host = LibvirtHost(_libvirt(), lambda: shell)
    assert host.check().endswith("domain is running, snapshot exists")
    virsh.behave(snapshot="some-other-snapshot")
    with pytest.raises(HypervisorError, match="no domain snapshot with matching name 'clean-driver-ready'"):
        host.check()
    commands = {call[2] for call in virsh.calls()}
    assert commands == {"domstate", "snapshot-info"}  # never snapshot-revert


def test_libvirt_over_a_real_sshd(tmp_path: Path, virsh: FakeVirsh) -> None:
    """The same revert through SshSession(posix=True) to a real OpenSSH server on loopback."""
    ssh_session = pytest.importorskip("harness.target.windows.ssh_session")
    sshd_server = pytest.importorskip("sshd_server")
    if reason := sshd_server.sshd_missing_reason():
        pytest.skip(reason)
    virsh.behave(snapshot="clean-driver-ready", paused_polls=1)
    with sshd_server.SshdServer(tmp_path / "sshd") as server:
        # sshd gives commands a fixed PATH; a forced command puts the fake virsh first, then runs the
        # client's command string through the shell exactly as sshd would have.
        public_key = Path(f"{server.client_key}.pub").read_text().strip()
        forced = f'command="PATH={virsh.folder}:$PATH; eval \\"$SSH_ORIGINAL_COMMAND\\"" {public_key}\n'
        (server.workdir / "authorized_keys").write_text(forced)
        settings = _libvirt()
        session = ssh_session.SshSession(
            "127.0.0.1",
            server.port,
            server.user,
            server.client_key,
            known_hosts=server.known_hosts,
            connect_timeout=10,
            keepalive=30,
            posix=True,
        )
        LibvirtHost(settings, lambda: session, poll_interval=0.01).revert()
    assert virsh.calls()[0] == ["-c", URI, "snapshot-revert", "win11-lab", "clean-driver-ready", "--running"]
    assert virsh.calls()[1:] == [
        ["-c", URI, "domstate", "win11-lab"],
        ["-c", URI, "domstate", "win11-lab"],
        ["-c", URI, "domtime", "win11-lab", "--now"],
    ]


def test_libvirt_revert_waits_for_the_guest_agent_then_sets_the_clock(
    virsh: FakeVirsh, shell: LocalPosixShell
) -> None:
    virsh.behave(snapshot="clean-driver-ready", agent_unconnected_polls=2)
    LibvirtHost(_libvirt(), lambda: shell, poll_interval=0.01).revert()
    domtime = ["-c", URI, "domtime", "win11-lab", "--now"]
    assert virsh.calls()[-3:] == [domtime] * 3  # not connected, not connected, set


def test_libvirt_revert_without_a_guest_agent_channel_says_how_to_add_one(
    virsh: FakeVirsh, shell: LocalPosixShell
) -> None:
    virsh.behave(snapshot="clean-driver-ready", no_agent_channel=True)
    with pytest.raises(HypervisorError) as caught:
        LibvirtHost(_libvirt(), lambda: shell, poll_interval=0.01).revert()
    message = str(caught.value)
    assert message.startswith(
        "domain 'win11-lab' reverted to 'clean-driver-ready', but its clock was not set"
    )
    assert "QEMU guest agent is not configured" in message and "org.qemu.guest_agent.0" in message
    assert [call[2] for call in virsh.calls()].count("domtime") == 1  # final: not retried


def test_the_clock_resync_is_a_command_the_real_virsh_accepts() -> None:
    """Debian's virsh against libvirt's test driver, whose domain `test` implements domtime."""
    if shutil.which("virsh") is None:
        pytest.skip("virsh is not installed (apt: libvirt-clients)")
    settings = LibvirtSettings.model_validate(
        {
            "kind": "libvirt",
            "ssh": {"host": "localhost", "user": "lkdh", "key_file": "/nonexistent/id"},
            "uri": "test:///default",
            "domain": "test",
            "snapshot": "clean",
        }
    )
    LibvirtHost(settings, lambda: LocalPosixShell(Path("/nonexistent")))._sync_clock(
        LocalPosixShell(Path("/nonexistent")), time.monotonic() + 30
    )


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
    libvirt = hypervisor_from_config(_libvirt(), Sessions())
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
    wsman_server = pytest.importorskip("wsman_server")
    from harness.target.windows.winrm_session import WinRMSession

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

"""`commands: ssh`: the harness's commands over Windows OpenSSH instead of WinRM.

The config rules (each mistake at its own line), the session the product opens for commands, a
provisioning and a shipped scenario over the SSH channel on the Windows double, and `lkdh target
check` testing that channel against a real sshd (resolve, TCP and SFTP for real; the PowerShell
answers scripted, as tests/test_stage_check.py scripts them). The end-to-end run over a real
sshd with the double behind it is tests/test_windows_on_kvm.py and tests/test_journal_on_kvm.py.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import sshd_server
from driver_package import BuiltPackage
from required_tools import tool_missing
from signing import SigningIdentity
from test_stage_check import STAGES, ScriptedSession, _healthy
from test_windows_machine import ADMIN, CONFIG, HOST, SHIPPED, USER, build_lab, machine_on

from harness.runner import run_scenario
from harness.target.sim import SimSettings, SimulatedMachine
from harness.target.windows.command_channel import command_session, describe_channel
from harness.target.windows.config import SshSettings, TargetConfig, WinRMSettings
from harness.target.windows.session import CommandResult
from harness.target.windows.ssh_session import SshSession
from harness.target.windows.stage_check import check_target, format_stage_report
from harness.target_config import TargetConfigErrors, load_target_config

DRIVER = """\
driver:
  package: pkg
  hardware_id: Root\\LkdhTestDriver
  lkdctl: lkdctl.exe
"""
SSH = "ssh:\n  user: lkdh-admin\n  key_file: id_ed25519\n"
WINRM = "winrm:\n  username: admin\n  password: {env: LKDH_WINRM_PASSWORD}\n"


def _load(tmp_path: Path, text: str) -> TargetConfig:
    path = tmp_path / "target.yaml"
    path.write_text(text, encoding="utf-8")
    return load_target_config(path)


def _errors(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(TargetConfigErrors) as caught:
        _load(tmp_path, text)
    return [line.removeprefix(f"{tmp_path / 'target.yaml'}:") for line in str(caught.value).splitlines()]


def test_commands_over_ssh_need_no_winrm_section(tmp_path: Path) -> None:
    config = _load(tmp_path, "name: lab\nhost: 127.0.0.1\ncommands: ssh\n" + SSH + DRIVER)
    assert (config.commands, config.winrm) == ("ssh", None)
    assert (
        describe_channel(config) == "commands over Windows OpenSSH (ssh://lkdh-admin@127.0.0.1:22, cmd.exe)"
    )


def test_commands_go_over_winrm_by_default(tmp_path: Path) -> None:
    config = _load(tmp_path, "name: lab\nhost: 127.0.0.1\n" + WINRM + DRIVER)
    assert config.commands == "winrm"
    assert describe_channel(config) == "commands over WinRM (https://127.0.0.1:5986, ntlm)"


def test_commands_over_ssh_without_an_ssh_section_is_an_error_at_its_line(tmp_path: Path) -> None:
    errors = _errors(tmp_path, "name: lab\nhost: 127.0.0.1\n" + WINRM + "commands: ssh\n" + DRIVER)
    assert errors == [
        "6:11: commands: commands: ssh sends every command to Windows OpenSSH: give an `ssh` section"
        " (port, user, key_file, known_hosts)"
    ]


def test_without_winrm_or_commands_the_missing_section_is_named(tmp_path: Path) -> None:
    errors = _errors(tmp_path, "name: lab\nhost: 127.0.0.1\n" + SSH + DRIVER)
    assert errors == [
        "1:1: the target config: commands go over WinRM (commands: winrm, the default): give a `winrm`"
        " section, or set commands: ssh to send them to Windows OpenSSH with the `ssh` section"
    ]


def test_a_broken_section_is_reported_once_not_also_as_missing(tmp_path: Path) -> None:
    errors = _errors(tmp_path, "name: lab\nhost: 127.0.0.1\ncommands: ssh\nssh: {user: a}\n" + DRIVER)
    assert errors == ["4:6: ssh: missing required key 'key_file'"]


def test_an_unknown_channel_is_refused(tmp_path: Path) -> None:
    errors = _errors(tmp_path, "name: lab\nhost: 127.0.0.1\ncommands: telnet\n" + SSH + DRIVER)
    assert len(errors) == 1 and errors[0].startswith("3:11: commands: expected one of 'winrm', 'ssh'")


def test_a_hyperv_host_still_needs_its_own_winrm(tmp_path: Path) -> None:
    hyperv = "hypervisor: {kind: hyperv, host: hv.example.test, vm_name: Win11 Lab, checkpoint: ok}\n"
    errors = _errors(tmp_path, "name: lab\nhost: 127.0.0.1\ncommands: ssh\n" + SSH + DRIVER + hyperv)
    assert errors == ["11:13: hypervisor: missing required key 'winrm'"]


class RecordingOpener:
    def __init__(self) -> None:
        self.opened: list[tuple[str, str, bool]] = []

    def winrm(self, host: str, settings: WinRMSettings) -> str:
        self.opened.append(("winrm", host, False))
        return "winrm session"

    def ssh(self, host: str, settings: SshSettings, *, posix: bool = False) -> str:
        self.opened.append(("ssh", host, posix))
        return "ssh session"


def test_the_command_session_is_the_channel_the_config_names(tmp_path: Path) -> None:
    over_ssh = _load(
        tmp_path, "name: lab\nhost: 127.0.0.1\ncommands: ssh\n" + SSH + "  host: vm.example.test\n" + DRIVER
    )
    over_winrm = _load(tmp_path, "name: lab\nhost: 127.0.0.1\n" + WINRM + SSH + DRIVER)
    opener = RecordingOpener()
    assert command_session(over_ssh, opener) == "ssh session"  # type: ignore[arg-type]
    assert command_session(over_winrm, opener) == "winrm session"  # type: ignore[arg-type]
    # Windows OpenSSH: not a POSIX shell, so argv is joined for cmd.exe (SshSession posix=False)
    assert opener.opened == [("ssh", "vm.example.test", False), ("winrm", "127.0.0.1", False)]


def test_a_machine_over_ssh_provisions_and_runs_a_scenario_without_winrm(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    packages: dict[str, BuiltPackage],
    identity: SigningIdentity,
) -> None:
    """Provisioning (its reboots included) and a standard-user IOCTL, every command on the SSH
    channel; the double's sessions record which kind was opened."""
    lab = build_lab(tmp_path, monkeypatch, packages, identity)
    text = CONFIG.format(
        host=HOST,
        admin=ADMIN,
        user=USER,
        certificate_line="  certificate: build/LkdhTest.cer\n",
        package="build/LkdhTestDriver",
    )
    winrm = f"winrm:\n  username: {ADMIN}\n  password: {{env: LKDH_DOUBLE_ADMIN_PASSWORD}}\n"
    text = text.replace(winrm, f"commands: ssh\nssh: {{user: {ADMIN}, key_file: id_ed25519}}\n")
    config = _load(tmp_path, text)
    machine = machine_on(lab, config, tmp_path)
    (loaded,) = [item for item in SHIPPED if item.scenario.name == "ioctl_create_as_standard_user_is_denied"]
    record = run_scenario(loaded, machine)
    reference = run_scenario(loaded, SimulatedMachine(tmp_path / "sim", SimSettings(profile="dmf-bfac434")))
    assert (record.outcome, record.error) == (reference.outcome, None), record.failure_text()
    assert [step.status for step in record.steps] == [step.status for step in reference.steps]
    assert set(lab.sessions.opened) == {"ssh"}, "no WinRM session was opened"
    assert "install-driver" in [call.name for call in lab.vm.calls], "provisioned over the SSH channel"


class SshCommands:
    """Command sessions with scripted PowerShell answers, whose SFTP is a real sshd's."""

    def __init__(self, server: sshd_server.SshdServer) -> None:
        self.server = server
        self.scripted = ScriptedSession("vm", _healthy())
        self.opened: list[str] = []

    def winrm(self, host: str, settings: WinRMSettings) -> None:
        raise AssertionError("commands: ssh opens no WinRM session")

    def ssh(self, host: str, settings: SshSettings, *, posix: bool = False) -> _Commands:
        self.opened.append(f"ssh {host}:{settings.port} posix={posix}")
        real = SshSession(
            host, settings.port, settings.user, settings.key_file, known_hosts=settings.known_hosts
        )
        return _Commands(self.scripted, real)


class _Commands:
    def __init__(self, scripted: ScriptedSession, real: SshSession) -> None:
        self.host, self.scripted, self.real = "vm", scripted, real
        self.run = scripted.run
        self.open_sftp = real.open_sftp

    def close(self) -> None:
        self.real.close()
        self.scripted.close()


def test_target_check_tests_the_ssh_channel_it_will_use(tmp_path: Path) -> None:
    if reason := sshd_server.sshd_missing_reason():
        tool_missing(reason)
    with sshd_server.SshdServer(tmp_path / "sshd") as server:
        ssh = server.ssh_settings()
        config = TargetConfig.model_validate(
            {
                "name": "lab",
                "host": "127.0.0.1",
                "commands": "ssh",
                "ssh": ssh,
                "driver": {"package": "/p", "hardware_id": "Root\\LkdhTestDriver", "lkdctl": "/l.exe"},
            }
        )
        sessions = SshCommands(server)
        results = check_target(config, session_factory=sessions)  # type: ignore[arg-type]
    by_stage = {result.stage: result for result in results}
    assert list(by_stage) == STAGES
    assert all(result.ok for result in results), format_stage_report(results)
    assert by_stage["tcp"].message.endswith(f":{server.port}"), "the SSH port, not WinRM's 5986"
    assert not by_stage["tls"].ran and by_stage["tls"].message.startswith("commands: ssh: no TLS")
    assert by_stage["auth+powershell"].message.endswith(
        f"; commands over Windows OpenSSH (ssh://{server.user}@127.0.0.1:{server.port}, cmd.exe)"
    )
    assert by_stage["ssh"].message.startswith("SFTP answers on the command connection (home /")
    assert sessions.scripted.ran == ["host-info", "driver-status", "dump-folder-status"]
    assert sessions.opened == [f"ssh 127.0.0.1:{server.port} posix=False"]


def test_a_script_that_does_not_run_over_ssh_points_at_the_default_shell(tmp_path: Path) -> None:
    """What a DefaultShell of powershell.exe (or any shell but cmd.exe) would look like: the line
    arrives but the bootstrap never answers; the check says which registry value to look at."""

    class WrongShell:
        host = "127.0.0.1"

        def run(self, argv, *, stdin=b"", timeout, on_output=None) -> CommandResult:
            return CommandResult(1, b"", b"The term 'powershell.exe -NoProfile' is not recognized\r\n")

        def close(self) -> None:
            pass

    class Opener(RecordingOpener):
        def ssh(self, host, settings, *, posix=False):  # type: ignore[override]
            return WrongShell()

    with socket.create_server(("127.0.0.1", 0)) as listening:  # accepts TCP: the tcp stage passes
        config = TargetConfig.model_validate(
            {
                "name": "lab",
                "host": "127.0.0.1",
                "commands": "ssh",
                "ssh": {"user": "a", "key_file": "/k", "port": listening.getsockname()[1]},
                "driver": {"package": "/p", "hardware_id": "Root\\LkdhTestDriver", "lkdctl": "/l.exe"},
            }
        )
        results = {r.stage: r for r in check_target(config, session_factory=Opener())}  # type: ignore[arg-type]
    assert not results["auth+powershell"].ok
    assert "HKLM\\SOFTWARE\\OpenSSH\\DefaultShell unset or cmd.exe" in results["auth+powershell"].message

"""Which connection carries the harness's commands to the VM: WinRM, or Windows OpenSSH (`commands: ssh`).

Both carry the very same thing: the bootstrap command line of powershell.py (`powershell.exe
-NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand <a constant>`), with the
template's parameters and text on stdin. Nothing else changes; a step's outcome cannot depend on the
channel.

- WinRM starts the program in a WinRS shell (winrm_session.py).
- Windows OpenSSH (Windows 10 1809+, Server 2019+) hands the command line of an SSH `exec` request
  to the account's default shell, which is cmd.exe unless the registry value
  HKLM\\SOFTWARE\\OpenSSH\\DefaultShell names another ("OpenSSH Server configuration for Windows",
  https://learn.microsoft.com/windows-server/administration/openssh/openssh_server_configuration,
  "Configuring the default shell for OpenSSH in Windows": "The initial default Windows is the
  Windows Command shell (cmd.exe)"). cmd.exe runs the line as `cmd.exe /c LINE`. SshSession with
  `posix=False` joins argv with the Microsoft C runtime's quoting (`subprocess.list2cmdline`) and
  refuses cmd.exe's own metacharacters (`%`, `^`, `&`, `|`, `<`, `>`, `!`, quotes, line breaks),
  so cmd.exe passes the line on as written and powershell.exe splits it back into the same argv.
  The bootstrap line holds letters, digits, `-` and base64 (`+`, `/`, `=`): nothing cmd.exe acts on.

The harness relies on the default shell being cmd.exe. A DefaultShell of powershell.exe would run
the line as PowerShell code instead; that is not what the harness sends, and is not supported
(README: "Commands over SSH"). Authentication is the SSH key of the `ssh` section; the account
must be an administrator (the same page, "AuthorizedKeysFile": an administrator's public key goes in
%ProgramData%\\ssh\\administrators_authorized_keys) whose session is elevated, which host-info's
`elevated` check confirms before anything is installed.
"""

from __future__ import annotations

from harness.target.windows.config import TargetConfig
from harness.target.windows.hypervisor import SessionOpener
from harness.target.windows.session import RemoteSession


def command_session(config: TargetConfig, sessions: SessionOpener) -> RemoteSession:
    """A new session for commands to the VM, over the channel `config.commands` names."""
    if config.commands == "ssh":
        assert config.ssh is not None and config.ssh_host is not None  # TargetConfig requires it
        return sessions.ssh(config.ssh_host, config.ssh)  # posix=False: Windows OpenSSH, cmd.exe
    assert config.winrm is not None  # TargetConfig requires it for commands: winrm
    return sessions.winrm(config.host, config.winrm)


def command_endpoint(config: TargetConfig) -> tuple[str, int]:
    """The host and port commands connect to (what `lkdh target check` resolves and dials)."""
    if config.commands == "ssh":
        assert config.ssh is not None and config.ssh_host is not None
        return config.ssh_host, config.ssh.port
    assert config.winrm is not None
    return config.host, config.winrm.port


def describe_channel(config: TargetConfig) -> str:
    """The command channel in words, for the check's report and the run log."""
    host, port = command_endpoint(config)
    if config.commands == "ssh":
        assert config.ssh is not None
        return f"commands over Windows OpenSSH (ssh://{config.ssh.user}@{host}:{port}, cmd.exe)"
    assert config.winrm is not None
    return f"commands over WinRM ({config.winrm.scheme}://{host}:{port}, {config.winrm.transport})"

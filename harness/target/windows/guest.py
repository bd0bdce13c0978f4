"""The Windows VM as the harness reaches it: PowerShell scripts over WinRM or Windows OpenSSH
(`commands`, command_channel.py), files over SFTP (when the config has `ssh`; OpenSSH's `ssh` or
paramiko carries them) or in chunks through the commands, and reboots told apart by a
clock-independent boot identity.

Reboot detection follows Ansible's win_reboot (note the boot before, poll until the machine answers
from another one), but a boot is not identified by LastBootUpTime: Windows computes it as now minus
uptime, so it moves by a second without a reboot and jumps after every clock correction
(windows_exporter#74, beats#12591). A boot is its BootIdentity: the boot sequence number and the
uptime from the performance counter (boot-time.ps1). An unreachable machine alone proves nothing
(the network may have blinked); an answer from another boot does, and an answer from the *same*
boot after the grace period proves no reboot happened, so the wait ends there instead of at the
boot deadline.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath
from typing import Any

from harness.target.windows import powershell
from harness.target.windows.chunked_transfer import download_in_chunks
from harness.target.windows.command_channel import command_session
from harness.target.windows.config import TargetConfig
from harness.target.windows.hypervisor import SessionOpener
from harness.target.windows.session import RemoteSession, SessionError

log = logging.getLogger(__name__)

UPLOAD_CHUNK = 256 * 1024
"""Bytes per upload-chunk call: base64 makes it ~350 KB of stdin, well inside WinRM's envelope."""

BOOT_POLL_SECONDS = 5.0


@dataclass(frozen=True)
class BootIdentity:
    """Which boot a machine is in: `boot_id` (PrefetchParameters\\BootId, +1 per boot; None when the
    value is absent) and `uptime_ms` (QueryPerformanceCounter since boot, never the wall clock)."""

    boot_id: int | None
    uptime_ms: int

    def is_later_boot_than(self, earlier: BootIdentity) -> bool:
        """Another boot than `earlier`: the sequence number moved, or (without one) uptime went down."""
        if self.boot_id is not None and earlier.boot_id is not None:
            return self.boot_id != earlier.boot_id
        return self.uptime_ms < earlier.uptime_ms

    def describe(self) -> str:
        number = "unknown" if self.boot_id is None else str(self.boot_id)
        return f"boot id {number}, up {self.uptime_ms / 1000:.0f} s"


NO_BOOT = BootIdentity(None, 2**63 - 1)
"""A boot every real one is later than: for waiting after a revert, where any answer will do."""


class Guest:
    """One Windows test VM; sessions are opened on first use and reopened after a failure."""

    def __init__(
        self,
        config: TargetConfig,
        sessions: SessionOpener,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.host = config.host
        self._sessions = sessions
        self._commands: RemoteSession | None = None
        self._ssh: RemoteSession | None = None
        self._sleep = sleep
        self._clock = clock

    # -- commands -------------------------------------------------------------------------------
    def script(
        self, name: str, params: dict[str, powershell.JsonValue], *, timeout: float | None = None
    ) -> Any:
        """Run one PowerShell template; its result object, or ScriptError / SessionError."""
        call = powershell.invocation(name, params)
        log.debug("%s: script %s %s", self.host, name, powershell.redacted(params))
        try:
            result = self._shell().run(
                call.argv, stdin=call.stdin, timeout=timeout or self.config.timeouts.command
            )
        except SessionError:
            self._drop_commands()
            raise
        return powershell.parse_result(result, name, host=self.host)

    def boot_identity(self) -> BootIdentity:
        """The boot the machine is in now (boot-time.ps1)."""
        answer = self.script("boot-time", {})
        boot_id = answer.get("boot_id")
        return BootIdentity(None if boot_id is None else int(boot_id), int(answer["uptime_ms"]))

    def wait_for_new_boot(
        self, previous: BootIdentity, *, same_boot_grace: float = 0.0, timeout: float | None = None
    ) -> BootIdentity:
        """Poll until the machine answers from a boot later than `previous`; that boot.
        SessionError while it is down is expected and retried until `timeout` (config: boot). An
        answer from `previous` itself more than `same_boot_grace` seconds after the start means it
        did not reboot: SessionError at once, saying so (a restart needs a grace for shutdown; a
        lost command, none: a bugchecked machine cannot answer)."""
        start = self._clock()
        deadline = start + (timeout or self.config.timeouts.boot)
        last_error = "it never answered"
        while self._clock() < deadline:
            try:
                booted = self.boot_identity()
            except SessionError as error:
                last_error = f"last attempt: {error}"
            else:
                if booted.is_later_boot_than(previous):
                    return booted
                if self._clock() - start >= same_boot_grace:
                    raise SessionError(
                        "tcp",
                        self.host,
                        f"the machine did not reboot: it answers from the same boot ({booted.describe()},"
                        f" before: {previous.describe()}) {self._clock() - start:.0f} s later",
                    )
                last_error = "it still answered from the old boot (no reboot happened)"
            self._sleep(BOOT_POLL_SECONDS)
        raise SessionError(
            "tcp", self.host, f"the machine did not come back from a reboot within the deadline: {last_error}"
        )

    # -- files ----------------------------------------------------------------------------------
    def file_hashes(self, paths: list[str]) -> dict[str, dict[str, Any]]:
        """Get-FileHash (SHA-256) of each path, computed on the guest."""
        result = self.script("file-hash", {"paths": list(paths)})
        return {entry["path"]: entry for entry in result["files"]}

    def download(self, remote_path: str, local_path: Path, *, size: int, sha256: str) -> Path:
        """Copy a guest file here and prove it by SHA-256 (SFTP when configured, else WinRM chunks).
        Nothing on the guest is touched."""
        local_path.parent.mkdir(parents=True, exist_ok=True)
        if self.config.ssh is not None:
            from harness.target.windows.sftp_transfer import download

            return download(self._sftp_source(), sftp_path(remote_path), local_path, sha256).path

        def read_chunk(offset: int, length: int) -> bytes:
            chunk = self.script(
                "read-chunk",
                {"path": remote_path, "offset": offset, "length": length},
                timeout=self.config.timeouts.transfer,
            )
            return base64.b64decode(chunk["data"])

        return download_in_chunks(
            read_chunk, size, local_path, sha256, host=self.host, source=remote_path
        ).path

    def upload(self, local_path: Path, remote_path: str) -> None:
        """Copy a local file to the guest in base64 chunks over WinRM, then check its hash there."""
        data = local_path.read_bytes()
        for offset in range(0, max(len(data), 1), UPLOAD_CHUNK):
            piece = data[offset : offset + UPLOAD_CHUNK]
            self.script(
                "upload-chunk",
                {"path": remote_path, "offset": offset, "data": base64.b64encode(piece).decode()},
                timeout=self.config.timeouts.transfer,
            )
        want = hashlib.sha256(data).hexdigest()
        got = self.file_hashes([remote_path]).get(remote_path, {}).get("sha256", "")
        if got.strip().lower() != want:  # Get-FileHash prints upper case
            raise SessionError(
                "transfer", self.host, f"upload of {local_path.name} arrived as {got or 'nothing'}"
            )

    def close(self) -> None:
        self._drop_commands()
        if self._ssh is not None:
            self._ssh.close()
            self._ssh = None

    # -- sessions -------------------------------------------------------------------------------
    def _shell(self) -> RemoteSession:
        if self._commands is None:
            self._commands = command_session(self.config, self._sessions)
        return self._commands

    def _drop_commands(self) -> None:
        if self._commands is not None:
            self._commands.close()
            self._commands = None

    def _sftp_source(self) -> Any:
        """OpenSSH's `ssh` when `ssh.sftp_client` allows it (openssh_sftp.py), else the paramiko
        session; both are sftp_transfer.SftpProviders with the same host-key policy."""
        settings = self.config.ssh
        assert settings is not None
        host = self.config.ssh_host or self.host
        if settings.sftp_client != "paramiko":
            from harness.target.windows import openssh_sftp

            usable = openssh_sftp.openssh_available() and settings.passphrase is None
            if usable:
                return openssh_sftp.OpenSshSftp(openssh_sftp.endpoint_for(host, settings))
            if settings.sftp_client == "openssh":
                raise SessionError(
                    "transfer", host, "sftp_client openssh: OpenSSH's ssh is not installed here"
                )
        if self._ssh is None:
            self._ssh = self._sessions.ssh(host, settings)
        return self._ssh


def sftp_path(windows_path: str) -> str:
    r"""`C:\Windows\Minidump\x.dmp` as Windows OpenSSH's SFTP server names it: `/C:/Windows/...`."""
    path = PureWindowsPath(windows_path)
    if not path.drive:
        raise ValueError(f"not an absolute Windows path: {windows_path!r}")
    return "/" + path.as_posix()

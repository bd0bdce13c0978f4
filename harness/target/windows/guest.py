"""The Windows VM as the harness reaches it: PowerShell scripts over WinRM, files over SFTP (when
the config has `ssh`) or in WinRM chunks, and reboots told apart by the boot time.

Reboot detection follows Ansible's win_reboot: read LastBootUpTime before, then poll until the
machine answers again with a *different* boot time. An unreachable machine alone proves nothing
(the network may have blinked); a new boot time does.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from collections.abc import Callable
from pathlib import Path, PureWindowsPath
from typing import Any

from harness.target.windows import powershell
from harness.target.windows.chunked_transfer import download_in_chunks
from harness.target.windows.config import TargetConfig
from harness.target.windows.hypervisor import SessionOpener
from harness.target.windows.session import RemoteSession, SessionError

log = logging.getLogger(__name__)

UPLOAD_CHUNK = 256 * 1024
"""Bytes per upload-chunk call: base64 makes it ~350 KB of stdin, well inside WinRM's envelope."""

BOOT_POLL_SECONDS = 5.0


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
        self._winrm: RemoteSession | None = None
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
            self._drop_winrm()
            raise
        return powershell.parse_result(result, name, host=self.host)

    def boot_time(self) -> float:
        """LastBootUpTime as a Unix time."""
        return float(self.script("boot-time", {})["last_boot_unix"])

    def wait_for_new_boot(self, previous_boot: float, timeout: float | None = None) -> float:
        """Poll until the machine answers with a boot time other than `previous_boot`; that time.
        SessionError while it is down is expected and retried until `timeout` (config: boot)."""
        deadline = self._clock() + (timeout or self.config.timeouts.boot)
        last_error = "it never answered"
        while self._clock() < deadline:
            try:
                booted = self.boot_time()
            except SessionError as error:
                last_error = f"last attempt: {error}"
            else:
                if booted != previous_boot:
                    return booted
                last_error = "it answers with the old boot time (no reboot happened)"
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
        self._drop_winrm()
        if self._ssh is not None:
            self._ssh.close()
            self._ssh = None

    # -- sessions -------------------------------------------------------------------------------
    def _shell(self) -> RemoteSession:
        if self._winrm is None:
            self._winrm = self._sessions.winrm(self.host, self.config.winrm)
        return self._winrm

    def _drop_winrm(self) -> None:
        if self._winrm is not None:
            self._winrm.close()
            self._winrm = None

    def _sftp_source(self) -> Any:
        assert self.config.ssh is not None
        if self._ssh is None:
            self._ssh = self._sessions.ssh(self.config.ssh_host or self.host, self.config.ssh)
        return self._ssh


def sftp_path(windows_path: str) -> str:
    r"""`C:\Windows\Minidump\x.dmp` as Windows OpenSSH's SFTP server names it: `/C:/Windows/...`."""
    path = PureWindowsPath(windows_path)
    if not path.drive:
        raise ValueError(f"not an absolute Windows path: {windows_path!r}")
    return "/" + path.as_posix()

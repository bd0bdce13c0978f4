"""Fetching a dump from the guest over SFTP: fast, hash-verified, resumable, and never destructive.

Speed comes from paramiko's pipelined reads (`SFTPFile.prefetch`), tuned by measurement on loopback
(bench/bench_sftp.py; figures for reading only, no disk):
- 64 KiB read requests instead of paramiko's 32 KiB: 155-175 -> 220-260 MiB/s. OpenSSH's
  sftp-server (Windows' too) answers reads up to 64 KiB in full (older ones clamp there, newer at
  255 KiB). A server that answers short stays correct, just slow: see the race below;
- `read()` calls of exactly one request: paramiko's `read(n)` joins 32 KiB pieces by repeated
  `bytes +=`, so 1 MiB calls cost ~25% of throughput in copying;
- paramiko's default channel window: larger windows made it slower, not faster;
- `max_concurrent_requests` left unset: paramiko enforces that limit by polling every 10 ms
  (`io_sleep`), which cut throughput to 5-80 MiB/s. In-flight requests are bounded instead by
  prefetching one SEGMENT at a time (1,024 requests);
- paramiko's prefetch race (paramiko PR #2519): when reads catch up with the thread that queues
  requests, paramiko decides prefetching is over and falls back to one round trip per request for
  the rest of the file. We notice (the file's `_prefetching` flag drops) and reopen the file at the
  current offset, which costs one drained segment instead of a 30x slower transfer.
The cipher (aes128-gcm@openssh.com first) is chosen by SshSession when it connects.

A dropped connection leaves the partial file in place; after reconnecting, calling `download` again
resumes from its length. The partial file, the prefix re-hash, the comparison with the guest's
SHA-256 (Get-FileHash on Windows) and the kept mismatches are verified_download.py's, shared with the
WinRM chunk path. Nothing on the guest is ever deleted or changed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import paramiko

from harness.target.windows.session import SessionError
from harness.target.windows.verified_download import DownloadResult, PartialCopy, normalized_sha256

log = logging.getLogger(__name__)

REQUEST_SIZE = 64 << 10
"""Bytes per SFTP read request: the most every OpenSSH sftp-server answers in full."""
SEGMENT = 64 << 20
"""Bytes prefetched at a time: at most 1,024 requests in flight."""
REMOTE_FAILURES = (EOFError, paramiko.SSHException, OSError)
"""What paramiko raises when the connection drops (a closed channel is a bare OSError)."""
ProgressCallback = Callable[[int, int], None]
"""Called after each block is written: (bytes on disk, total size)."""


class SftpProvider(Protocol):
    """Something that can open an SFTP client on its connection (an SshSession)."""

    host: str

    def open_sftp(self) -> paramiko.SFTPClient: ...


__all__ = ["DownloadResult", "SftpProvider", "download", "remote_size"]


def _host_of(source: paramiko.SFTPClient | SftpProvider) -> str:
    if not isinstance(source, paramiko.SFTPClient):
        return source.host
    try:
        return str(source.get_channel().get_transport().getpeername()[0])
    except (AttributeError, OSError):
        return "sftp-peer"


def _lost(host: str, what: str, error: BaseException) -> SessionError:
    return SessionError("transfer", host, f"{what}: connection lost ({type(error).__name__})")


def remote_size(source: paramiko.SFTPClient | SftpProvider, remote_path: str) -> int:
    """Size in bytes of a file on the guest."""
    if isinstance(source, paramiko.SFTPClient):
        return _stat_size(source, remote_path, _host_of(source))
    with source.open_sftp() as sftp:
        return _stat_size(sftp, remote_path, source.host)


def _stat_size(sftp: paramiko.SFTPClient, remote_path: str, host: str) -> int:
    try:
        size = sftp.stat(remote_path).st_size
    except FileNotFoundError:
        raise SessionError("transfer", host, f"no such file on the guest: {remote_path}") from None
    except PermissionError:
        raise SessionError("transfer", host, f"not allowed to read {remote_path}") from None
    except REMOTE_FAILURES as error:
        raise _lost(host, f"stat {remote_path}", error) from None
    if size is None:
        raise SessionError("transfer", host, f"the guest reports no size for {remote_path}")
    return int(size)


@contextmanager
def _sftp_of(source: paramiko.SFTPClient | SftpProvider) -> Iterator[tuple[paramiko.SFTPClient, str]]:
    """The SFTP client to use and the host to name in errors; one we opened is closed afterwards."""
    if isinstance(source, paramiko.SFTPClient):
        yield source, _host_of(source)
        return
    try:
        sftp = source.open_sftp()
    except REMOTE_FAILURES as error:
        raise _lost(source.host, "opening SFTP", error) from None
    with sftp:
        yield sftp, source.host


def download(
    source: paramiko.SFTPClient | SftpProvider,
    remote_path: str,
    local_path: Path,
    expected_sha256: str | None,
    *,
    resume: bool = True,
    on_progress: ProgressCallback | None = None,
) -> DownloadResult:
    """Copy `remote_path` to `local_path`, resuming a `.partial` left by a dropped connection.

    `expected_sha256` is the guest's own hash of the file; None skips the comparison (the hash is
    still computed and returned). Raises SessionError("transfer") on a lost connection (call again
    after reconnecting), a missing file, or a hash mismatch.
    """
    expected = None if expected_sha256 is None else normalized_sha256(expected_sha256)
    with _sftp_of(source) as (sftp, host):
        size = _stat_size(sftp, remote_path, host)
        with PartialCopy(Path(local_path), size, resume=resume) as copy:
            start = copy.offset
            for block in _remote_blocks(sftp, host, remote_path, start, size):
                copy.write(block)
                if on_progress:
                    on_progress(copy.offset, size)
            result = copy.verified(expected, host=host, source=remote_path)
    log.info("sftp: %s -> %s, %d bytes, resumed from %d", remote_path, local_path, size, start)
    return result


def _remote_blocks(
    sftp: paramiko.SFTPClient, host: str, remote_path: str, start: int, size: int
) -> Iterator[bytes]:
    """The bytes of `remote_path` from `start` to `size`, in blocks; remote failures become
    SessionError("transfer") here, so local write errors in the caller keep their own type."""
    position = start
    try:
        while position < size:
            with sftp.open(remote_path, "rb") as remote:
                remote.MAX_REQUEST_SIZE = REQUEST_SIZE  # this file only; prefetch and read both use it
                remote.seek(position)
                for block in _prefetched_blocks(remote, position, size):
                    position += len(block)
                    yield block
            if position < size:
                log.debug("sftp: paramiko abandoned prefetch at %d; reopening %s", position, remote_path)
    except FileNotFoundError:
        raise SessionError("transfer", host, f"{remote_path} disappeared from the guest") from None
    except PermissionError:
        raise SessionError("transfer", host, f"not allowed to read {remote_path}") from None
    except REMOTE_FAILURES as error:
        what = f"{remote_path} after {position} of {size} bytes (reconnect and call again to resume)"
        raise _lost(host, what, error) from None


def _prefetched_blocks(remote: paramiko.SFTPFile, position: int, size: int) -> Iterator[bytes]:
    """Blocks from `position`, one prefetched segment at a time; stops early (the caller reopens)
    when paramiko gives up prefetching, and raises EOFError if the file is shorter than `size`."""
    while position < size:
        segment_end = min(size, position + SEGMENT)
        remote.prefetch(segment_end)
        while position < segment_end:
            block = remote.read(min(REQUEST_SIZE, segment_end - position))
            if not block:
                raise EOFError(f"the remote file ended at {position} of {size} bytes")
            position += len(block)
            yield block
            if position < segment_end and not getattr(remote, "_prefetching", True):
                return

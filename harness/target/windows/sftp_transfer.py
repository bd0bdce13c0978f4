"""Fetching a dump from the guest over SFTP: fast, hash-verified, resumable, and never destructive.

The bytes travel over one of two transports, both ending in paramiko's SFTP client: OpenSSH's own
`ssh` (openssh_sftp.py; the fast one, at OpenSSH's speed) or paramiko's Python transport
(SshSession: keys with a passphrase, machines without `ssh`). guest.py picks (`ssh.sftp_client`).

Speed comes from paramiko's pipelined reads (`SFTPFile.prefetch`), tuned by measurement on loopback
(bench/bench_sftp.py; first figures for reading only, no disk, on paramiko's transport):
- read requests as large as the server answers in full: it says so in the `limits@openssh.com`
  reply (OpenSSH 8.7+, PROTOCOL "limits"; 255 KiB), used up to MAX_REQUEST_SIZE; without the
  extension, 64 KiB, which every OpenSSH sftp-server (Windows' too) answers in full. 64 KiB instead
  of paramiko's 32 KiB: 155-175 -> 220-260 MiB/s; 252 KiB over OpenSSH's transport: +25 %. A server
  that answers short stays correct, just slow: see the race below;
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
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import paramiko
from paramiko.sftp import CMD_EXTENDED, CMD_EXTENDED_REPLY

from harness.target.windows.openssh_sftp import NotStreamable
from harness.target.windows.session import SessionError
from harness.target.windows.verified_download import DownloadResult, PartialCopy, normalized_sha256

log = logging.getLogger(__name__)

REQUEST_SIZE = 64 << 10
"""Bytes per SFTP read request when the server does not say: the most every OpenSSH sftp-server
answers in full."""
MAX_REQUEST_SIZE = 252 << 10
"""Largest request used when the server's limits allow (4 KiB-aligned, below OpenSSH's 255 KiB)."""
SEGMENT = 64 << 20
"""Bytes prefetched at a time: at most 1,024 requests in flight (256 at 252 KiB)."""
REMOTE_FAILURES = (EOFError, paramiko.SSHException, OSError)
"""What paramiko raises when the connection drops (a closed channel is a bare OSError)."""
ProgressCallback = Callable[[int, int], None]
"""Called after each block is written, on the writing thread: (bytes on disk, total size)."""
WRITE_BEHIND = 32
"""Blocks received but not yet written (8 MiB at 252 KiB)."""


class SftpProvider(Protocol):
    """Something that can open an SFTP client on its connection (an SshSession)."""

    host: str

    def open_sftp(self) -> paramiko.SFTPClient: ...


__all__ = ["DownloadResult", "SftpProvider", "download", "read_request_size", "remote_size"]


def _host_of(source: paramiko.SFTPClient | SftpProvider) -> str:
    if not isinstance(source, paramiko.SFTPClient):
        return source.host
    try:
        return str(source.get_channel().get_transport().getpeername()[0])
    except (AttributeError, OSError):
        return "sftp-peer"


def _lost(host: str, what: str, error: BaseException) -> SessionError:
    return SessionError("transfer", host, f"{what}: connection lost ({type(error).__name__})")


def read_request_size(sftp: paramiko.SFTPClient) -> int:
    """Bytes to ask for per read: what the server's `limits@openssh.com` reply allows (PROTOCOL
    "limits": four uint64, max packet, max read, max write, max open handles; 0 = no limit), capped
    at MAX_REQUEST_SIZE; REQUEST_SIZE when the server does not offer the extension (Windows' inbox
    OpenSSH 8.1, for one). paramiko has no call for it; its own posix_rename sends its extended
    request the same way."""
    try:
        kind, reply = sftp._request(CMD_EXTENDED, "limits@openssh.com")
    except (OSError, paramiko.SSHException) as error:  # SSH_FX_OP_UNSUPPORTED arrives as IOError
        log.debug("sftp: no limits@openssh.com (%s); reading %d bytes at a time", error, REQUEST_SIZE)
        return REQUEST_SIZE
    if kind != CMD_EXTENDED_REPLY or reply is None:
        return REQUEST_SIZE
    reply.get_int64()  # max packet length
    max_read = reply.get_int64()
    if max_read == 0:
        return MAX_REQUEST_SIZE
    return min(MAX_REQUEST_SIZE, max_read & ~0xFFF or max_read)


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
        request = read_request_size(sftp)
        with PartialCopy(Path(local_path), size, resume=resume) as copy:
            start = copy.offset
            writer = _WriteBehind(copy, size, on_progress)
            try:
                for block in _remote_blocks(sftp, host, remote_path, start, size, request):
                    writer.put(block)
            finally:
                writer.close()  # every block received is on disk (and hashed) before we go on
            writer.raise_error()
            result = copy.verified(expected, host=host, source=remote_path)
    log.info(
        "sftp: %s -> %s, %d bytes in %d-byte reads, resumed from %d",
        remote_path,
        local_path,
        size,
        request,
        start,
    )
    return result


class _WriteBehind:
    """Writes and hashes the blocks on a thread of its own, WRITE_BEHIND blocks behind the reads.

    hashlib and file writes release the GIL, so the copy's SHA-256 overlaps the transfer instead of
    adding to it; and on a machine shared by many processes a thread is scheduled on its own, where
    one thread doing everything is the stage that sets the pace (bench/README.md). Blocks arrive
    in file order, so the order of writes and of the hash is the file's. A write error stops the
    writing (the rest is drained) and is raised with its own type by `raise_error`.
    """

    def __init__(self, copy: PartialCopy, size: int, on_progress: ProgressCallback | None) -> None:
        self._copy, self._size, self._on_progress = copy, size, on_progress
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=WRITE_BEHIND)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="lkdh-sftp-write", daemon=True)
        self._thread.start()

    def put(self, block: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(block)

    def _run(self) -> None:
        while (block := self._queue.get()) is not None:
            if self._error is not None:
                continue
            try:
                self._copy.write(block)
                if self._on_progress:
                    self._on_progress(self._copy.offset, self._size)
            except BaseException as error:  # handed to the reading thread, which raises it
                self._error = error

    def close(self) -> None:
        """Wait until every queued block is written; never raises (see raise_error)."""
        self._queue.put(None)
        self._thread.join()

    def raise_error(self) -> None:
        if self._error is not None:
            raise self._error


def _remote_blocks(
    sftp: paramiko.SFTPClient, host: str, remote_path: str, start: int, size: int, request: int
) -> Iterator[bytes]:
    """The bytes of `remote_path` from `start` to `size`, in blocks; remote failures become
    SessionError("transfer") here, so local write errors in the caller keep their own type."""
    position = start
    try:
        while position < size:
            with sftp.open(remote_path, "rb") as remote:
                remote.MAX_REQUEST_SIZE = request  # this file only; prefetch and read both use it
                stream = getattr(sftp, "stream_read", None)  # OpenSSH's transport: no copies
                if stream is not None and position == start:
                    try:
                        for view in stream(remote.handle, position, size, request, WRITE_BEHIND + 3):
                            position += len(view)
                            yield view
                    except NotStreamable as stop:
                        log.debug("sftp: streamed read stopped at %d; paramiko goes on", stop.position)
                        position = stop.position
                    if position >= size:
                        break
                remote.seek(position)
                for block in _prefetched_blocks(remote, position, size, request):
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


def _prefetched_blocks(remote: paramiko.SFTPFile, position: int, size: int, request: int) -> Iterator[bytes]:
    """Blocks from `position`, one prefetched segment at a time; stops early (the caller reopens)
    when paramiko gives up prefetching, and raises EOFError if the file is shorter than `size`."""
    while position < size:
        segment_end = min(size, position + SEGMENT)
        remote.prefetch(segment_end)
        while position < segment_end:
            block = remote.read(min(request, segment_end - position))
            if not block:
                raise EOFError(f"the remote file ended at {position} of {size} bytes")
            position += len(block)
            yield block
            if position < segment_end and not getattr(remote, "_prefetching", True):
                return

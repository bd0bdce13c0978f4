"""SFTP carried by OpenSSH's own `ssh` client: its C transport moves and decrypts the bytes, paramiko's
SFTP client speaks the protocol over ssh's stdin/stdout (a socketpair), and sftp_transfer.py does the
rest exactly as on paramiko's transport (hash while writing, resume, kept mismatches).

Why (bench/bench_sftp.py, bench/README.md): paramiko's Python transport tops out near half of
OpenSSH's throughput; the SSH packet layer, not SFTP, is the cost. With `ssh -s <host> sftp`
underneath, the Python side only frames 252 KiB SFTP replies, and the pull runs at OpenSSH's speed
while the data still arrives in order, so it is hashed as it is written (OpenSSH's `sftp` client
writes replies at their offsets, possibly out of order, so its output could only be hashed after).

The host-key and credential policy is SshSession's, spelt as ssh options (ssh_config(5)):
- `-F none`: neither ~/.ssh/config nor /etc/ssh/ssh_config is read; every setting is on the argv;
- `StrictHostKeyChecking=yes` against the configured known_hosts only (`UserKnownHostsFile`, and
  `GlobalKnownHostsFile=/dev/null`), `UpdateHostKeys=no` so the pinned file is never rewritten;
  `accept_unknown_host_key` maps to `accept-new`, which, like SshSession, refuses a changed key;
- `BatchMode=yes` (never a prompt), `IdentitiesOnly=yes` and `IdentityAgent=none` (the configured
  key only, no agent), no forwarding of agent, X11 or ports, no LocalCommand;
- argv only, no shell anywhere: the remote path travels inside SSH_FXP_OPEN, never on a command
  line, and the `sftp` subsystem is named after `--`. A key or known_hosts path holding characters
  ssh would expand (`%` tokens, `${VAR}`) or that ends its quoting is refused, not escaped.

A key with a passphrase cannot be given to ssh in BatchMode without an agent, which this policy
excludes: such a key uses paramiko's transport (`sftp_client: auto` picks it; `openssh` refuses).
ssh reports a failed connection by exit status 255 and one line on stderr; `connection_error`
turns that line into the SessionError stage SshSession would name (resolve, tcp, auth).
"""

from __future__ import annotations

import logging
import re
import shutil
import socket
import struct
import subprocess
import tempfile
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import paramiko

from harness.target.windows.config import SshSettings
from harness.target.windows.session import SessionError
from harness.target.windows.ssh_session import PREFERRED_CIPHER, known_hosts_name

log = logging.getLogger(__name__)

SSH = "ssh"
EXIT_WAIT = 5.0
"""Seconds ssh gets to exit after its stdin closes, before it is killed."""
FXP_READ, FXP_STATUS, FXP_DATA = 5, 101, 103  # SFTP v3 packet types
FX_EOF = 1
STREAM_IDS = 0x4000_0000
"""Request ids of streamed reads: far above paramiko's own, which count up from 1."""
STREAM_BYTES_IN_FLIGHT = 16 << 20
"""Bytes of streamed reads requested ahead (64 requests of 252 KiB)."""
UNSAFE_PATH = re.compile(r'[%$"\x00-\x1f]')
"""Characters ssh expands in IdentityFile / UserKnownHostsFile (TOKENS, ${VAR}) or that end quoting."""

FAILURES: tuple[tuple[str, str, str], ...] = (
    # (stage, what ssh prints, what we say); the first match wins, so host keys come before auth
    ("resolve", "Could not resolve hostname", "cannot resolve {host}"),
    ("auth", "REMOTE HOST IDENTIFICATION HAS CHANGED",
     "host key for {name} does not match known_hosts {known_hosts}: the guest was reinstalled or "
     "someone is in between; refusing"),
    ("auth", "Host key verification failed",
     "host key for {name} is not in known_hosts {known_hosts}; add it (ssh-keyscan) or set "
     "accept_unknown_host_key"),
    ("auth", "Load key", "cannot load private key {key_file}"),
    ("auth", "Permission denied", "{user} with key {key_file} was refused"),
    ("tcp", "Connection refused", "cannot connect to port {port}: connection refused"),
    ("tcp", "timed out", "cannot connect to port {port}: timed out"),
    ("tcp", "No route to host", "cannot connect to port {port}: no route to host"),
    ("tcp", "Network is unreachable", "cannot connect to port {port}: network is unreachable"),
    ("tcp", "kex_exchange_identification", "the port {port} answered but no SSH server spoke"),
    ("tcp", "Connection closed", "the port {port} answered but no SSH server spoke"),
    ("transfer", "subsystem request failed", "the server on {host} offers no sftp subsystem"),
)  # fmt: skip


def openssh_available() -> bool:
    """Whether OpenSSH's client is installed here."""
    return shutil.which(SSH) is not None


def _path_option(path: Path, what: str) -> str:
    text = str(path)
    if UNSAFE_PATH.search(text):
        raise ValueError(f"{what} {text!r} holds characters OpenSSH's ssh would expand (%, $) or misquote")
    return text


@dataclass(frozen=True)
class OpenSshEndpoint:
    """Where and as whom ssh connects: SshSession's settings, without the passphrase."""

    host: str
    port: int
    user: str
    key_file: Path
    known_hosts: Path
    accept_unknown_host_key: bool = False
    connect_timeout: float = 10.0
    keepalive: float = 15.0

    def argv(self) -> list[str]:
        """The whole ssh command line (see the module docstring for each option)."""
        strict = "accept-new" if self.accept_unknown_host_key else "yes"
        known_hosts = _path_option(self.known_hosts, "known_hosts")
        options = {
            "BatchMode": "yes",
            "StrictHostKeyChecking": strict,
            "UserKnownHostsFile": f'"{known_hosts}"',  # ssh splits unquoted values at spaces
            "GlobalKnownHostsFile": "/dev/null",
            "UpdateHostKeys": "no",
            "CheckHostIP": "no",
            "IdentitiesOnly": "yes",
            "IdentityAgent": "none",
            "ForwardAgent": "no",
            "ForwardX11": "no",
            "ClearAllForwardings": "yes",
            "PermitLocalCommand": "no",
            "ConnectTimeout": str(max(1, round(self.connect_timeout))),
            "ServerAliveInterval": str(max(1, round(self.keepalive))),
            "ServerAliveCountMax": "3",
            "Ciphers": f"^{PREFERRED_CIPHER}",  # first choice, OpenSSH's defaults after it
            "LogLevel": "ERROR",
        }
        argv = [SSH, "-F", "none"]
        for name, value in options.items():
            argv += ["-o", f"{name}={value}"]
        key = _path_option(self.key_file, "key_file")
        return [*argv, "-i", key, "-p", str(self.port), "-l", self.user, "-s", "--", self.host, "sftp"]

    def connection_error(self, stderr: str, status: int | None) -> SessionError:
        """ssh's complaint as the SessionError SshSession raises for the same failure."""
        values = {
            "host": self.host,
            "port": self.port,
            "name": known_hosts_name(self.host, self.port),
            "known_hosts": self.known_hosts,
            "key_file": self.key_file,
            "user": self.user,
        }
        said = " ".join(line.strip() for line in stderr.splitlines() if line.strip())[-400:]
        for stage, marker, message in FAILURES:
            if marker in stderr:
                return SessionError(stage, self.host, f"{message.format(**values)} (ssh: {said})")
        why = f"ssh exited with status {status}" if status is not None else "ssh closed the connection"
        return SessionError(
            "tcp", self.host, f"{why} before SFTP started (ssh: {said or 'nothing on stderr'})"
        )


def endpoint_for(host: str, settings: SshSettings) -> OpenSshEndpoint:
    """The endpoint a target config's `ssh` section describes (known_hosts defaults as SshSession's)."""
    return OpenSshEndpoint(
        host,
        settings.port,
        settings.user,
        Path(settings.key_file).expanduser(),
        Path(settings.known_hosts or "~/.ssh/known_hosts").expanduser(),
        connect_timeout=settings.connect_timeout,
        keepalive=settings.keepalive,
    )


class _SocketEnd:
    """Our end of the socketpair as paramiko's SFTP layer wants a channel: send, recv, get_name.

    recv(n) returns all n bytes (short only at end of file): paramiko joins short reads by
    `bytes +=`, which for a 252 KiB reply arriving in 64 KiB pieces copies it many times over.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = bytearray(1 << 18)

    def get_name(self) -> str:
        return "openssh"

    def send(self, data: bytes) -> int:
        return self._sock.send(data)

    def send_all(self, data: bytes) -> None:
        self._sock.sendall(data)

    def recv_into_exact(self, view: memoryview) -> None:
        got = 0
        while got < len(view):
            k = self._sock.recv_into(view[got:])
            if not k:
                raise EOFError("ssh closed the connection")
            got += k

    def recv_exact(self, n: int) -> bytes:
        buffer = bytearray(n)
        self.recv_into_exact(memoryview(buffer))
        return bytes(buffer)

    def recv(self, n: int) -> memoryview:
        if n > len(self._buffer):
            self._buffer = bytearray(n)
        view = memoryview(self._buffer)[:n]
        got = 0
        while got < n:
            k = self._sock.recv_into(view[got:])
            if not k:
                break
            got += k
        return view[:got]  # paramiko copies it (`out += x`) before it asks for more

    def close(self) -> None:
        self._sock.close()


class NotStreamable(Exception):
    """The server answered a streamed read out of order or short: the caller goes on from
    `position` with paramiko's reads (which skip the answers still on their way)."""

    def __init__(self, position: int) -> None:
        super().__init__(f"streamed read stopped at {position}")
        self.position = position


class OpenSshSftpClient(paramiko.SFTPClient):
    """A paramiko SFTP client whose channel is an `ssh -s ... sftp` process; closing it ends ssh.

    Bulk reads bypass paramiko's read path (`stream_read`): its copies of each reply (joining,
    parsing, prefetch buffers) cost more CPU than ssh's decryption, and on a shared machine the
    busiest stage sets the pace. The loop is SFTP v3's own (draft-ietf-secsh-filexfer-02 §6.4,
    §7): READ requests kept in flight, each DATA reply received straight into one of `ring`
    buffers. Written by hand because no library reads SFTP without copying; anything it does not
    expect (a reply out of order, a short one) ends it cleanly, and paramiko finishes the file.
    """

    def __init__(self, end: _SocketEnd, process: subprocess.Popen[bytes], stderr: IO[bytes]) -> None:
        self._process, self._stderr, self._end = process, stderr, end
        self._next_stream_id = STREAM_IDS
        super().__init__(end)  # the SFTP version exchange: raises if ssh never got through

    def stream_read(
        self, handle: bytes, start: int, size: int, request: int, ring: int
    ) -> Iterator[memoryview]:
        """The file's bytes from `start` to `size`, in order, as views of `ring` rotating buffers
        (a view stays valid until `ring - 1` more have been yielded). EOFError if the file ends
        before `size`, OSError for an SFTP error status, NotStreamable (see there)."""
        buffers = [memoryview(bytearray(request)) for _ in range(ring)]
        pending: deque[tuple[int, int, int]] = deque()  # (id, offset, length), in the order sent
        offset, depth = start, max(1, STREAM_BYTES_IN_FLIGHT // request)
        turn = 0
        while offset < size or pending:
            while offset < size and len(pending) < depth:
                length = min(request, size - offset)
                pending.append(self._send_read(handle, offset, length))
                offset += length
            want, at, length = pending.popleft()
            kind, number, body = self._read_reply_header()
            if number != want or kind not in (FXP_DATA, FXP_STATUS):
                self._skip(body)
                raise NotStreamable(at)
            if kind == FXP_STATUS:
                raise self._status_error(body, at)
            got = self._read_data(buffers[turn], body, length)
            yield got
            turn = (turn + 1) % ring
            if len(got) < length:
                raise NotStreamable(at + len(got))

    def _send_read(self, handle: bytes, offset: int, length: int) -> tuple[int, int, int]:
        number, self._next_stream_id = self._next_stream_id, self._next_stream_id + 1
        body = (
            struct.pack(">BII", FXP_READ, number, len(handle)) + handle + struct.pack(">QI", offset, length)
        )
        self._end.send_all(struct.pack(">I", len(body)) + body)
        return number, offset, length

    def _read_reply_header(self) -> tuple[int, int, int]:
        """(type, request id, bytes of the reply still to read)."""
        length, kind, number = struct.unpack(">IBI", self._end.recv_exact(9))
        if length < 5:
            raise paramiko.SSHException(f"SFTP reply of {length} bytes is too short")
        return kind, number, length - 5

    def _read_data(self, buffer: memoryview, body: int, length: int) -> memoryview:
        (count,) = struct.unpack(">I", self._end.recv_exact(4))
        if count > length or count != body - 4:
            raise paramiko.SSHException(f"SFTP DATA reply of {count} bytes to a read of {length}")
        self._end.recv_into_exact(buffer[:count])
        return buffer[:count]

    def _status_error(self, body: int, at: int) -> Exception:
        raw = self._end.recv_exact(body)
        (code,) = struct.unpack_from(">I", raw)
        if code == FX_EOF:
            return EOFError(f"the remote file ended at {at}")
        return OSError(f"SFTP status {code} reading at {at}")

    def _skip(self, body: int) -> None:
        while body:
            body -= len(self._end.recv_exact(min(body, 1 << 16)))

    def stderr_text(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def close(self) -> None:
        try:
            super().close()
        finally:
            _end_process(self._process)
            said = self.stderr_text().strip()
            if said:
                log.info("ssh: %s", said)
            self._stderr.close()


def _end_process(process: subprocess.Popen[bytes]) -> int | None:
    try:
        return process.wait(EXIT_WAIT)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


class OpenSshSftp:
    """An SftpProvider (sftp_transfer.py): each `open_sftp()` starts one ssh for one transfer, so a
    call after a lost connection is a fresh connection, as SshSession's reconnect is."""

    def __init__(self, endpoint: OpenSshEndpoint) -> None:
        self.endpoint = endpoint
        self.host = endpoint.host

    def __repr__(self) -> str:
        e = self.endpoint
        return f"OpenSshSftp({e.user}@{e.host}:{e.port}, key={e.key_file})"

    def open_sftp(self) -> paramiko.SFTPClient:
        mine, theirs = socket.socketpair()
        stderr = tempfile.TemporaryFile()  # noqa: SIM115 - the client closes it with ssh
        try:
            process = subprocess.Popen(
                self.endpoint.argv(), stdin=theirs, stdout=theirs, stderr=stderr, start_new_session=True
            )
        except OSError as error:
            mine.close()
            stderr.close()
            raise SessionError("tcp", self.host, f"cannot start OpenSSH's ssh ({error})") from None
        finally:
            theirs.close()
        # ssh gives up on a silent server after keepalive x 3; this only guards against ssh itself
        mine.settimeout(self.endpoint.connect_timeout + 4 * max(self.endpoint.keepalive, 1.0))
        try:
            return OpenSshSftpClient(_SocketEnd(mine), process, stderr)
        except (EOFError, OSError, paramiko.SSHException):
            mine.close()
            status = _end_process(process)
            stderr.seek(0)
            said = stderr.read().decode(errors="replace")
            stderr.close()
            raise self.endpoint.connection_error(said, status) from None

    def close(self) -> None:
        """Nothing stays open between transfers."""

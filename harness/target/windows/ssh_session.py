"""An SSH connection to the guest (OpenSSH for Windows) that runs commands with a deadline.

Built on a bare paramiko `Transport` rather than `SSHClient` so that each connection stage is ours to
name: resolve (getaddrinfo), tcp (connect, then the SSH handshake), auth (the server's host key
against known_hosts, then our public key). SSH has no TLS; its key exchange takes that slot, but a
failed handshake is reported as "tcp" ("the port answered but no SSH server spoke") so nobody goes
looking for a certificate. A host key that is unknown or does not match known_hosts is an "auth"
failure, with its own message, because it is the server failing to prove who it is.

Host-key checking is on by default (the RejectPolicy of OpenSSH's `StrictHostKeyChecking yes`);
`accept_unknown_host_key=True` trusts a first-seen key and records it, but a *changed* key is always
refused. The passphrase is a `pydantic.SecretStr`: it never reaches a repr, a log line or an error.

Command lines: OpenSSH for Windows hands the command string to cmd.exe, so argv is joined with
Windows quoting (`subprocess.list2cmdline`) after refusing cmd.exe metacharacters, which that
quoting does not neutralise. argv comes from the harness's own constants; data travels on stdin.
`posix=True` joins with `shlex.join` instead, for Linux servers (the tests' loopback sshd, libvirt
hosts).
"""

from __future__ import annotations

import contextlib
import logging
import select
import shlex
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import paramiko
from paramiko.common import cMSG_CHANNEL_REQUEST
from paramiko.message import Message
from pydantic import SecretStr

from harness.target.windows.name_resolution import ResolutionTimeout, getaddrinfo_within
from harness.target.windows.session import CommandResult, CommandTimeout, OutputCallback, SessionError

log = logging.getLogger(__name__)

PREFERRED_CIPHER = "aes128-gcm@openssh.com"
"""Fastest cipher paramiko speaks (AES-NI, no separate MAC); used when the installed paramiko has it."""

RECV_SIZE = 1 << 20
STDIN_CHUNK = 1 << 15
IDLE_POLL = 0.1
CMD_EXE_SPECIALS = frozenset('"%^&|<>!\r\n\0')
"""Characters cmd.exe acts on that `list2cmdline` quoting does not protect."""


@dataclass(frozen=True)
class Backoff:
    """How hard to try reconnecting: `max_attempts` connects, the pause doubling up to `max_delay`."""

    max_attempts: int = 8
    initial_delay: float = 1.0
    max_delay: float = 30.0


RETRYABLE_STAGES = frozenset({"resolve", "tcp"})
"""A rebooting guest drops off the network and comes back; a bad key or a changed host key does not
fix itself, so those fail at once."""


def windows_command_line(argv: Sequence[str]) -> str:
    """argv as one cmd.exe command line; refuses what cmd.exe would interpret (%VAR%, &, |, quotes)."""
    for arg in argv:
        bad = sorted(set(arg) & CMD_EXE_SPECIALS)
        if bad:
            raise ValueError(f"argument {arg!r} holds cmd.exe metacharacters {bad}: pass data on stdin")
    return subprocess.list2cmdline(argv)


def posix_command_line(argv: Sequence[str]) -> str:
    """argv as one POSIX shell command line, each argument quoted."""
    return shlex.join(argv)


def known_hosts_name(host: str, port: int) -> str:
    """The name known_hosts files use: `host`, or `[host]:port` off port 22 (as OpenSSH writes it)."""
    return host if port == 22 else f"[{host}]:{port}"


class SshSession:
    """A RemoteSession over SSH with public-key auth, strict host-key checking and reconnects.

    Not thread-safe: one caller at a time, like the guest's single driver-control channel.
    """

    def __init__(
        self,
        host: str,
        port: int = 22,
        user: str = "",
        key_file: Path | str = "",
        *,
        passphrase: SecretStr | str | None = None,
        known_hosts: Path | None = None,
        accept_unknown_host_key: bool = False,
        connect_timeout: float = 10.0,
        keepalive: float = 15.0,
        backoff: Backoff = Backoff(),
        posix: bool = False,
    ) -> None:
        if not user or not key_file:
            raise ValueError("SshSession needs a user and a private key file")
        self.host = host
        self.port = port
        self.user = user
        self.key_file = Path(key_file).expanduser()
        self._passphrase = SecretStr(passphrase) if isinstance(passphrase, str) else passphrase
        self.known_hosts = Path(known_hosts or "~/.ssh/known_hosts").expanduser()
        self.accept_unknown_host_key = accept_unknown_host_key
        self.connect_timeout = connect_timeout
        self.keepalive = keepalive
        self.backoff = backoff
        self.posix = posix
        self._transport: paramiko.Transport | None = None
        self._was_connected = False

    def __repr__(self) -> str:
        secret = "yes" if self._passphrase else "no"
        return f"SshSession({self.user}@{self.host}:{self.port}, key={self.key_file}, passphrase={secret})"

    @property
    def connected(self) -> bool:
        return self._transport is not None and self._transport.is_active()

    def command_line(self, argv: Sequence[str]) -> str:
        return posix_command_line(argv) if self.posix else windows_command_line(argv)

    # -- connecting -------------------------------------------------------------------------------

    def connect(self) -> None:
        """Open a fresh authenticated connection, replacing any old one."""
        self.close()
        sock = self._open_socket()
        transport = paramiko.Transport(sock)  # default window: bigger ones make paramiko slower
        try:
            self._handshake(transport)
            self._verify_host_key(transport)
            self._authenticate(transport)
        except BaseException:
            transport.close()
            raise
        if self.keepalive > 0:
            transport.set_keepalive(int(max(1, self.keepalive)))
        self._transport = transport
        self._was_connected = True
        log.info("ssh: connected to %s@%s:%d", self.user, self.host, self.port)

    def _open_socket(self) -> socket.socket:
        try:
            addresses = getaddrinfo_within(self.host, self.port, self.connect_timeout)
        except socket.gaierror as error:
            raise SessionError(
                "resolve", self.host, f"cannot resolve {self.host}: {error.strerror}"
            ) from None
        except ResolutionTimeout as error:
            raise SessionError("resolve", self.host, f"cannot resolve {self.host}: {error}") from None
        last: OSError | None = None
        for family, kind, proto, _name, address in addresses:
            sock = socket.socket(family, kind, proto)
            sock.settimeout(self.connect_timeout)
            try:
                sock.connect(address)
                return sock
            except OSError as error:
                sock.close()
                last = error
        reason = "timed out" if isinstance(last, TimeoutError) else (last.strerror if last else "no address")
        raise SessionError("tcp", self.host, f"cannot connect to port {self.port}: {reason}") from None

    def _handshake(self, transport: paramiko.Transport) -> None:
        transport.banner_timeout = transport.handshake_timeout = self.connect_timeout
        options = transport.get_security_options()
        if PREFERRED_CIPHER in options.ciphers:
            options.ciphers = (PREFERRED_CIPHER, *(c for c in options.ciphers if c != PREFERRED_CIPHER))
        options.key_types = self._host_key_types_known_first(options.key_types)
        done = threading.Event()
        transport.start_client(event=done)
        if not done.wait(self.connect_timeout) or not transport.is_active():
            cause = transport.get_exception()
            why = f"{type(cause).__name__}: {cause}" if cause else f"no answer in {self.connect_timeout:g}s"
            raise SessionError("tcp", self.host, f"SSH handshake on port {self.port} failed ({why})")

    def _load_known_hosts(self) -> paramiko.HostKeys:
        return paramiko.HostKeys(str(self.known_hosts)) if self.known_hosts.exists() else paramiko.HostKeys()

    def _host_key_types_known_first(self, offered: Sequence[str]) -> tuple[str, ...]:
        """Ask for a key type known_hosts already holds, as OpenSSH does, so a known server is not
        mistaken for a changed one merely because it has several host keys."""
        known = self._load_known_hosts().lookup(known_hosts_name(self.host, self.port)) or {}
        names = set(known.keys())
        if "ssh-rsa" in names:
            names |= {"rsa-sha2-512", "rsa-sha2-256"}
        return (*(t for t in offered if t in names), *(t for t in offered if t not in names))

    def _verify_host_key(self, transport: paramiko.Transport) -> None:
        key = transport.get_remote_server_key()
        name = known_hosts_name(self.host, self.port)
        known_hosts = self._load_known_hosts()
        known = known_hosts.lookup(name)
        if known_hosts.check(name, key):
            return
        if known:
            raise SessionError(
                "auth",
                self.host,
                f"host key for {name} ({key.get_name()} {key.fingerprint}) does not match known_hosts "
                f"{self.known_hosts}: the guest was reinstalled or someone is in between; refusing",
            )
        if not self.accept_unknown_host_key:
            raise SessionError(
                "auth",
                self.host,
                f"host key for {name} ({key.get_name()} {key.fingerprint}) is not in known_hosts "
                f"{self.known_hosts}; add it (ssh-keyscan) or set accept_unknown_host_key",
            )
        known_hosts.add(name, key.get_name(), key)
        self.known_hosts.parent.mkdir(parents=True, exist_ok=True)
        known_hosts.save(str(self.known_hosts))
        log.warning(
            "ssh: trusted new host key for %s (%s), saved to %s", name, key.fingerprint, self.known_hosts
        )

    def _load_private_key(self) -> paramiko.PKey:
        secret = self._passphrase.get_secret_value().encode() if self._passphrase else None
        try:
            return paramiko.PKey.from_path(self.key_file, secret)
        except OSError as error:
            reason = error.strerror or type(error).__name__
        except (paramiko.SSHException, ValueError, TypeError):
            # Built here, not from the library's text, so nothing about the secret can leak.
            hint = "the passphrase is wrong" if secret else "it needs a passphrase and none was given"
            reason = f"not a usable private key, or {hint}"
        raise SessionError("auth", self.host, f"cannot load private key {self.key_file}: {reason}")

    def _authenticate(self, transport: paramiko.Transport) -> None:
        key = self._load_private_key()
        transport.auth_timeout = max(self.connect_timeout, 1.0)
        try:
            transport.auth_publickey(self.user, key)
        except paramiko.SSHException as error:
            reason = type(error).__name__
            raise SessionError(
                "auth", self.host, f"{self.user} with key {self.key_file} was refused ({reason})"
            ) from None
        if not transport.is_authenticated():
            raise SessionError("auth", self.host, f"{self.user} needs more than a public key to log in")

    def reconnect(
        self,
        max_attempts: int | None = None,
        initial_delay: float | None = None,
        max_delay: float | None = None,
        *,
        deadline: float | None = None,
    ) -> int:
        """Connect again, pausing with exponential backoff between tries; returns the attempts used.

        Only network stages are retried (RETRYABLE_STAGES); the last error is raised when every
        attempt failed, or when the next pause would end past `deadline` (time.monotonic(), the
        caller's own deadline). Bounded: at most `max_attempts` × (connect_timeout + max_delay).
        """
        attempts = max_attempts or self.backoff.max_attempts
        delay = self.backoff.initial_delay if initial_delay is None else initial_delay
        ceiling = self.backoff.max_delay if max_delay is None else max_delay
        for attempt in range(1, attempts + 1):
            try:
                self.connect()
                return attempt
            except SessionError as error:
                out_of_time = deadline is not None and time.monotonic() + delay >= deadline
                if error.stage not in RETRYABLE_STAGES or attempt == attempts or out_of_time:
                    raise
                log.info(
                    "ssh: reconnect attempt %d/%d failed (%s); next in %.1fs", attempt, attempts, error, delay
                )
            time.sleep(delay)
            delay = min(delay * 2, ceiling)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def transport(self, deadline: float | None = None) -> paramiko.Transport:
        """The live transport, reconnecting with backoff (within `deadline`) when the old one has died
        (a guest reboot).

        A session that was never connected connects once: nothing says the machine is on its way
        back, and a wrong or unresolvable host must fail at its connect_timeout, not after every
        pause of the backoff (issue 10: 91 s, the sum of the default pauses, for a hypervisor host
        that did not resolve). Waiting for a booting guest is the caller's (guest.wait_for_new_boot).
        """
        if not self.connected:
            if not self._was_connected:
                self.connect()
            else:
                if self._transport is not None:
                    log.info("ssh: connection to %s is gone; reconnecting", self.host)
                self.reconnect(deadline=deadline)
        assert self._transport is not None
        return self._transport

    def open_sftp(self) -> paramiko.SFTPClient:
        """An SFTP client on this connection (the caller closes it)."""
        try:
            return paramiko.SFTPClient.from_transport(self.transport())
        except (paramiko.SSHException, EOFError, OSError) as error:
            raise SessionError("transfer", self.host, f"cannot start SFTP ({type(error).__name__})") from None

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def __enter__(self) -> SshSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- running ----------------------------------------------------------------------------------

    def _open_channel(self, deadline: float | None = None) -> paramiko.Channel:
        """A session channel. Opening one starts nothing remotely, so a failure here (the transport
        died a moment ago and we had not noticed) is safe to retry once on a fresh connection."""
        for attempt in (1, 2):
            try:
                return self.transport(deadline).open_session(timeout=self.connect_timeout)
            except (paramiko.SSHException, EOFError, OSError) as error:
                if attempt == 2:
                    raise SessionError("shell", self.host, f"cannot open a channel ({error})") from None
                self.close()
        raise AssertionError("unreachable")  # pragma: no cover

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes = b"",
        timeout: float,
        on_output: OutputCallback | None = None,
    ) -> CommandResult:
        """Run argv on the guest, feeding `stdin`; kill it and raise CommandTimeout after `timeout` s.

        A dead connection is re-established *before* the command starts. Once the command has been
        sent it is never re-sent: the guest may have run it (an IOCTL, a bugcheck), so a connection
        lost mid-command raises SessionError("command") and the caller decides.
        """
        if not argv:
            raise ValueError("run() needs a program to run: argv is empty")
        command = self.command_line(argv)
        deadline = time.monotonic() + timeout
        channel = self._open_channel(deadline)
        try:
            try:
                channel.exec_command(command)
            except (paramiko.SSHException, EOFError, OSError) as error:
                raise SessionError("shell", self.host, f"cannot start {argv[0]} ({error})") from None
            log.debug("ssh: %s started on %s (%d args)", argv[0], self.host, len(argv) - 1)
            return _ChannelPump(channel, self.host, argv[0], on_output).run(stdin, deadline, timeout)
        finally:
            channel.close()


class _ChannelPump:
    """Moves stdin in and stdout/stderr out of one channel until the command ends or time runs out.

    Both output streams share the channel's window, which paramiko only re-opens as we read: reading
    one stream to its end before the other would stall the command once the window fills. So every
    turn drains both, and waits on the channel's pipe (set by either stream) when there is nothing.
    """

    def __init__(
        self, channel: paramiko.Channel, host: str, name: str, on_output: OutputCallback | None
    ) -> None:
        self.channel, self.host, self.name, self.on_output = channel, host, name, on_output
        self.stdout, self.stderr = bytearray(), bytearray()

    def _drain(self) -> bool:
        got = False
        while self.channel.recv_ready():
            self._keep("stdout", self.stdout, self.channel.recv(RECV_SIZE))
            got = True
        while self.channel.recv_stderr_ready():
            self._keep("stderr", self.stderr, self.channel.recv_stderr(RECV_SIZE))
            got = True
        return got

    def _keep(self, stream: str, buffer: bytearray, chunk: bytes) -> None:
        buffer += chunk
        if self.on_output and chunk:
            self.on_output(stream, chunk)

    def _feed(self, pending: memoryview) -> memoryview:
        while pending and self.channel.send_ready():
            pending = pending[self.channel.send(pending[:STDIN_CHUNK]) :]
        if not pending:
            self.channel.shutdown_write()  # the command sees end of input
        return pending

    def _finished(self) -> bool:
        return self.channel.exit_status_ready() and (self.channel.eof_received or self.channel.closed)

    def run(self, stdin: bytes, deadline: float, timeout: float) -> CommandResult:
        pending = self._feed(memoryview(stdin))
        while True:
            got = self._drain()
            if pending:
                pending = self._feed(pending)
            if self._finished() and not self._drain():
                return self._result()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._stop()
                raise CommandTimeout(
                    self.host, f"{self.name} did not finish within {timeout:g}s; stopped", self._partial()
                )
            if not got:
                self._wait(min(remaining, IDLE_POLL / 5 if pending else IDLE_POLL))

    def _wait(self, seconds: float) -> None:
        if self.channel.eof_received or self.channel.closed:
            # The pipe stays readable after EOF; only the exit status is still to come.
            self.channel.status_event.wait(seconds)
        else:
            select.select([self.channel], [], [], seconds)

    def _result(self) -> CommandResult:
        status = self.channel.recv_exit_status()
        transport = self.channel.get_transport()
        # A command that ends, even by a signal, is followed by sshd's EOF; a dropped connection is not
        # (paramiko closes our channel before it marks the transport dead, so check both).
        if status == -1 and not (self.channel.eof_received and transport and transport.is_active()):
            raise SessionError(
                "command",
                self.host,
                f"connection lost while {self.name} was running; it may have run, so it is not retried",
            )
        return CommandResult(status, bytes(self.stdout), bytes(self.stderr))

    def _partial(self) -> CommandResult:
        self._drain()
        return CommandResult(-1, bytes(self.stdout), bytes(self.stderr))

    def _stop(self) -> None:
        """Ask sshd to SIGKILL the command (RFC 4254 §6.9; OpenSSH signals the whole session process
        group), then close the channel. Closing alone leaves a silent command running on Linux.
        paramiko has no public call for the "signal" request, hence the transport's message sender."""
        transport = self.channel.get_transport()
        send = getattr(transport, "_send_user_message", None)
        if send is not None and transport is not None and transport.is_active() and not self.channel.closed:
            request = Message()
            request.add_byte(cMSG_CHANNEL_REQUEST)
            request.add_int(self.channel.remote_chanid)
            request.add_string("signal")
            request.add_boolean(False)
            request.add_string("KILL")
            with contextlib.suppress(EOFError, OSError, paramiko.SSHException):
                send(request)  # the connection may have died meanwhile; closing is all that is left
        self.channel.close()

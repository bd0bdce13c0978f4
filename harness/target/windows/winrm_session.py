"""Commands on a Windows guest over WinRM, with a wall-clock deadline pywinrm alone does not give.

pywinrm's `Protocol` builds and sends the WS-Management messages (Create shell, Command, Send, Signal,
Delete); the receive loop is ours. pywinrm's `get_command_output` retries a timed-out Receive forever
and hands back output only at the end; here each Receive carries an OperationTimeout no longer than
the time left, output reaches `on_output` as each response arrives, and when the deadline passes the
command is signalled to terminate, its shell deleted, and CommandTimeout raised with what it wrote.
A guest that stops answering altogether can hold a call past its deadline by at most HTTP_READ_GRACE
per request (the HTTP read timeout); the Signal and Delete that follow are bounded the same way.

Every command gets a shell of its own (two extra round trips): a shell never outlives a reboot of the
guest, so no run can trip over a stale one. Commands start with WINRS_SKIP_CMD_SHELL, so no cmd.exe
parses the command line; arguments are quoted by the C runtime's rules (`subprocess.list2cmdline`)
and data travels on stdin, in pieces under the guest's MaxEnvelopeSize.

TLS: validation is on by default against the system's CA store. `ca_bundle` replaces it with the
given CAs; `pinned_thumbprint` replaces CA validation by an exact match of the server certificate's
SHA-256 or SHA-1 thumbprint (the usual answer for a test VM's self-signed WinRM certificate). The pin
is enforced by urllib3 during the handshake (`assert_fingerprint` on every connection pool of a
requests adapter mounted for https://), before any credential is sent. `insecure_skip_verify` turns
validation off (the target config demands a second, loudly named switch for it) and leaves urllib3's
InsecureRequestWarning on.

Failures become SessionError with a stage (session.py). Their messages are built here from the host,
port, user name and fault fields only; the transport's own exception texts (URLs, headers, proxy
addresses) never reach them, and the password lives in a SecretStr that prints as asterisks.
"""

from __future__ import annotations

import base64
import logging
import math
import socket
import ssl
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import requests
import urllib3.exceptions
import xmltodict
from pydantic import SecretStr
from requests.adapters import HTTPAdapter
from winrm.exceptions import (
    InvalidCredentialsError,
    WinRMError,
    WinRMOperationTimeoutError,
    WinRMTransportError,
    WSManFaultError,
)
from winrm.protocol import Protocol

from harness.target.windows.session import CommandResult, CommandTimeout, OutputCallback, SessionError

log = logging.getLogger(__name__)

WinRMTransport = Literal["ntlm", "kerberos", "credssp", "certificate", "basic"]
TRANSPORTS: tuple[str, ...] = ("ntlm", "kerberos", "credssp", "certificate", "basic")

SHELL_NAMESPACE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
SHELL_RESOURCE_URI = f"{SHELL_NAMESPACE}/cmd"
RECEIVE_ACTION = f"{SHELL_NAMESPACE}/Receive"
COMMAND_DONE_STATE = f"{SHELL_NAMESPACE}/CommandState/Done"

STDIN_CHUNK_BYTES = 64 * 1024
"""Raw stdin per Send: base64 makes ~88 KiB, well under Windows' default 150 KiB MaxEnvelopeSize."""
MIN_RECEIVE_WAIT = 0.5
"""Shortest OperationTimeout sent: close to the deadline, a Receive still waits this long."""
HTTP_READ_GRACE = 5.0
"""An HTTP read waits this much longer than the operation it carries (pywinrm requires read > op)."""
UTF8_CODEPAGE = 65001
"""Shells run in UTF-8 so non-ASCII output (paths, error text) arrives undamaged."""


def normalize_thumbprint(thumbprint: str) -> str:
    """Lower-case hex without separators; a SHA-1 (40 digits, as certlm shows it) or SHA-256 (64)."""
    digits = thumbprint.replace(":", "").replace(" ", "").strip().lower()
    if len(digits) not in (40, 64) or any(c not in "0123456789abcdef" for c in digits):
        raise ValueError("pinned_thumbprint must be a SHA-1 (40) or SHA-256 (64) hex digest")
    return digits


def system_trust_store() -> str | bool:
    """The operating system's CA bundle (or directory), so the default trust is the machine's own.

    Falls back to True (requests' bundled Mozilla CAs) on a system that has neither.
    """
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.capath):
        if candidate and Path(candidate).exists():
            return candidate
    return True


class PinnedCertificateAdapter(HTTPAdapter):
    """An https:// adapter that accepts exactly one server certificate, identified by its thumbprint.

    urllib3 hashes the certificate the server presents and aborts the handshake on a mismatch
    (requests raises SSLError). CA validation and the host name check are off for this adapter: the
    pin names the certificate itself, which is stronger than either.
    """

    def __init__(self, thumbprint: str, **kwargs: Any) -> None:
        self._thumbprint = normalize_thumbprint(thumbprint)  # set first: HTTPAdapter.__init__ builds pools
        super().__init__(**kwargs)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        pool_kwargs["assert_fingerprint"] = self._thumbprint
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        proxy_kwargs["assert_fingerprint"] = self._thumbprint
        return super().proxy_manager_for(proxy, **proxy_kwargs)


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error and everything it wraps: requests wraps urllib3 errors, which wrap socket errors."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        pending.extend(item for item in wrapped if isinstance(item, BaseException))


class _OutputCollector:
    """Keeps everything a command wrote and passes each piece on as it arrives."""

    def __init__(self, on_output: OutputCallback | None) -> None:
        self._on_output = on_output
        self.stdout = bytearray()
        self.stderr = bytearray()

    def add(self, stream: str, data: bytes) -> None:
        if not data:
            return
        (self.stdout if stream == "stdout" else self.stderr).extend(data)
        if self._on_output is not None:
            try:
                self._on_output(stream, data)
            except Exception as error:
                raise _CallbackFailed(error) from error

    def result(self, exit_code: int) -> CommandResult:
        return CommandResult(exit_code, bytes(self.stdout), bytes(self.stderr))


class WinRMSession:
    """A RemoteSession over WinRM (WS-Management Windows Remote Shell) to one Windows guest.

    One command at a time: `run` holds a lock, because per-request HTTP timeouts live on the shared
    transport. Only `basic` can be exercised without a Windows domain; `ntlm` needs requests_ntlm
    (installed with pywinrm), `kerberos` and `credssp` need pywinrm's extras of the same names.
    """

    def __init__(
        self,
        host: str,
        *,
        username: str | None = None,
        password: SecretStr | str | None = None,
        port: int = 5986,
        scheme: Literal["https", "http"] = "https",
        transport: WinRMTransport = "ntlm",
        ca_bundle: Path | None = None,
        pinned_thumbprint: str | None = None,
        client_cert: Path | None = None,
        client_key: Path | None = None,
        operation_timeout: float = 20.0,
        connect_timeout: float = 10.0,
        allow_insecure_http: bool = False,
        insecure_skip_verify: bool = False,
        proxy: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.scheme = scheme
        self.username = username
        self.transport = transport
        self._password = password if isinstance(password, SecretStr) else SecretStr(password or "")
        self._pin = normalize_thumbprint(pinned_thumbprint) if pinned_thumbprint else None
        self._skip_verify = insecure_skip_verify
        self._operation_timeout = float(operation_timeout)
        self._connect_timeout = float(connect_timeout)
        self._check_settings(ca_bundle, client_cert, client_key, allow_insecure_http)
        self._lock = threading.Lock()
        self._protocol = self._build_protocol(ca_bundle, client_cert, client_key, proxy)

    def _check_settings(
        self,
        ca_bundle: Path | None,
        client_cert: Path | None,
        client_key: Path | None,
        allow_insecure_http: bool,
    ) -> None:
        """Refuse contradictory or unsafe settings before anything touches the network."""
        if self.transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, not {self.transport!r}")
        if self.scheme not in ("https", "http"):
            raise ValueError(f"scheme must be https or http, not {self.scheme!r}")
        if self._operation_timeout <= 0 or self._connect_timeout <= 0:
            raise ValueError("operation_timeout and connect_timeout must be positive")
        if self.scheme == "http":
            if self.transport == "basic" and not allow_insecure_http:
                raise ValueError(
                    "basic authentication over http sends the password in clear text;"
                    " use https or pass allow_insecure_http=True"
                )
            if self.transport == "certificate":
                raise ValueError("certificate authentication needs https")
            if self._pin or ca_bundle or self._skip_verify:
                raise ValueError("TLS settings apply to https only")
        if sum((self._pin is not None, ca_bundle is not None, self._skip_verify)) > 1:
            raise ValueError("give at most one of pinned_thumbprint, ca_bundle and insecure_skip_verify")
        if self.transport != "certificate" and not self.username:
            raise ValueError(f"transport {self.transport} needs a username")
        if self.transport == "certificate":
            for path in (client_cert, client_key):
                if path is None or not Path(path).is_file():
                    raise ValueError("certificate authentication needs client_cert and client_key files")

    def _build_protocol(
        self, ca_bundle: Path | None, client_cert: Path | None, client_key: Path | None, proxy: str | None
    ) -> Protocol:
        operation_seconds = max(1, math.ceil(self._operation_timeout))
        return Protocol(
            self.endpoint,
            transport=self.transport,
            username=self.username,
            password=self._password.get_secret_value(),
            ca_trust_path=str(ca_bundle) if ca_bundle else system_trust_store(),  # never the env's
            cert_pem=str(client_cert) if client_cert else None,
            cert_key_pem=str(client_key) if client_key else None,
            server_cert_validation="validate",
            operation_timeout_sec=operation_seconds,
            read_timeout_sec=operation_seconds + math.ceil(HTTP_READ_GRACE),
            proxy=proxy,  # None: no proxy, and none read from the environment either
        )

    @property
    def endpoint(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host  # an IPv6 literal needs brackets
        return f"{self.scheme}://{host}:{self.port}/wsman"

    def __repr__(self) -> str:
        return (
            f"WinRMSession(host={self.host!r}, port={self.port}, scheme={self.scheme!r},"
            f" username={self.username!r}, transport={self.transport!r})"
        )

    # -- the RemoteSession contract -------------------------------------------------------------------

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes = b"",
        timeout: float,
        on_output: OutputCallback | None = None,
    ) -> CommandResult:
        """Run argv[0] with argv[1:] in a fresh shell; stop it after `timeout` seconds (CommandTimeout)."""
        if not argv:
            raise ValueError("argv must name a program")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout}")
        deadline = time.monotonic() + timeout
        with self._lock:
            shell_id = self._open_shell()
            try:
                return self._run_in_shell(shell_id, argv, stdin, deadline, timeout, on_output)
            finally:
                self._delete_shell(shell_id)

    def close(self) -> None:
        """Drop pooled connections; safe to call twice."""
        self._protocol.transport.close_session()

    def __enter__(self) -> WinRMSession:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- steps of one command -------------------------------------------------------------------------

    def _open_shell(self) -> str:
        self._set_http_timeout(self._operation_timeout + HTTP_READ_GRACE)
        try:
            self._ensure_http_session()
            shell_id = self._protocol.open_shell(codepage=UTF8_CODEPAGE, noprofile=True)
        except Exception as error:
            # Start the next attempt from a fresh requests session: a half-built one (e.g. NTLM
            # encryption set-up refused) must not be reused, and the pin is mounted only on a new one.
            self._protocol.transport.close_session()
            raise self._connect_failure(error) from None
        log.debug("%s: opened shell %s", self.host, shell_id)
        return shell_id

    def _run_in_shell(
        self,
        shell_id: str,
        argv: Sequence[str],
        stdin: bytes,
        deadline: float,
        timeout: float,
        on_output: OutputCallback | None,
    ) -> CommandResult:
        output = _OutputCollector(on_output)
        program = argv[0]
        try:
            command_id = self._protocol.run_command(
                shell_id,
                subprocess.list2cmdline([program]),
                [subprocess.list2cmdline(argv[1:])] if len(argv) > 1 else [],
                console_mode_stdin=False,
                skip_cmd_shell=True,
            )
        except Exception as error:
            raise self._command_failure(error, f"starting {program}") from None
        try:
            self._send_stdin(shell_id, command_id, stdin)
            exit_code = self._receive_until_done(shell_id, command_id, deadline, output)
        except _DeadlinePassed:
            self._signal_terminate(shell_id, command_id)
            raise CommandTimeout(
                self.host,
                f"{program} did not finish within {timeout:g} s; it was signalled to terminate",
                output.result(-1),
            ) from None
        except _CallbackFailed as failed:
            raise failed.original from None
        except Exception as error:
            raise self._command_failure(error, f"running {program}") from None
        log.debug("%s: %s exited with %d", self.host, program, exit_code)
        return output.result(exit_code)

    def _send_stdin(self, shell_id: str, command_id: str, stdin: bytes) -> None:
        """Feed stdin in envelope-sized pieces, always closing it so programs reading it see EOF."""
        pieces = [stdin[i : i + STDIN_CHUNK_BYTES] for i in range(0, len(stdin), STDIN_CHUNK_BYTES)] or [b""]
        for index, piece in enumerate(pieces):
            self._protocol.send_command_input(shell_id, command_id, piece, end=index == len(pieces) - 1)

    def _receive_until_done(
        self, shell_id: str, command_id: str, deadline: float, output: _OutputCollector
    ) -> int:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _DeadlinePassed
            wait = max(MIN_RECEIVE_WAIT, min(self._operation_timeout, remaining))
            try:
                exit_code = self._receive_once(shell_id, command_id, wait, output)
            except WinRMOperationTimeoutError:
                continue  # the guest had nothing to say within `wait`: ask again
            if exit_code is not None:
                return exit_code

    def _receive_once(
        self, shell_id: str, command_id: str, wait: float, output: _OutputCollector
    ) -> int | None:
        """One Receive; returns the exit code once the command is done, else None."""
        request = {
            "env:Envelope": self._protocol.build_wsman_header(RECEIVE_ACTION, SHELL_RESOURCE_URI, shell_id)
        }
        request["env:Envelope"]["env:Header"]["w:OperationTimeout"] = f"PT{wait:.3f}S"
        desired = request["env:Envelope"].setdefault("env:Body", {}).setdefault("rsp:Receive", {})
        desired["rsp:DesiredStream"] = {"@CommandId": command_id, "#text": "stdout stderr"}
        self._set_http_timeout(wait + HTTP_READ_GRACE)
        response = ET.fromstring(self._protocol.send_message(xmltodict.unparse(request)))
        for stream in response.iter(f"{{{SHELL_NAMESPACE}}}Stream"):
            if stream.text:
                output.add(stream.get("Name", "stdout"), base64.b64decode(stream.text))
        for state in response.iter(f"{{{SHELL_NAMESPACE}}}CommandState"):
            if state.get("State") == COMMAND_DONE_STATE:
                exit_code = state.findtext(f"{{{SHELL_NAMESPACE}}}ExitCode")
                return int(exit_code) if exit_code else 0
        return None

    def _signal_terminate(self, shell_id: str, command_id: str) -> None:
        """Ask the guest to stop the command (Signal terminate); a failure here changes nothing."""
        self._set_http_timeout(self._connect_timeout + HTTP_READ_GRACE)
        try:
            self._protocol.cleanup_command(shell_id, command_id)
        except Exception as error:
            log.debug("%s: terminate signal failed (%s)", self.host, type(error).__name__)

    def _delete_shell(self, shell_id: str) -> None:
        """Delete the shell (ending whatever still runs in it); a failure only leaves it to expire."""
        self._set_http_timeout(self._connect_timeout + HTTP_READ_GRACE)
        try:
            self._protocol.close_shell(shell_id, close_session=False)
        except Exception as error:
            log.debug("%s: deleting shell %s failed (%s)", self.host, shell_id, type(error).__name__)

    # -- transport plumbing ---------------------------------------------------------------------------

    def _set_http_timeout(self, read_seconds: float) -> None:
        """Separate connect and read timeouts on every request pywinrm sends (requests takes a pair)."""
        self._protocol.transport.read_timeout_sec = (self._connect_timeout, read_seconds)

    def _ensure_http_session(self) -> None:
        """Build pywinrm's requests session once, then swap CA validation for the pin when one is set."""
        transport = self._protocol.transport
        if transport.session is not None:
            return
        session = transport.build_session()
        if self._pin:
            session.verify = False  # the adapter's fingerprint check replaces CA validation
            session.mount("https://", PinnedCertificateAdapter(self._pin))
        elif self._skip_verify:
            # Not pywinrm's "ignore", which silences urllib3's InsecureRequestWarning process-wide:
            # an unverified connection should stay loud.
            session.verify = False

    # -- failures -------------------------------------------------------------------------------------

    def _network_failure(self, error: BaseException) -> tuple[str, str] | None:
        """(stage, message) when the request never reached WS-Management: DNS, TCP, TLS or HTTP auth."""
        where = f"{self.host}:{self.port}"
        if isinstance(error, InvalidCredentialsError):
            return "auth", f"the server rejected the credentials of user {self.username!r} ({self.transport})"
        if isinstance(error, requests.exceptions.SSLError):
            return "tls", self._tls_problem(error)
        if isinstance(error, requests.exceptions.ConnectTimeout):
            return "tcp", f"no TCP connection to {where} within {self._connect_timeout:g} s"
        if isinstance(error, requests.exceptions.ConnectionError):
            causes = list(_causes(error))
            if any(isinstance(c, urllib3.exceptions.NameResolutionError | socket.gaierror) for c in causes):
                return "resolve", f"cannot resolve the host name {self.host!r}"
            if any(isinstance(c, ConnectionRefusedError) for c in causes):
                return "tcp", f"connection to {where} refused"
            if any(isinstance(c, urllib3.exceptions.NewConnectionError) for c in causes):
                return "tcp", f"cannot connect to {where}"
        return None

    def _tls_problem(self, error: BaseException) -> str:
        for cause in _causes(error):
            if isinstance(cause, ssl.SSLCertVerificationError):
                return f"the server certificate is not trusted: {cause.verify_message}"
        if self._pin and any("Fingerprints did not match" in str(c) for c in _causes(error)):
            return "the server certificate does not match the pinned thumbprint"
        return "the TLS handshake failed"

    def _connect_failure(self, error: Exception) -> SessionError:
        """A failure while opening the shell: a network stage, or the shell stage for WS-Man's refusal."""
        network = self._network_failure(error)
        if network is not None:
            return SessionError(network[0], self.host, network[1])
        if isinstance(error, WinRMError) and not isinstance(error, WSManFaultError):
            # pywinrm's own refusals (e.g. kerberos support not installed) concern authentication
            return SessionError("auth", self.host, f"{self.transport} authentication unavailable: {error}")
        return SessionError("shell", self.host, f"cannot create a shell: {self._describe(error)}")

    def _command_failure(self, error: Exception, doing: str) -> SessionError:
        network = self._network_failure(error)
        detail = network[1] if network is not None else self._describe(error)
        return SessionError("command", self.host, f"{doing}: {detail}")

    def _describe(self, error: Exception) -> str:
        """Words for a failure, taken only from fields that cannot hold a credential."""
        if isinstance(error, WSManFaultError):
            reason = " ".join((error.reason or "").split())
            return f"WS-Management fault {error.wsman_fault_code or error.fault_subcode}: {reason}"
        if isinstance(error, WinRMTransportError):
            return f"HTTP {error.code} from {self.endpoint}"
        if isinstance(error, requests.exceptions.Timeout):
            return "no answer from the server in time"
        if isinstance(error, requests.exceptions.ConnectionError):
            return "the connection was lost"
        return type(error).__name__


class _DeadlinePassed(Exception):
    """Internal: the command's wall-clock deadline passed during the receive loop."""


class _CallbackFailed(Exception):
    """Internal: on_output raised; `run` re-raises the original, untouched, after deleting the shell."""

    def __init__(self, original: Exception) -> None:
        super().__init__(type(original).__name__)
        self.original = original

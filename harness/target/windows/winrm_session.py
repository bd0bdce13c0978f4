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
SHA-256 or SHA-1 thumbprint, enforced during the handshake before any credential is sent
(tls_trust.py). `insecure_skip_verify` turns validation off (the target config demands a second,
loudly named switch for it) and leaves urllib3's InsecureRequestWarning on.

Failures become SessionError with a stage (session.py, built in winrm_failures.py from fields that
cannot hold a credential); the password lives in a SecretStr that prints as asterisks.
"""

from __future__ import annotations

import base64
import logging
import math
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Literal

import xmltodict
from pydantic import SecretStr
from winrm.exceptions import WinRMError, WinRMOperationTimeoutError
from winrm.protocol import Protocol

from harness.target.windows.session import CommandResult, CommandTimeout, OutputCallback
from harness.target.windows.tls_trust import (
    DeadlineAdapter,
    PinnedCertificateAdapter,
    normalize_thumbprint,
    system_trust_store,
)
from harness.target.windows.winrm_failures import FailureContext, command_failure, connect_failure

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
    transport. `ntlm` (requests_ntlm, installed with pywinrm) is tested against pyspnego's NTLM
    acceptor with channel binding and sealed HTTP messages (tests/test_winrm_ntlm.py); `kerberos`
    and `credssp` need pywinrm's extras of the same names and a Windows domain to test against.
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

    def _failure_context(self) -> FailureContext:
        return FailureContext(
            self.host,
            self.port,
            self.username,
            self.transport,
            self.endpoint,
            self._connect_timeout,
            pinned=bool(self._pin),
        )

    def _open_shell(self) -> str:
        self._set_http_timeout(self._operation_timeout + HTTP_READ_GRACE)
        try:
            self._ensure_http_session()
            shell_id = self._protocol.open_shell(codepage=UTF8_CODEPAGE, noprofile=True)
        except Exception as error:
            # Start the next attempt from a fresh requests session: a half-built one (e.g. NTLM
            # encryption set-up refused) must not be reused, and the pin is mounted only on a new one.
            self._protocol.transport.close_session()
            raise connect_failure(self._failure_context(), error) from None
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
            raise command_failure(self._failure_context(), error, f"starting {program}") from None
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
            raise command_failure(self._failure_context(), error, f"running {program}") from None
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
        # pywinrm's build_session sends its first request (the NTLM/Kerberos/CredSSP context that
        # message encryption over HTTP is bound to, on one TCP connection) before it returns: build
        # without it, mount the adapters, then set the context up through them (transport.py:
        # build_session / setup_encryption), so that request too resolves within the deadline.
        wanted = transport.message_encryption
        transport.message_encryption = "never"
        try:
            session = transport.build_session()
        finally:
            transport.message_encryption = wanted
        session.mount("http://", DeadlineAdapter())  # the host is resolved within connect_timeout
        if self._pin:
            session.verify = False  # the adapter's fingerprint check replaces CA validation
            session.mount("https://", PinnedCertificateAdapter(self._pin))
        else:
            session.mount("https://", DeadlineAdapter())
        over_http = not transport.endpoint.lower().startswith("https")
        if wanted == "always" or (wanted == "auto" and over_http):
            if _encryption_available(transport.auth_method, session):
                transport.setup_encryption(session)
            elif wanted == "always":
                raise WinRMError("message encryption is 'always' but this transport cannot encrypt")
        if self._skip_verify and not self._pin:
            # Not pywinrm's "ignore", which silences urllib3's InsecureRequestWarning process-wide:
            # an unverified connection should stay loud.
            session.verify = False


def _encryption_available(auth_method: str, session: object) -> bool:
    """Whether pywinrm could encrypt messages with this auth (its build_session's own test)."""
    auth = getattr(session, "auth", None)
    if auth_method == "ntlm":
        return hasattr(auth, "session_security")
    if auth_method == "kerberos":
        return bool(getattr(auth, "winrm_encryption_available", False))
    return auth_method == "credssp"


class _DeadlinePassed(Exception):
    """Internal: the command's wall-clock deadline passed during the receive loop."""


class _CallbackFailed(Exception):
    """Internal: on_output raised; `run` re-raises the original, untouched, after deleting the shell."""

    def __init__(self, original: Exception) -> None:
        super().__init__(type(original).__name__)
        self.original = original

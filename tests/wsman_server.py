"""A WS-Management TEST server: just enough of Windows' WinRM service to test the harness's client.

Not a product and not a Windows emulator. It speaks the Windows Remote Shell operations a WinRM client
sends (MS-WSMV 3.1.4: Create, Command, Send, Receive, Signal, Delete) over real HTTP or HTTPS with Basic
authentication, or NTLM with pyspnego as the acceptor (wsman_ntlm.py: channel binding on HTTPS,
sealed messages on HTTP), answering with the envelopes Windows answers with: `x:ResourceCreated` carrying the
ShellId selector, `rsp:CommandResponse/rsp:CommandId`, `rsp:ReceiveResponse` with base64 `rsp:Stream`
elements and `rsp:CommandState` (Running, or Done with `rsp:ExitCode`), and SOAP faults shaped like
Windows' own: a Receive that finds no output within its `w:OperationTimeout` gets the `w:TimedOut`
fault with WSManFault code 2150858793, an envelope above `w:MaxEnvelopeSize` gets `w:EncodingLimit`.

What a "command" does is a Python callable registered by the test (`server.handlers["cmd.exe"] = ...`);
it runs on its own thread with a `CommandContext` to read stdin and write stdout/stderr, and the
server records what clients did (signals, deleted shells, timed-out receives) for tests to assert on.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import re
import ssl
import sys
import threading
import uuid
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from spnego.channel_bindings import GssChannelBindings
from wsman_ntlm import MessageError, NtlmConnection, certificate_der, ntlm_accounts, tls_server_end_point

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "x": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "p": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
    "f": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
}
SHELL_URI = NS["rsp"]
TRANSFER_URI = NS["x"]
ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
SIGNAL_TERMINATE = f"{SHELL_URI}/signal/terminate"
SIGNAL_CTRL_C = f"{SHELL_URI}/signal/ctrl_c"

WSMAN_TIMED_OUT = 2150858793
"""ERROR_WSMAN_OPERATION_TIMEDOUT: the Receive saw no output within OperationTimeout (a normal event)."""
WSMAN_ENCODING_LIMIT = 2150858817
WSMAN_SHELL_NOT_FOUND = 2150858843
WSMAN_QUOTA_LIMIT = 2150859174

MAX_STREAM_BYTES_PER_RECEIVE = 96 * 1024
"""Raw bytes per ReceiveResponse: base64 makes 128 KiB, under Windows' default 150 KiB envelope."""

_DURATION_SECONDS = re.compile(r"PT(\d+(?:\.\d+)?)S")


class WSManFault(Exception):
    """A SOAP fault to send back, with the fields Windows fills in."""

    def __init__(self, subcode: str, wsman_code: int, reason: str, value: str = "s:Receiver") -> None:
        super().__init__(reason)
        self.subcode = subcode
        self.wsman_code = wsman_code
        self.reason = reason
        self.value = value


def split_windows_command_line(command_line: str) -> list[str]:
    """Split arguments as the Microsoft C runtime does, so tests can check what a guest program sees.

    Backslashes are literal unless they precede a quote: 2n backslashes + quote give n backslashes
    and toggle quoting, 2n+1 give n backslashes and a literal quote; whitespace outside quotes splits.
    """
    args: list[str] = []
    current: list[str] = []
    in_quotes = False
    has_token = False
    index = 0
    while index < len(command_line):
        char = command_line[index]
        if char == "\\":
            run_end = index
            while run_end < len(command_line) and command_line[run_end] == "\\":
                run_end += 1
            count = run_end - index
            if run_end < len(command_line) and command_line[run_end] == '"':
                current.append("\\" * (count // 2))
                if count % 2:
                    current.append('"')
                    run_end += 1
                index = run_end
            else:
                current.append("\\" * count)
                index = run_end
            has_token = True
            continue
        if char == '"':
            in_quotes = not in_quotes
            has_token = True
        elif char in " \t" and not in_quotes:
            if has_token:
                args.append("".join(current))
                current, has_token = [], False
        else:
            current.append(char)
            has_token = True
        index += 1
    if has_token:
        args.append("".join(current))
    return args


@dataclass
class CommandContext:
    """What a handler sees of its command: the command line, stdin, stdout/stderr, signals."""

    command: str
    arguments: str
    _running: RunningCommand

    @property
    def argv(self) -> list[str]:
        """The command followed by its arguments, split as a Windows program would split them."""
        return [*split_windows_command_line(self.command), *split_windows_command_line(self.arguments)]

    def read_stdin(self, timeout: float = 10.0) -> bytes:
        """All of stdin, once the client has closed it (a Send with End="true")."""
        if not self._running.stdin_closed.wait(timeout):
            raise TimeoutError("client never closed stdin")
        return bytes(self._running.stdin)

    def write_stdout(self, data: bytes) -> None:
        self._running.emit("stdout", data)

    def write_stderr(self, data: bytes) -> None:
        self._running.emit("stderr", data)

    def wait_until_delivered(self, timeout: float = 10.0) -> None:
        """Block until a Receive has carried everything written so far to the client."""
        with self._running.changed:
            if not self._running.changed.wait_for(lambda: not self._running.pending, timeout):
                raise TimeoutError("client stopped receiving output")

    def wait_for_signal(self, timeout: float | None = None) -> bool:
        """Sleep until the client signals the command (terminate / ctrl_c) or the server stops."""
        return self._running.signalled.wait(timeout)


CommandHandler = Callable[[CommandContext], int]
"""Runs one command; returns its exit code."""


@dataclass
class RunningCommand:
    """Server-side state of one command: its stdin, its undelivered output, its exit code."""

    command_id: str
    stdin: bytearray = field(default_factory=bytearray)
    stdin_closed: threading.Event = field(default_factory=threading.Event)
    signalled: threading.Event = field(default_factory=threading.Event)
    pending: deque[tuple[str, bytes]] = field(default_factory=deque)
    changed: threading.Condition = field(default_factory=threading.Condition)
    exit_code: int | None = None

    def emit(self, stream: str, data: bytes) -> None:
        if not data:
            return
        with self.changed:
            self.pending.append((stream, bytes(data)))
            self.changed.notify_all()

    def finish(self, exit_code: int) -> None:
        with self.changed:
            self.exit_code = exit_code
            self.changed.notify_all()

    def take_output(self, timeout: float) -> tuple[list[tuple[str, bytes]], bool] | None:
        """Up to one envelope of output, and whether the command is done; None when nothing came in time."""
        with self.changed:
            ready = self.changed.wait_for(lambda: self.pending or self.exit_code is not None, timeout)
            if not ready:
                return None
            taken: list[tuple[str, bytes]] = []
            budget = MAX_STREAM_BYTES_PER_RECEIVE
            while self.pending and budget > 0:
                stream, data = self.pending.popleft()
                if len(data) > budget:
                    self.pending.appendleft((stream, data[budget:]))
                    data = data[:budget]
                taken.append((stream, data))
                budget -= len(data)
            done = not self.pending and self.exit_code is not None
            self.changed.notify_all()
            return taken, done


@dataclass
class Shell:
    shell_id: str
    commands: dict[str, RunningCommand] = field(default_factory=dict)


@dataclass(frozen=True)
class SignalRecord:
    command_id: str
    code: str
    while_running: bool


class WSManService:
    """The WinRM shell service behind the HTTP front: dispatches SOAP actions, keeps shells."""

    def __init__(self) -> None:
        self.handlers: dict[str, CommandHandler] = {}
        self.shells: dict[str, Shell] = {}
        self.signals: list[SignalRecord] = []
        self.deleted_shells: list[str] = []
        self.commands_started: list[CommandContext] = []
        self.timed_out_receives = 0
        self.handler_errors: list[BaseException] = []
        self.internal_errors: list[BaseException] = []
        self.refuse_shells = False
        self.auth_failures: list[str] = []
        """Why NTLM logons or sealed messages were refused (wsman_ntlm.py)."""
        self.deny_access = False
        """An account WinRM's RootSDDL does not allow (not in Administrators or Remote Management
        Users): the credentials are accepted, the Create is refused with wsman:AccessDenied, WSManFault
        code 5, "Access is denied." (MS-WSMV's AccessDenied fault; the reply pywinrm#336 shows)."""
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def stop(self) -> None:
        """Wake every handler still running (as if signalled) so the server can shut down."""
        self._stopping.set()
        with self._lock:
            for shell in self.shells.values():
                for command in shell.commands.values():
                    command.signalled.set()

    def dispatch(self, body: bytes) -> tuple[int, str]:
        """Handle one SOAP request; returns (HTTP status, response envelope)."""
        root = ET.fromstring(body)
        header = root.find("s:Header", NS)
        message_id = _text(header, "a:MessageID")
        action = _text(header, "a:Action")
        try:
            max_size = int(_text(header, "w:MaxEnvelopeSize") or 153600)
            if len(body) > max_size:
                raise WSManFault(
                    "w:EncodingLimit",
                    WSMAN_ENCODING_LIMIT,
                    "The WS-Management service cannot process the request because the request is too large.",
                    value="s:Sender",
                )
            response_action, response_body = self._perform(action, header, root.find("s:Body", NS))
            return 200, _envelope(response_action, message_id, response_body)
        except WSManFault as fault:
            return 500, _fault_envelope(message_id, fault)

    def _perform(self, action: str, header: ET.Element, body: ET.Element) -> tuple[str, str]:
        if action == f"{TRANSFER_URI}/Create":
            return f"{TRANSFER_URI}/CreateResponse", self._create()
        shell = self._shell(header)
        if action == f"{TRANSFER_URI}/Delete":
            with self._lock:
                self.shells.pop(shell.shell_id)
                self.deleted_shells.append(shell.shell_id)
            for command in shell.commands.values():
                command.signalled.set()
            return f"{TRANSFER_URI}/DeleteResponse", ""
        if action == f"{SHELL_URI}/Command":
            return f"{SHELL_URI}/CommandResponse", self._command(shell, body)
        if action == f"{SHELL_URI}/Send":
            return f"{SHELL_URI}/SendResponse", self._send(shell, body)
        if action == f"{SHELL_URI}/Receive":
            timeout = _operation_timeout(header)
            return f"{SHELL_URI}/ReceiveResponse", self._receive(shell, body, timeout)
        if action == f"{SHELL_URI}/Signal":
            return f"{SHELL_URI}/SignalResponse", self._signal(shell, body)
        raise WSManFault("a:ActionNotSupported", 2150858771, f"The action {action} is not supported.")

    def _shell(self, header: ET.Element) -> Shell:
        selector = header.find("w:SelectorSet/w:Selector[@Name='ShellId']", NS)
        shell_id = selector.text if selector is not None else None
        with self._lock:
            shell = self.shells.get(shell_id or "")
        if shell is None:
            raise WSManFault(
                "w:InvalidSelectors",
                WSMAN_SHELL_NOT_FOUND,
                f"The request for the Windows Remote Shell with ShellId {shell_id} failed because the shell"
                " was not found on the server.",
                value="s:Sender",
            )
        return shell

    def _create(self) -> str:
        if self.deny_access:
            raise WSManFault("w:AccessDenied", 5, "Access is denied. ", value="s:Sender")
        if self.refuse_shells:
            raise WSManFault(
                "w:QuotaLimit",
                WSMAN_QUOTA_LIMIT,
                "The WS-Management service cannot process the request. This user is allowed a maximum number"
                " of 30 concurrent shells, which has been exceeded.",
            )
        shell = Shell(str(uuid.uuid4()).upper())
        with self._lock:
            self.shells[shell.shell_id] = shell
        return (
            "<x:ResourceCreated><a:Address>http://localhost/wsman</a:Address><a:ReferenceParameters>"
            f"<w:ResourceURI>{SHELL_URI}/cmd</w:ResourceURI><w:SelectorSet>"
            f'<w:Selector Name="ShellId">{shell.shell_id}</w:Selector>'
            "</w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>"
        )

    def _command(self, shell: Shell, body: ET.Element) -> str:
        command = _text(body, "rsp:CommandLine/rsp:Command")
        arguments = _text(body, "rsp:CommandLine/rsp:Arguments")
        executable = (split_windows_command_line(command) or [""])[0]
        handler = self.handlers.get(executable)
        if handler is None:
            raise WSManFault("w:InternalError", 2, "The system cannot find the file specified. ")
        running = RunningCommand(str(uuid.uuid4()).upper())
        if self._stopping.is_set():
            running.signalled.set()
        context = CommandContext(command, arguments, running)
        shell.commands[running.command_id] = running
        self.commands_started.append(context)
        threading.Thread(target=self._run_handler, args=(handler, context), daemon=True).start()
        return (
            f"<rsp:CommandResponse><rsp:CommandId>{running.command_id}</rsp:CommandId></rsp:CommandResponse>"
        )

    def _run_handler(self, handler: CommandHandler, context: CommandContext) -> None:
        try:
            exit_code = handler(context)
        except BaseException as error:  # a broken test handler must still end its command
            self.handler_errors.append(error)
            exit_code = 255
        context._running.finish(exit_code)

    def _command_of(self, shell: Shell, command_id: str | None) -> RunningCommand:
        command = shell.commands.get(command_id or "")
        if command is None:
            raise WSManFault("w:InvalidParameter", 2150858882, f"Unknown CommandId {command_id}.")
        return command

    def _send(self, shell: Shell, body: ET.Element) -> str:
        stream = body.find("rsp:Send/rsp:Stream", NS)
        command = self._command_of(shell, stream.get("CommandId"))
        command.stdin.extend(base64.b64decode(stream.text or ""))
        if stream.get("End", "false").lower() == "true":
            command.stdin_closed.set()
        return "<rsp:SendResponse/>"

    def _receive(self, shell: Shell, body: ET.Element, timeout: float) -> str:
        desired = body.find("rsp:Receive/rsp:DesiredStream", NS)
        command = self._command_of(shell, desired.get("CommandId"))
        taken = command.take_output(timeout)
        if taken is None:
            with self._lock:
                self.timed_out_receives += 1
            raise WSManFault(
                "w:TimedOut",
                WSMAN_TIMED_OUT,
                "The WS-Management service cannot complete the operation within the time specified in"
                " OperationTimeout.  ",
            )
        chunks, done = taken
        cid = quoteattr(command.command_id)
        parts = [
            f"<rsp:Stream Name={quoteattr(name)} CommandId={cid}>{base64.b64encode(data).decode()}"
            "</rsp:Stream>"
            for name, data in chunks
        ]
        if done:
            parts += [
                f'<rsp:Stream Name="{name}" CommandId={cid} End="true"/>' for name in ("stdout", "stderr")
            ]
            parts.append(
                f'<rsp:CommandState CommandId={cid} State="{SHELL_URI}/CommandState/Done">'
                f"<rsp:ExitCode>{command.exit_code}</rsp:ExitCode></rsp:CommandState>"
            )
        else:
            parts.append(f'<rsp:CommandState CommandId={cid} State="{SHELL_URI}/CommandState/Running"/>')
        return f"<rsp:ReceiveResponse>{''.join(parts)}</rsp:ReceiveResponse>"

    def _signal(self, shell: Shell, body: ET.Element) -> str:
        signal = body.find("rsp:Signal", NS)
        command = self._command_of(shell, signal.get("CommandId"))
        code = _text(signal, "rsp:Code")
        with self._lock:
            self.signals.append(SignalRecord(command.command_id, code, command.exit_code is None))
        if code in (SIGNAL_TERMINATE, SIGNAL_CTRL_C):
            command.signalled.set()
        return "<rsp:SignalResponse/>"


def _text(element: ET.Element | None, path: str) -> str:
    found = element.find(path, NS) if element is not None else None
    return (found.text or "").strip() if found is not None else ""


def _operation_timeout(header: ET.Element) -> float:
    match = _DURATION_SECONDS.fullmatch(_text(header, "w:OperationTimeout"))
    return float(match.group(1)) if match else 60.0


def _namespace_declarations() -> str:
    return " ".join(f'xmlns:{prefix}="{uri}"' for prefix, uri in NS.items())


def _envelope(action: str, relates_to: str, body: str) -> str:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xml:lang="en-US" {_namespace_declarations()}>'
        f"<s:Header><a:Action>{action}</a:Action><a:MessageID>uuid:{str(uuid.uuid4()).upper()}</a:MessageID>"
        f"<a:To>{ANONYMOUS}</a:To><a:RelatesTo>{relates_to}</a:RelatesTo></s:Header>"
        f"<s:Body>{body}</s:Body></s:Envelope>"
    )


def _fault_envelope(relates_to: str, fault: WSManFault) -> str:
    reason = escape(fault.reason)
    body = (
        f"<s:Fault><s:Code><s:Value>{fault.value}</s:Value><s:Subcode><s:Value>{fault.subcode}</s:Value>"
        f'</s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">{reason}</s:Text></s:Reason>'
        f'<s:Detail><f:WSManFault Code="{fault.wsman_code}" Machine="wsman-test-server">'
        f"<f:Message>{reason}</f:Message></f:WSManFault></s:Detail></s:Fault>"
    )
    return _envelope("http://schemas.dmtf.org/wbem/wsman/1/wsman/fault", relates_to, body)


class _WSManHTTPHandler(BaseHTTPRequestHandler):
    """POST /wsman with Basic auth; everything else is Windows' 404 or 401."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes: no 40 ms ACK stalls
    server: WSManHTTPServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path != "/wsman":
            self._respond(404, b"", {})
            return
        ntlm = None
        if self.server.ntlm_bindings is False:
            if self.headers.get("Authorization") != self.server.expected_authorization:
                self._respond(401, b"", {"WWW-Authenticate": 'Basic realm="WSMAN"'})
                return
        else:
            ntlm = self._ntlm_logon()
            if ntlm is None:
                return
            if self.server.tls is None:  # HTTP: sealed messages only (AllowUnencrypted = false)
                if not body:
                    self._respond(200, b"", {})  # pywinrm establishing the context before sealing
                    return
                try:
                    body = ntlm.unseal(self.headers.get("Content-Type", ""), body)
                except MessageError as error:
                    self.server.service.auth_failures.append(str(error))
                    self._respond(400, b"", {})
                    return
        try:
            status, envelope = self.server.service.dispatch(body)
        except Exception as error:  # a bug in this test server: keep it for the test to report
            self.server.service.internal_errors.append(error)
            self._respond(500, b"", {})
            return
        payload, content_type = envelope.encode("utf-8"), "application/soap+xml;charset=UTF-8"
        if ntlm is not None and self.server.tls is None:
            payload, content_type = ntlm.seal(payload)
        self._respond(status, payload, {"Content-Type": content_type})

    def _ntlm_logon(self) -> NtlmConnection | None:
        """This connection's NTLM state once authenticated; None after answering 401 (a challenge,
        or a bare Negotiate for a client that failed or has not started)."""
        connection: NtlmConnection | None = getattr(self, "_ntlm", None)
        if connection is None:
            bindings = self.server.ntlm_bindings
            connection = self._ntlm = NtlmConnection(bindings if bindings is not True else None)
        if connection.authenticated:
            return connection
        done, challenge = connection.step(self.headers.get("Authorization", ""))
        self.server.service.auth_failures.extend(connection.failures)
        connection.failures.clear()
        if done:
            return connection
        self._respond(
            401, b"", {"WWW-Authenticate": "Negotiate" if challenge is None else f"Negotiate {challenge}"}
        )
        return None

    def _respond(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests assert on logs and must not see the server's access log."""


class WSManHTTPServer(ThreadingHTTPServer):
    """The HTTP(S) front; with a TLS context each connection is wrapped on its own worker thread."""

    daemon_threads = True

    def __init__(
        self,
        service: WSManService,
        username: str,
        password: str,
        tls: ssl.SSLContext | None,
        ntlm_bindings: GssChannelBindings | bool = False,
    ) -> None:
        super().__init__(("127.0.0.1", 0), _WSManHTTPHandler)
        self.service = service
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        self.expected_authorization = f"Basic {token}"
        self.tls = tls
        self.ntlm_bindings = ntlm_bindings
        """False: Basic; True: NTLM without channel binding (HTTP); bindings: NTLM requiring them."""

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is not None:
            request.settimeout(10)
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return  # the client refused our certificate: exactly what some tests want
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up mid-request are normal here; anything else is kept for the test to see."""
        error = sys.exc_info()[1]
        if error is not None and not isinstance(error, OSError):
            self.service.internal_errors.append(error)


@dataclass(frozen=True)
class ServerPKI:
    """A throwaway CA and a server certificate signed by it, as files."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    server_cert_sha256: str
    server_cert_sha1: str


def make_test_pki(directory: Path, server_names: tuple[str, ...] = ("localhost", "127.0.0.1")) -> ServerPKI:
    """Generate a CA and a server certificate signed by it for `server_names` (EC P-256: fast)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lkdh test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([_subject_alternative_name(name) for name in server_names]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    pki = ServerPKI(
        ca_cert=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        server_cert_sha256=server_cert.fingerprint(hashes.SHA256()).hex(),
        server_cert_sha1=server_cert.fingerprint(hashes.SHA1()).hex(),
    )
    pki.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    pki.server_cert.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    pki.server_key.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return pki


def _subject_alternative_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _key_usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass
class RunningWSManServer:
    """A started test server: where it listens and the service state tests assert on."""

    service: WSManService
    host: str
    port: int
    scheme: str

    @property
    def handlers(self) -> dict[str, CommandHandler]:
        return self.service.handlers


@contextmanager
def running_wsman_server(
    username: str,
    password: str,
    pki: ServerPKI | None = None,
    *,
    ntlm: Path | None = None,
    channel_bindings: GssChannelBindings | None = None,
) -> Iterator[RunningWSManServer]:
    """Serve on 127.0.0.1 (HTTPS when `pki` is given) until the block ends.

    `ntlm`: a folder for the acceptor's account file; the listener then takes NTLM (Negotiate)
    instead of Basic. On HTTPS it requires the channel binding of its own certificate, or of
    `channel_bindings` when given (what a client behind a TLS interceptor would have seen)."""
    tls = None
    if pki is not None:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(pki.server_cert, pki.server_key)
    bindings: GssChannelBindings | bool = False
    if ntlm is not None:
        bindings = (
            True
            if pki is None
            else channel_bindings or tls_server_end_point(certificate_der(pki.server_cert))
        )
    service = WSManService()
    server = WSManHTTPServer(service, username, password, tls, bindings)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    with ExitStack() as stack:
        if ntlm is not None:
            stack.enter_context(ntlm_accounts(ntlm, {username: password}))
        thread.start()
        try:
            yield RunningWSManServer(
                service, "127.0.0.1", server.server_address[1], "https" if tls else "http"
            )
        finally:
            service.stop()
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)

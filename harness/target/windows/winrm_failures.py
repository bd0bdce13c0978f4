"""What went wrong with a WinRM request, as a SessionError with a stage (session.py).

requests and pywinrm report one failure through layers of wrapped exceptions (requests wraps urllib3,
which wraps socket and ssl errors); this module digs out the cause that names the stage: resolve,
tcp, tls, auth, shell or command. Messages are built from the host, port, user name and fault fields
only; the transport's own exception texts (URLs, headers, proxy addresses) never reach them, and
the password is not known here at all.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass

import requests
import urllib3.exceptions
from winrm.exceptions import InvalidCredentialsError, WinRMError, WinRMTransportError, WSManFaultError

from harness.target.windows.name_resolution import ResolutionTimeout
from harness.target.windows.session import SessionError


@dataclass(frozen=True)
class FailureContext:
    """The facts about a session a failure message may name (no credential among them)."""

    host: str
    port: int
    username: str | None
    transport: str
    endpoint: str
    connect_timeout: float
    pinned: bool


def connect_failure(context: FailureContext, error: Exception) -> SessionError:
    """A failure while opening the shell: a network stage, or the shell stage for WS-Man's refusal."""
    network = _network_failure(context, error)
    if network is not None:
        return SessionError(network[0], context.host, network[1])
    if isinstance(error, WinRMError) and not isinstance(error, WSManFaultError):
        # pywinrm's own refusals (e.g. kerberos support not installed) concern authentication
        return SessionError("auth", context.host, f"{context.transport} authentication unavailable: {error}")
    return SessionError("shell", context.host, f"cannot create a shell: {_describe(context, error)}")


def command_failure(context: FailureContext, error: Exception, doing: str) -> SessionError:
    """A failure while starting or running a command: the command stage, with what was being done."""
    network = _network_failure(context, error)
    detail = network[1] if network is not None else _describe(context, error)
    return SessionError("command", context.host, f"{doing}: {detail}")


def _network_failure(context: FailureContext, error: BaseException) -> tuple[str, str] | None:
    """(stage, message) when the request never reached WS-Management: DNS, TCP, TLS or HTTP auth."""
    where = f"{context.host}:{context.port}"
    if isinstance(error, InvalidCredentialsError):
        user = f"user {context.username!r} ({context.transport})"
        return "auth", f"the server rejected the credentials of {user}"
    if isinstance(error, requests.exceptions.SSLError):
        return "tls", _tls_problem(context, error)
    if any(isinstance(c, ResolutionTimeout) for c in _causes(error)):
        waited = f"{context.connect_timeout:g} s"
        return "resolve", f"no answer from the name resolver for {context.host!r} within {waited}"
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return "tcp", f"no TCP connection to {where} within {context.connect_timeout:g} s"
    if isinstance(error, requests.exceptions.ConnectionError):
        causes = list(_causes(error))
        if any(isinstance(c, urllib3.exceptions.NameResolutionError | socket.gaierror) for c in causes):
            return "resolve", f"cannot resolve the host name {context.host!r}"
        if any(isinstance(c, ConnectionRefusedError) for c in causes):
            return "tcp", f"connection to {where} refused"
        if any(isinstance(c, urllib3.exceptions.NewConnectionError) for c in causes):
            return "tcp", f"cannot connect to {where}"
    return None


def _tls_problem(context: FailureContext, error: BaseException) -> str:
    for cause in _causes(error):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"the server certificate is not trusted: {cause.verify_message}"
    if context.pinned and any("Fingerprints did not match" in str(c) for c in _causes(error)):
        return "the server certificate does not match the pinned thumbprint"
    return "the TLS handshake failed"


def _describe(context: FailureContext, error: Exception) -> str:
    """Words for a failure, taken only from fields that cannot hold a credential."""
    if isinstance(error, WSManFaultError):
        reason = " ".join((error.reason or "").split())
        return f"WS-Management fault {error.wsman_fault_code or error.fault_subcode}: {reason}"
    if isinstance(error, WinRMTransportError):
        return f"HTTP {error.code} from {context.endpoint}"
    if isinstance(error, requests.exceptions.Timeout):
        return "no answer from the server in time"
    if isinstance(error, requests.exceptions.ConnectionError):
        return "the connection was lost"
    return type(error).__name__


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

"""WinRMSession against the WS-Management test server, over real HTTP and HTTPS on loopback.

Everything below pywinrm's message building is real: sockets, TLS with a throwaway CA, Basic auth,
SOAP envelopes, WS-Man faults. Basic authentication here; NTLM against pyspnego's acceptor in
test_winrm_ntlm.py; Kerberos, CredSSP and certificate authentication need a Windows listener.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import socket
import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from winrm.transport import HAVE_CREDSSP, HAVE_KERBEROS
from wsman_server import (
    SIGNAL_TERMINATE,
    CommandContext,
    RunningWSManServer,
    ServerPKI,
    make_test_pki,
    running_wsman_server,
)

from harness.target.windows.clixml import stderr_text
from harness.target.windows.session import CommandTimeout, SessionError
from harness.target.windows.tls_trust import normalize_thumbprint
from harness.target.windows.winrm_session import WinRMSession

USER = "lkdh-admin"
PASSWORD = "Pw-7f3Q!never-in-logs"
BASIC_TOKEN = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> ServerPKI:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def http_server() -> Iterator[RunningWSManServer]:
    with running_wsman_server(USER, PASSWORD) as server:
        yield server
        assert not server.service.internal_errors
        assert not server.service.handler_errors


@pytest.fixture
def https_server(pki: ServerPKI) -> Iterator[RunningWSManServer]:
    with running_wsman_server(USER, PASSWORD, pki) as server:
        yield server
        assert not server.service.internal_errors
        assert not server.service.handler_errors


@pytest.fixture(params=["http", "https"])
def server(request: pytest.FixtureRequest) -> RunningWSManServer:
    return request.getfixturevalue(f"{request.param}_server")


def connect(server: RunningWSManServer, pki: ServerPKI | None = None, **overrides: Any) -> WinRMSession:
    """A basic-auth session to the test server; https trusts the test CA unless overridden."""
    settings: dict[str, Any] = {
        "port": server.port,
        "scheme": server.scheme,
        "username": USER,
        "password": PASSWORD,
        "transport": "basic",
        "operation_timeout": 0.5,
        "connect_timeout": 5,
    }
    if server.scheme == "http":
        settings["allow_insecure_http"] = True
    elif pki is not None:
        settings["ca_bundle"] = pki.ca_cert
    settings.update(overrides)
    return WinRMSession(server.host, **settings)


@pytest.fixture
def session(server: RunningWSManServer, pki: ServerPKI) -> Iterator[WinRMSession]:
    with connect(server, pki) as opened:
        yield opened


# -- commands -----------------------------------------------------------------------------------------


def test_output_reaches_on_output_piece_by_piece_in_order(
    server: RunningWSManServer, session: WinRMSession
) -> None:
    def three_pieces(ctx: CommandContext) -> int:
        ctx.write_stdout(b"first ")
        ctx.wait_until_delivered()
        ctx.write_stderr(b"second ")
        ctx.wait_until_delivered()
        ctx.write_stdout(b"third")
        return 0

    server.handlers["pieces.exe"] = three_pieces
    seen: list[tuple[str, bytes]] = []
    result = session.run(
        ["pieces.exe"], timeout=10, on_output=lambda stream, data: seen.append((stream, data))
    )
    assert seen == [("stdout", b"first "), ("stderr", b"second "), ("stdout", b"third")]
    assert (result.exit_code, result.stdout, result.stderr) == (0, b"first third", b"second ")


def test_stdin_larger_than_an_envelope_is_delivered_whole(
    server: RunningWSManServer, session: WinRMSession
) -> None:
    """300 KB cannot travel in one Send (the server faults envelopes over 150 KiB): it must be split."""
    payload = os.urandom(300_000)
    server.handlers["digest.exe"] = lambda ctx: (
        ctx.write_stdout(hashlib.sha256(ctx.read_stdin()).hexdigest().encode()) or 0
    )
    result = session.run(["digest.exe"], stdin=payload, timeout=10)
    assert result.stdout.decode() == hashlib.sha256(payload).hexdigest()


def test_stdin_is_closed_even_when_empty(server: RunningWSManServer, session: WinRMSession) -> None:
    server.handlers["cat.exe"] = lambda ctx: ctx.write_stdout(b"[" + ctx.read_stdin(timeout=5) + b"]") or 0
    assert session.run(["cat.exe"], timeout=10).stdout == b"[]"


def test_arguments_arrive_as_the_same_argv(server: RunningWSManServer, session: WinRMSession) -> None:
    argv = ["C:\\Program Files\\lkdh\\lkdctl.exe", "store", "two words", 'a"quote', "C:\\dir\\", "", "&|<>^%"]
    seen: list[list[str]] = []
    server.handlers["C:\\Program Files\\lkdh\\lkdctl.exe"] = lambda ctx: seen.append(ctx.argv) or 0
    session.run(argv, timeout=10)
    assert seen == [argv]


def test_exit_code_is_reported(server: RunningWSManServer, session: WinRMSession) -> None:
    server.handlers["fail.exe"] = lambda ctx: 3
    result = session.run(["fail.exe"], timeout=10)
    assert result.exit_code == 3
    assert not result.ok


def test_twenty_megabytes_of_output_arrive_intact(server: RunningWSManServer, session: WinRMSession) -> None:
    blob = os.urandom(20 * 1024 * 1024)

    def emit(ctx: CommandContext) -> int:
        for offset in range(0, len(blob), 1 << 20):
            ctx.write_stdout(blob[offset : offset + (1 << 20)])
        return 0

    server.handlers["dump.exe"] = emit
    pieces: list[int] = []
    result = session.run(["dump.exe"], timeout=60, on_output=lambda stream, data: pieces.append(len(data)))
    assert hashlib.sha256(result.stdout).digest() == hashlib.sha256(blob).digest()
    assert sum(pieces) == len(blob)
    assert len(pieces) > 100  # many Receive round trips, each handed over as it came


def test_receive_timeouts_are_waited_through(http_server: RunningWSManServer) -> None:
    """Output comes after ~3 operation timeouts: each Receive gets w:TimedOut and the loop asks again."""

    def slow(ctx: CommandContext) -> int:
        ctx.wait_for_signal(timeout=1.6)
        ctx.write_stdout(b"finally")
        return 0

    http_server.handlers["slow.exe"] = slow
    with connect(http_server, operation_timeout=0.5) as session:
        result = session.run(["slow.exe"], timeout=20)
    assert result.stdout == b"finally"
    assert http_server.service.timed_out_receives >= 2


def test_a_hung_command_is_cut_at_its_deadline(server: RunningWSManServer, session: WinRMSession) -> None:
    def hang(ctx: CommandContext) -> int:
        ctx.write_stdout(b"started\r\n")
        ctx.wait_for_signal()  # only a Signal (or the shell's deletion) ends it
        return 0xC000013A

    server.handlers["hang.exe"] = hang
    with pytest.raises(CommandTimeout) as raised:
        session.run(["hang.exe"], timeout=1.0)
    assert raised.value.stage == "command"
    assert raised.value.partial.stdout == b"started\r\n"
    assert "hang.exe" in str(raised.value)
    terminations = [s for s in server.service.signals if s.code == SIGNAL_TERMINATE]
    assert len(terminations) == 1 and terminations[0].while_running
    assert server.service.shells == {}  # the shell was deleted too
    server.handlers["ok.exe"] = lambda ctx: 0
    assert session.run(["ok.exe"], timeout=10).ok  # and the session goes on


def test_every_shell_is_deleted(server: RunningWSManServer, session: WinRMSession) -> None:
    server.handlers["ok.exe"] = lambda ctx: 0
    for _ in range(3):
        session.run(["ok.exe"], timeout=10)
    assert server.service.shells == {}
    assert len(server.service.deleted_shells) == 3


def test_an_on_output_error_propagates_and_the_shell_is_still_deleted(
    server: RunningWSManServer, session: WinRMSession
) -> None:
    server.handlers["talk.exe"] = lambda ctx: ctx.write_stdout(b"x") or 0

    def refuse(stream: str, data: bytes) -> None:
        raise RuntimeError("consumer broke")

    with pytest.raises(RuntimeError, match="consumer broke"):
        session.run(["talk.exe"], timeout=10, on_output=refuse)
    assert server.service.shells == {}


def test_clixml_on_stderr_is_readable(server: RunningWSManServer, session: WinRMSession) -> None:
    def powershell_error(ctx: CommandContext) -> int:
        ctx.write_stderr(b"#< CLIXML\r\n")  # WinRM delivers the header and the objects separately
        ctx.write_stderr(
            b'<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
            b"<S S=\"Error\">Get-Item : Cannot find path 'C:\\nope' because it does not exist."
            b"_x000D__x000A_</S>"
            b"</Objs>"
        )
        return 1

    server.handlers["powershell.exe"] = powershell_error
    result = session.run(["powershell.exe", "-NoProfile", "-Command", "-"], timeout=10)
    assert result.stderr.startswith(b"#< CLIXML\r\n<Objs")
    assert stderr_text(result) == "Get-Item : Cannot find path 'C:\\nope' because it does not exist.\r\n"


def test_an_unknown_program_is_a_command_failure(server: RunningWSManServer, session: WinRMSession) -> None:
    with pytest.raises(SessionError) as raised:
        session.run(["missing.exe"], timeout=10)
    assert raised.value.stage == "command"
    assert "cannot find the file" in raised.value.detail


def test_a_refused_shell_is_a_shell_failure(server: RunningWSManServer, session: WinRMSession) -> None:
    server.service.refuse_shells = True
    with pytest.raises(SessionError) as raised:
        session.run(["anything.exe"], timeout=10)
    assert raised.value.stage == "shell"
    assert "2150859174" in raised.value.detail and "concurrent shells" in raised.value.detail
    server.service.refuse_shells = False
    server.handlers["ok.exe"] = lambda ctx: 0
    assert session.run(["ok.exe"], timeout=10).ok  # the same session recovers once shells are allowed


# -- connection stages --------------------------------------------------------------------------------


def test_unresolvable_host_is_a_resolve_failure() -> None:
    session = WinRMSession("nonexistent.invalid", username=USER, password=PASSWORD, transport="basic")
    with pytest.raises(SessionError) as raised:
        session.run(["hostname.exe"], timeout=10)
    assert raised.value.stage == "resolve"
    assert raised.value.host == "nonexistent.invalid"


def test_refused_connection_is_a_tcp_failure() -> None:
    with socket.socket() as placeholder:  # a port that was free a moment ago and has no listener now
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    session = WinRMSession("127.0.0.1", port=port, username=USER, password=PASSWORD, transport="basic")
    with pytest.raises(SessionError) as raised:
        session.run(["hostname.exe"], timeout=10)
    assert raised.value.stage == "tcp"
    assert "refused" in raised.value.detail


def test_untrusted_certificate_is_a_tls_failure(https_server: RunningWSManServer) -> None:
    """No ca_bundle: the system store is used, and it does not know the test CA."""
    with connect(https_server) as session, pytest.raises(SessionError) as raised:
        session.run(["hostname.exe"], timeout=10)
    assert raised.value.stage == "tls"
    assert "not trusted" in raised.value.detail


def test_a_trusted_certificate_for_another_name_is_a_tls_failure(tmp_path: Path) -> None:
    """The CA is trusted, but the certificate names another machine: the host name check refuses it."""
    other_pki = make_test_pki(tmp_path, server_names=("vm.example.test",))
    with running_wsman_server(USER, PASSWORD, other_pki) as server:
        with connect(server, other_pki) as session, pytest.raises(SessionError) as raised:
            session.run(["hostname.exe"], timeout=10)
        assert server.service.shells == {} and server.service.deleted_shells == []
    assert raised.value.stage == "tls"
    assert "not trusted" in raised.value.detail and "127.0.0.1" in raised.value.detail


@pytest.mark.parametrize("digest", ["sha256", "sha1"])
def test_pinned_thumbprint_is_accepted_without_ca(
    https_server: RunningWSManServer, pki: ServerPKI, digest: str
) -> None:
    thumbprint = pki.server_cert_sha256 if digest == "sha256" else pki.server_cert_sha1
    https_server.handlers["ok.exe"] = lambda ctx: ctx.write_stdout(b"pinned") or 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with connect(https_server, pinned_thumbprint=thumbprint.upper()) as session:
            assert session.run(["ok.exe"], timeout=10).stdout == b"pinned"
    assert not [w for w in caught if "Unverified HTTPS" in str(w.message)]


def test_a_wrong_pin_is_a_tls_failure_before_any_credential_is_sent(
    https_server: RunningWSManServer, pki: ServerPKI
) -> None:
    wrong = hashlib.sha256(b"some other certificate").hexdigest()
    with connect(https_server, pinned_thumbprint=wrong) as session, pytest.raises(SessionError) as raised:
        session.run(["hostname.exe"], timeout=10)
    assert raised.value.stage == "tls"
    assert "pinned thumbprint" in raised.value.detail
    assert https_server.service.shells == {} and https_server.service.deleted_shells == []


def test_wrong_password_is_an_auth_failure_that_never_shows_either_password(
    server: RunningWSManServer, pki: ServerPKI, caplog: pytest.LogCaptureFixture
) -> None:
    wrong_password = "Wrong-9x!also-secret"
    caplog.set_level(logging.DEBUG)
    with connect(server, pki, password=wrong_password) as session, pytest.raises(SessionError) as raised:
        session.run(["hostname.exe"], timeout=10)
    assert raised.value.stage == "auth"
    assert USER in raised.value.detail
    exposed = "".join(traceback.format_exception(raised.value)) + repr(raised.value) + caplog.text
    wrong_token = base64.b64encode(f"{USER}:{wrong_password}".encode()).decode()
    for secret in (wrong_password, wrong_token, PASSWORD):
        assert secret not in exposed


def test_the_password_never_appears_in_logs_reprs_or_failures(
    server: RunningWSManServer, pki: ServerPKI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, urllib3's connection log included
    server.handlers["ok.exe"] = lambda ctx: ctx.write_stdout(b"fine") or 0
    server.handlers["hang.exe"] = lambda ctx: ctx.wait_for_signal() and 0
    exposed: list[str] = []
    with connect(server, pki) as session:
        exposed += [repr(session), str(session)]
        assert session.run(["ok.exe"], timeout=10).ok
        for failing in (["missing.exe"], ["hang.exe"]):
            with pytest.raises(SessionError) as raised:
                session.run(failing, timeout=1.0)
            exposed += ["".join(traceback.format_exception(raised.value)), repr(raised.value)]
    exposed.append(caplog.text)
    assert caplog.records  # the capture did see the transport's debug logging
    text = "\n".join(exposed)
    assert PASSWORD not in text
    assert BASIC_TOKEN not in text


def test_ntlm_against_a_basic_only_listener_is_an_auth_failure(http_server: RunningWSManServer) -> None:
    """requests_ntlm negotiates for real; the listener answers 401 as Windows does with NTLM disabled."""
    session = connect(http_server, transport="ntlm", allow_insecure_http=False)
    with session, pytest.raises(SessionError) as raised:
        session.run(["hostname.exe"], timeout=10)
    assert raised.value.stage == "auth"
    assert "ntlm" in raised.value.detail


@pytest.mark.parametrize(("transport", "available"), [("kerberos", HAVE_KERBEROS), ("credssp", HAVE_CREDSSP)])
def test_a_transport_whose_library_is_missing_is_an_auth_failure(
    http_server: RunningWSManServer, transport: str, available: bool
) -> None:
    if available:
        pytest.skip(f"{transport} support is installed here; this checks the message when it is not")
    session = connect(http_server, transport=transport)
    with session, pytest.raises(SessionError) as raised:
        session.run(["hostname.exe"], timeout=10)
    assert raised.value.stage == "auth"
    assert f"{transport} authentication unavailable" in raised.value.detail
    assert PASSWORD not in str(raised.value)


def test_an_ipv6_literal_is_bracketed_in_the_endpoint() -> None:
    session = WinRMSession("fe80::1", username=USER, password=PASSWORD, transport="basic")
    assert session.endpoint == "https://[fe80::1]:5986/wsman"


# -- settings refused before any connection -----------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "complaint"),
    [
        ({"scheme": "http", "transport": "basic"}, "clear text"),
        ({"scheme": "http", "transport": "certificate"}, "needs https"),
        ({"scheme": "http", "transport": "ntlm", "pinned_thumbprint": "ab" * 32}, "https only"),
        ({"pinned_thumbprint": "ab" * 32, "ca_bundle": Path("ca.pem")}, "at most one"),
        ({"pinned_thumbprint": "not-a-hash"}, "SHA-1"),
        ({"transport": "certificate"}, "client_cert"),
        ({"transport": "telnet"}, "transport must be"),
        ({"operation_timeout": 0}, "positive"),
        ({"username": None}, "needs a username"),
    ],
)
def test_unsafe_or_contradictory_settings_are_refused(settings: dict[str, Any], complaint: str) -> None:
    arguments: dict[str, Any] = {"username": USER, "password": PASSWORD, **settings}
    with pytest.raises(ValueError, match=complaint) as raised:
        WinRMSession("vm.example.test", **arguments)
    assert PASSWORD not in str(raised.value)


def test_thumbprints_are_normalized() -> None:
    assert normalize_thumbprint("AB:CD " + "12" * 18) == "abcd" + "12" * 18
    assert normalize_thumbprint("Ab" * 32) == "ab" * 32

"""NTLM, the target config's default WinRM transport, against a real NTLM acceptor (pyspnego, in the
WS-Management test server: tests/wsman_ntlm.py) over real HTTPS and HTTP on loopback.

HTTPS: the handshake and the channel binding of the server's certificate, which Windows requires
with Extended Protection. HTTP: every message sealed with the NTLM session key (MS-WSMV 2.2.9.1.1),
since Windows refuses unencrypted WinRM traffic by default.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from wsman_ntlm import certificate_der, tls_server_end_point
from wsman_server import CommandContext, RunningWSManServer, ServerPKI, make_test_pki, running_wsman_server

from harness.target.windows.config import TargetConfig
from harness.target.windows.session import SessionError
from harness.target.windows.stage_check import ConfiguredSessions
from harness.target.windows.winrm_session import WinRMSession

USER = "lkdh-admin"
PASSWORD = "Ntlm-pw-3c9d!never-logged"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> ServerPKI:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


def echo_stdin_digest(ctx: CommandContext) -> int:
    data = ctx.read_stdin()
    ctx.write_stdout(f"{len(data)} {hashlib.sha256(data).hexdigest()}".encode())
    return 0


@pytest.fixture
def https_ntlm(pki: ServerPKI, tmp_path: Path) -> Iterator[RunningWSManServer]:
    with running_wsman_server(USER, PASSWORD, pki, ntlm=tmp_path) as server:
        server.handlers["digest.exe"] = echo_stdin_digest
        yield server
        assert not server.service.internal_errors and not server.service.handler_errors


@pytest.fixture
def http_ntlm(tmp_path: Path) -> Iterator[RunningWSManServer]:
    with running_wsman_server(USER, PASSWORD, ntlm=tmp_path) as server:
        server.handlers["digest.exe"] = echo_stdin_digest
        yield server
        assert not server.service.internal_errors and not server.service.handler_errors


def ntlm_session(server: RunningWSManServer, pki: ServerPKI | None, password: str = PASSWORD) -> WinRMSession:
    extra = {"ca_bundle": pki.ca_cert} if pki is not None else {"allow_insecure_http": True}
    return WinRMSession(
        server.host,
        port=server.port,
        scheme=server.scheme,
        username=USER,
        password=password,
        transport="ntlm",
        operation_timeout=0.5,
        connect_timeout=5,
        **extra,
    )


def run_digest(session: WinRMSession, payload: bytes) -> str:
    result = session.run(["digest.exe"], stdin=payload, timeout=20)
    assert result.ok, result.stderr
    return result.stdout.decode()


def test_the_default_transport_from_a_target_config_logs_on_over_https(
    https_ntlm: RunningWSManServer, pki: ServerPKI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No `transport` or `scheme` in the config: NTLM over HTTPS, the session the VM target opens."""
    monkeypatch.setenv("LKDH_NTLM_TEST_PASSWORD", PASSWORD)
    config = TargetConfig.model_validate(
        {
            "name": "ntlm-loopback",
            "host": "127.0.0.1",
            "winrm": {
                "port": https_ntlm.port,
                "username": USER,
                "password": {"env": "LKDH_NTLM_TEST_PASSWORD"},
                "tls": {"ca_bundle": str(pki.ca_cert)},
                "operation_timeout": 1,
            },
            "driver": {"package": "/p", "hardware_id": "Root\\LkdhTestDriver", "lkdctl": "/l.exe"},
        }
    )
    assert (config.winrm.transport, config.winrm.scheme) == ("ntlm", "https")
    with ConfiguredSessions().winrm(config.host, config.winrm) as session:
        payload = os.urandom(200_000)  # more than one Send envelope
        assert run_digest(session, payload) == f"{len(payload)} {hashlib.sha256(payload).hexdigest()}"
        assert run_digest(session, b"again") == f"5 {hashlib.sha256(b'again').hexdigest()}"
    assert https_ntlm.service.auth_failures == []


def test_a_wrong_password_is_an_auth_failure_that_never_shows_the_password(
    https_ntlm: RunningWSManServer, pki: ServerPKI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "Not-the-pw-77a1"
    with ntlm_session(https_ntlm, pki, wrong) as session, pytest.raises(SessionError) as raised:
        session.run(["digest.exe"], timeout=10)
    assert raised.value.stage == "auth"
    assert https_ntlm.service.auth_failures, "the acceptor itself refused the logon"
    for secret in (wrong, PASSWORD):
        assert secret not in str(raised.value) and secret not in caplog.text


def test_a_channel_binding_for_another_certificate_is_refused(pki: ServerPKI, tmp_path: Path) -> None:
    """A client that saw this certificate cannot be replayed to a listener bound to another one (the
    check that defeats a TLS-intercepting relay): Extended Protection, as Windows enforces it."""
    other = make_test_pki(tmp_path / "other-pki")
    bindings = tls_server_end_point(certificate_der(other.server_cert))
    with running_wsman_server(USER, PASSWORD, pki, ntlm=tmp_path, channel_bindings=bindings) as server:
        with ntlm_session(server, pki) as session, pytest.raises(SessionError) as raised:
            session.run(["digest.exe"], timeout=10)
        assert raised.value.stage == "auth"
        assert any("channel binding" in failure.lower() for failure in server.service.auth_failures), (
            server.service.auth_failures
        )


def test_over_http_every_message_is_sealed_and_unsealed(http_ntlm: RunningWSManServer) -> None:
    with ntlm_session(http_ntlm, None) as session:
        payload = os.urandom(300_000)
        assert run_digest(session, payload) == f"{len(payload)} {hashlib.sha256(payload).hexdigest()}"
    assert http_ntlm.service.auth_failures == []
    assert http_ntlm.service.commands_started, "the sealed Command reached the shell service"


def test_an_unsealed_message_over_http_is_refused(http_ntlm: RunningWSManServer) -> None:
    """pywinrm with message encryption turned off: the listener, like Windows with
    AllowUnencrypted = false, will not take plain SOAP over HTTP."""
    session = ntlm_session(http_ntlm, None)
    session._protocol.transport.message_encryption = "never"  # what a careless client would send
    with session, pytest.raises(SessionError):
        session.run(["digest.exe"], timeout=10)
    assert any("not an encrypted WinRM message" in failure for failure in http_ntlm.service.auth_failures)

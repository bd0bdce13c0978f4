"""`lkdh target check`: network stages against real sockets on loopback, TLS against a real TLS server
with certificates made here, then unit tests of the reporting logic with scripted PowerShell answers.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import json
import logging
import socket
import ssl
import threading
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sshd_server
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from required_tools import tool_missing

from harness.target.windows import powershell
from harness.target.windows.config import TargetConfig, TlsTrust
from harness.target.windows.session import CommandResult, SessionError
from harness.target.windows.stage_check import (
    ConfiguredSessions,
    StageFailed,
    StageResult,
    check_target,
    check_tls,
    format_stage_report,
)

STAGES = [
    "resolve",
    "tcp",
    "tls",
    "auth+powershell",
    "driver service",
    "dump folder",
    "ssh",
    "hypervisor",
]
NOW = datetime.datetime.now(datetime.UTC)


# ---------------------------------------------------------------- certificates and a TLS server


@dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path
    der: bytes


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(
    folder: Path,
    label: str,
    *,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
    ca: bool = False,
    ips: Sequence[str] = ("127.0.0.1",),
    dns: Sequence[str] = (),
    not_after: datetime.datetime | None = None,
) -> tuple[Issued, x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(f"lkdh-test-{label}")
    signer_cert, signer_key = issuer if issuer else (None, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(signer_cert.subject if signer_cert else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=10))
        .not_valid_after(not_after or NOW + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if signer_cert is not None:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key())
        builder = builder.add_extension(aki, critical=False)
    if ca:
        usage = x509.KeyUsage(True, False, False, False, False, True, True, False, False)
        builder = builder.add_extension(usage, critical=True)
    else:
        names = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips] + [x509.DNSName(d) for d in dns]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(signer_key, hashes.SHA256())
    cert_path, key_path = folder / f"{label}.pem", folder / f"{label}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return Issued(cert_path, key_path, cert.public_bytes(serialization.Encoding.DER)), cert, key


@dataclass(frozen=True)
class Pki:
    ca: Issued
    other_ca: Issued
    server: Issued
    self_signed: Issued
    wrong_name: Issued
    expired: Issued


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca, ca_cert, ca_key = _issue(folder, "ca", ca=True)
    other_ca, _, _ = _issue(folder, "other-ca", ca=True)
    signer = (ca_cert, ca_key)
    server, _, _ = _issue(folder, "vm", issuer=signer)
    self_signed, _, _ = _issue(folder, "self-signed")
    wrong_name, _, _ = _issue(folder, "wrong-name", issuer=signer, ips=(), dns=("other.example.test",))
    expired, _, _ = _issue(folder, "expired", issuer=signer, not_after=NOW - datetime.timedelta(days=1))
    return Pki(ca, other_ca, server, self_signed, wrong_name, expired)


class TlsServer:
    """A TLS listener on 127.0.0.1 that completes handshakes (or lets clients abort them) and hangs up."""

    def __init__(self, identity: Issued) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(identity.cert, identity.key)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(5)
            try:
                with self.context.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                pass  # the client refused our certificate: that is what some tests want

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        self.listener.close()


@pytest.fixture
def serve(pki: Pki) -> Iterator[Any]:
    servers: list[TlsServer] = []

    def start(identity: Issued) -> int:
        servers.append(TlsServer(identity))
        return servers[-1].port

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def listener() -> Iterator[int]:
    """A loopback port that accepts TCP (the kernel's backlog) and never says anything."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock.getsockname()[1]


def _closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return sock.getsockname()[1]


# ---------------------------------------------------------------- configs and scripted sessions


def _config(
    host: str, port: int, *, tls: dict | None = None, http: bool = False, **extra: Any
) -> TargetConfig:
    winrm: dict[str, Any] = {"port": port, "username": "lkdh-admin", "password": {"env": "LKDH_TEST_PW"}}
    winrm |= {"connect_timeout": 2, "operation_timeout": 2}
    if http:
        winrm |= {"scheme": "http", "allow_insecure_http": True}
    if tls is not None:
        winrm["tls"] = tls
    data = {
        "name": "lab",
        "host": host,
        "winrm": winrm,
        "driver": {"package": "/p", "hardware_id": "Root\\LkdhTestDriver", "lkdctl": "/l.exe"},
        "timeouts": {"command": 5},
        **extra,
    }
    return TargetConfig.model_validate(data)


def _answer(value: dict) -> CommandResult:
    payload = base64.b64encode(json.dumps(value).encode()).decode()
    return CommandResult(0, f"{powershell.RESULT_MARKER}{payload}\n".encode(), b"")


def _script_error(message: str) -> CommandResult:
    failure = {"message": message, "category": "ObjectNotFound", "script_line": 3}
    payload = base64.b64encode(json.dumps(failure).encode()).decode()
    return CommandResult(1, f"{powershell.ERROR_MARKER}{payload}\n".encode(), b"")


HOST_INFO = {
    "computer_name": "WIN11-LAB",
    "user": "WIN11-LAB\\lkdh-admin",
    "elevated": True,
    "powershell_version": "5.1.22621.2506",
    "language_mode": "FullLanguage",
    "os_product": "Windows 10 Pro",
    "os_display_version": "23H2",
    "os_build": "22631.3007",
}
DRIVER_RUNNING = {
    "service": {
        "exists": True,
        "state": "Running",
        "path": "C:\\Windows\\System32\\drivers\\Lkdh.sys",
        "file_version": "1.0.0.1",
    },
    "device": {
        "present": True,
        "instance_id": "ROOT\\SYSTEM\\0001",
        "problem_code": 0,
        "problem": "",
        "driver_version": "1.0.0.1",
    },
}
FOLDERS_OK = {
    "live": {"path": "C:\\Windows\\LiveKernelReports", "exists": True, "writable": True, "free_bytes": 2**34},
    "minidump": {"path": "C:\\Windows\\Minidump", "exists": True, "writable": True, "free_bytes": 2**34},
}


class ScriptedSession:
    """Answers each PowerShell template with a scripted result, recognising it by the script it carries."""

    def __init__(self, host: str, answers: dict[str, CommandResult | Exception]) -> None:
        self.host = host
        self.answers = answers
        self.ran: list[str] = []
        self.closed = False

    def run(self, argv, *, stdin=b"", timeout, on_output=None) -> CommandResult:
        name = next(n for n in self.answers if stdin.endswith(powershell.script_text(n).encode()))
        self.ran.append(name)
        answer = self.answers[name]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def close(self) -> None:
        self.closed = True


class ScriptedSessions:
    """The session factory: scripted WinRM answers, and an SSH `hostname` result."""

    def __init__(self, answers: dict[str, CommandResult | Exception], ssh: CommandResult | None = None):
        self.winrm_session = ScriptedSession("vm", answers)
        self.ssh_result = ssh or CommandResult(0, b"WIN11-LAB\r\n", b"")
        self.opened: list[str] = []

    def winrm(self, host, settings):
        self.opened.append("winrm")
        return self.winrm_session

    def ssh(self, host, settings, *, posix=False):
        self.opened.append("ssh")
        result = self.ssh_result

        class Ssh:
            def run(self, argv, *, stdin=b"", timeout, on_output=None):
                assert list(argv) == ["hostname"]
                return result

            def close(self) -> None:
                pass

        return Ssh()


def _healthy() -> dict[str, CommandResult | Exception]:
    return {
        "host-info": _answer(HOST_INFO),
        "driver-status": _answer(DRIVER_RUNNING),
        "dump-folder-status": _answer(FOLDERS_OK),
    }


def _by_stage(results: list[StageResult]) -> dict[str, StageResult]:
    assert [r.stage for r in results] == STAGES
    return {r.stage: r for r in results}


# ---------------------------------------------------------------- network stages, real sockets


def test_an_unresolvable_host_fails_at_resolve_and_nothing_else_is_tried() -> None:
    sessions = ScriptedSessions(_healthy())
    results = _by_stage(check_target(_config("name.invalid", 5986), session_factory=sessions))
    assert not results["resolve"].ok
    assert results["resolve"].message.startswith("cannot resolve name.invalid: ")
    for stage in STAGES[1:-1]:
        assert (results[stage].ok, results[stage].ran) == (False, False)
        assert results[stage].message == "not run (because resolve failed)"
    assert results["hypervisor"].ok and results["hypervisor"].ran  # another machine: still checked
    assert sessions.opened == []


def test_a_closed_port_fails_at_tcp() -> None:
    port = _closed_port()
    results = _by_stage(check_target(_config("127.0.0.1", port), session_factory=ScriptedSessions({})))
    assert results["resolve"].ok and results["resolve"].message == "127.0.0.1 is 127.0.0.1"
    assert not results["tcp"].ok
    assert results["tcp"].message == f"127.0.0.1:{port} refused the connection (is the WinRM listener up?)"
    assert results["tls"].message == "not run (because tcp failed)"


def test_an_untrusted_certificate_fails_tls_naming_the_verification_error(pki: Pki, serve: Any) -> None:
    port = serve(pki.self_signed)
    sessions = ScriptedSessions(_healthy())
    results = _by_stage(check_target(_config("127.0.0.1", port), session_factory=sessions))
    assert results["tcp"].ok
    tls = results["tls"]
    assert not tls.ok
    assert tls.message.startswith("certificate not trusted: self-signed certificate; server presented ")
    assert "subject CN=lkdh-test-self-signed" in tls.message
    assert f"SHA-256 {hashlib.sha256(pki.self_signed.der).hexdigest().upper()}" in tls.message  # ready to pin
    assert results["auth+powershell"].message == "not run (because tls failed)"
    assert sessions.opened == []  # no credentials were offered to an untrusted server


@pytest.mark.parametrize(
    ("identity", "ca", "expected"),
    [
        ("server", "other_ca", "certificate not trusted: unable to get local issuer certificate"),
        (
            "wrong_name",
            "ca",
            "certificate not trusted: IP address mismatch, certificate is not valid for '127.0.0.1'",
        ),
        ("expired", "ca", "certificate not trusted: certificate has expired"),
    ],
)
def test_verification_errors_are_reported_exactly(
    pki: Pki, serve: Any, identity: str, ca: str, expected: str
) -> None:
    port = serve(getattr(pki, identity))
    trust = TlsTrust(ca_bundle=getattr(pki, ca).cert)
    with pytest.raises(StageFailed) as caught:
        check_tls("127.0.0.1", port, trust, timeout=5)
    assert str(caught.value).startswith(expected)
    if identity == "expired":
        assert "EXPIRED" in str(caught.value)


def test_a_certificate_from_the_configured_ca_passes_and_is_described(pki: Pki, serve: Any) -> None:
    port = serve(pki.server)
    message = check_tls("127.0.0.1", port, TlsTrust(ca_bundle=pki.ca.cert), timeout=5)
    assert message.startswith(f"verified against CA bundle {pki.ca.cert}: subject CN=lkdh-test-vm, expires ")
    assert "(in 29 days)" in message or "(in 30 days)" in message


@pytest.mark.parametrize("digest", [hashlib.sha1, hashlib.sha256])
def test_a_pinned_thumbprint_matches_or_names_both(pki: Pki, serve: Any, digest: Any) -> None:
    port = serve(pki.self_signed)  # pinning trusts exactly this certificate, self-signed or not
    actual = digest(pki.self_signed.der).hexdigest().upper()
    pinned = TlsTrust(pinned_thumbprint=":".join(actual[i : i + 2] for i in range(0, len(actual), 2)))
    assert check_tls("127.0.0.1", port, pinned, timeout=5).startswith(
        "pinned thumbprint matches: subject CN="
    )
    wrong = TlsTrust(pinned_thumbprint=digest(pki.server.der).hexdigest())
    with pytest.raises(StageFailed) as caught:
        check_tls("127.0.0.1", port, wrong, timeout=5)
    pinned_value = digest(pki.server.der).hexdigest().upper()
    expected = f"certificate thumbprint {actual} does not match the pinned {pinned_value}"
    assert str(caught.value).startswith(expected)


def test_skipping_verification_is_reported_loudly(pki: Pki, serve: Any) -> None:
    port = serve(pki.self_signed)
    trust = TlsTrust(insecure_skip_verify=True, i_accept_that_credentials_can_be_stolen=True)
    assert check_tls("127.0.0.1", port, trust, timeout=5).startswith("NOT VERIFIED (insecure_skip_verify): ")


def test_a_server_that_never_answers_the_handshake_times_out(listener: int) -> None:
    with pytest.raises(StageFailed) as caught:
        check_tls("127.0.0.1", listener, TlsTrust(), timeout=0.3)
    assert str(caught.value) == f"TLS handshake with 127.0.0.1:{listener} got no answer within 0.3 s"


def test_a_missing_ca_bundle_is_named(tmp_path: Path, listener: int) -> None:
    with pytest.raises(StageFailed, match=r"CA bundle .*nope\.pem does not exist"):
        check_tls("127.0.0.1", listener, TlsTrust(ca_bundle=tmp_path / "nope.pem"), timeout=1)


# ---------------------------------------------------------------- reporting logic (unit tests)


def test_report_when_every_stage_passes(pki: Pki, serve: Any) -> None:
    port = serve(pki.server)
    config = _config(
        "127.0.0.1",
        port,
        tls={"ca_bundle": str(pki.ca.cert)},
        ssh={"user": "lkdh-admin", "key_file": "/k"},
    )
    sessions = ScriptedSessions(_healthy())
    results = _by_stage(check_target(config, session_factory=sessions))
    assert all(r.ok and r.ran for r in results.values()), format_stage_report(list(results.values()))
    assert results["auth+powershell"].message.startswith("WIN11-LAB\\lkdh-admin on WIN11-LAB: Windows 10 Pro")
    assert "service LkdhTestDriver Running" in results["driver service"].message
    assert results["dump folder"].message == (  # the folder DMF's 11-character ReportType names (F05)
        "live dumps to C:\\Windows\\LiveKernelReports\\LkdhTestDri (16.0 GiB free);"
        " minidump dumps to C:\\Windows\\Minidump (16.0 GiB free);"
        " ReportType 'LkdhTestDriver' as DMF truncates it: 11 characters (F05)"
    )
    assert results["ssh"].message == "logged in to 127.0.0.1:22 as lkdh-admin; hostname WIN11-LAB"
    assert sessions.winrm_session.ran == ["host-info", "driver-status", "dump-folder-status"]
    assert sessions.winrm_session.closed
    report = format_stage_report(list(results.values()))
    assert report.splitlines()[-1] == "target check passed"
    assert all(line.startswith("PASS  ") for line in report.splitlines()[:-1])


def test_report_when_authentication_fails(listener: int) -> None:
    answers = {"host-info": SessionError("auth", "127.0.0.1", "HTTP 401: user name or password rejected")}
    results = _by_stage(
        check_target(_config("127.0.0.1", listener, http=True), session_factory=ScriptedSessions(answers))
    )
    assert results["tls"].ok and not results["tls"].ran
    assert results["tls"].message.startswith("scheme http (allow_insecure_http)")
    assert results["auth+powershell"].message == "127.0.0.1: auth: HTTP 401: user name or password rejected"
    for stage in ("driver service", "dump folder", "ssh"):
        assert results[stage].message == "not run (because auth+powershell failed)"
    report = format_stage_report(list(results.values())).splitlines()
    assert report[2].startswith("skip  tls ")
    assert report[3].startswith("FAIL  auth+powershell ")
    assert report[4] == "----  driver service   not run (because auth+powershell failed)"
    assert report[-1] == "target check FAILED at: auth+powershell"


def test_an_account_without_elevation_fails_auth_stage(listener: int) -> None:
    answers = _healthy() | {"host-info": _answer(HOST_INFO | {"elevated": False})}
    results = _by_stage(
        check_target(_config("127.0.0.1", listener, http=True), session_factory=ScriptedSessions(answers))
    )
    assert results["auth+powershell"].message.startswith("logged in, but not as an elevated administrator")
    assert results["driver service"].message == "not run (because auth+powershell failed)"


def test_driver_and_dump_folder_problems_do_not_stop_the_check(listener: int) -> None:
    stopped = DRIVER_RUNNING | {
        "service": DRIVER_RUNNING["service"] | {"state": "Stopped"},
        "device": DRIVER_RUNNING["device"] | {"problem_code": 10, "problem": "CM_PROB_FAILED_START"},
    }
    answers = _healthy() | {
        "driver-status": _answer(stopped),
        "dump-folder-status": _script_error("Access to the registry key is denied."),
    }
    config = _config("127.0.0.1", listener, http=True, ssh={"user": "u", "key_file": "/k"})
    results = _by_stage(check_target(config, session_factory=ScriptedSessions(answers)))
    assert results["driver service"].message == (
        "service LkdhTestDriver is Stopped, not Running;"
        " device ROOT\\SYSTEM\\0001 has problem CM_PROB_FAILED_START (code 10)"
    )
    assert "Access to the registry key is denied." in results["dump folder"].message
    assert results["ssh"].ok  # not a network failure: later stages still run
    assert format_stage_report(list(results.values())).splitlines()[-1] == (
        "target check FAILED at: driver service, dump folder"
    )


def test_a_dump_folder_that_cannot_be_written_is_named(listener: int) -> None:
    folders = FOLDERS_OK | {"minidump": FOLDERS_OK["minidump"] | {"writable": False, "write_error": "denied"}}
    answers = _healthy() | {"dump-folder-status": _answer(folders)}
    results = _by_stage(
        check_target(_config("127.0.0.1", listener, http=True), session_factory=ScriptedSessions(answers))
    )
    assert results["dump folder"].message == "minidump folder C:\\Windows\\Minidump is not writable: denied"


def test_an_ssh_failure_is_reported_and_the_hypervisor_still_checked(listener: int) -> None:
    config = _config("127.0.0.1", listener, http=True, ssh={"user": "u", "key_file": "/k"})
    sessions = ScriptedSessions(_healthy(), ssh=CommandResult(255, b"", b"denied"))
    results = _by_stage(check_target(config, session_factory=sessions))
    assert results["ssh"].message == "`hostname` over SSH exited 255"
    assert results["hypervisor"].ran and results["hypervisor"].ok


def test_real_sessions_report_an_unset_password_variable(
    listener: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default session factory, with the real WinRM session: the secret is resolved first."""
    monkeypatch.delenv("LKDH_TEST_PW", raising=False)
    results = _by_stage(
        check_target(_config("127.0.0.1", listener, http=True), session_factory=ConfiguredSessions())
    )
    assert results["auth+powershell"].message == "environment variable LKDH_TEST_PW is not set"


def test_no_secret_reaches_the_report_or_the_log(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A real WinRM session to a loopback port that hangs up: the failure is reported, the password is not."""
    secret = "Pa55-for-the-stage-check-8d2e"
    monkeypatch.setenv("LKDH_TEST_PW", secret)
    stop = threading.Event()
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(0.1)

        def hang_up() -> None:
            while not stop.is_set():
                try:
                    server.accept()[0].close()
                except TimeoutError:
                    continue

        thread = threading.Thread(target=hang_up, daemon=True)
        thread.start()
        try:
            with caplog.at_level(logging.DEBUG):
                config = _config("127.0.0.1", server.getsockname()[1], http=True)
                results = check_target(config, session_factory=ConfiguredSessions())
        finally:
            stop.set()
            thread.join(timeout=5)
    by_stage = _by_stage(results)
    assert not by_stage["auth+powershell"].ok
    report = format_stage_report(results)
    assert secret not in report and secret not in repr(results) and secret not in caplog.text
    assert "LKDH_TEST_PW" in caplog.text  # the resolution was logged, by reference


def test_configured_sessions_open_a_real_ssh_session_from_the_config(tmp_path: Path) -> None:
    """The default factory maps the config's ssh section onto SshSession; run against a real sshd."""
    if reason := sshd_server.sshd_missing_reason():
        tool_missing(reason)
    with sshd_server.SshdServer(tmp_path / "sshd") as server:
        ssh = server.ssh_settings()
        config = _config("127.0.0.1", 5986, ssh=ssh)
        assert config.ssh is not None and config.ssh_host == "127.0.0.1"
        with closing(ConfiguredSessions().ssh(config.ssh_host, config.ssh)) as session:
            result = session.run(["hostname"], timeout=10)
    assert result.ok
    assert result.stdout.strip() == socket.gethostname().encode()

"""`lkdh target check`: reach the machine a target config describes, one stage at a time.

A WinRM failure seen from pywinrm is a traceback about HTTP adapters; a user needs to know *which*
step failed: the name does not resolve, the port is closed, the certificate is not trusted (and
why), the password is wrong, the driver is not installed. So the check walks the stages in the order
a connection passes them, says what each found (addresses, certificate subject and expiry,
host info), and stops at the first failing network stage: everything after it would only fail
again for the same reason, so it is reported as "not run (because X failed)".

The hypervisor is the exception: it is another machine, and when the VM is unreachable, knowing the
hypervisor can revert it is exactly what the user needs next. It is only asked `check()`, never to
revert.

The TLS stage does its own handshake with the standard library rather than through pywinrm, so the
exact verification error (self-signed, expired, wrong host name, thumbprint mismatch) reaches the
user, together with the certificate the server presented and its thumbprints, ready to pin.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509

from harness.target.base import TargetError
from harness.target.windows import powershell
from harness.target.windows.command_channel import command_endpoint, command_session, describe_channel
from harness.target.windows.config import (
    DMF_REPORT_TYPE_KEPT,
    DriverSettings,
    SshSettings,
    TargetConfig,
    TlsTrust,
    WinRMSettings,
    report_folder_name,
)
from harness.target.windows.hypervisor import SessionOpener, hypervisor_from_config
from harness.target.windows.name_resolution import (
    ResolutionTimeout,
    create_connection_within,
    getaddrinfo_within,
)
from harness.target.windows.session import RemoteSession

NETWORK_STAGES = ("resolve", "tcp", "tls", "auth+powershell", "ssh")
"""A failure here means nothing later can be reached either."""


@dataclass(frozen=True)
class StageResult:
    """One stage of the check: whether it passed, what it found, and how long it took.

    `ran` is False for a stage that was skipped (TLS over plain HTTP) or not run because an earlier
    one failed; a stage not run is not ok.
    """

    stage: str
    ok: bool
    message: str
    seconds: float
    ran: bool = True


class StageFailed(Exception):
    """A stage found a problem; the message is what the report shows."""


class StageSkipped(Exception):
    """A stage that does not apply to this config (the message says why); it counts as ok."""


class ConfiguredSessions:
    """Opens the real WinRM and SSH sessions a config describes, resolving its secrets on the way.

    The session modules are imported on first use: pywinrm and paramiko are needed only when a real
    machine is contacted, not to load or validate a config.
    """

    def winrm(self, host: str, settings: WinRMSettings) -> RemoteSession:
        from harness.target.windows.winrm_session import WinRMSession

        return WinRMSession(
            host,
            port=settings.port,
            username=settings.username,
            password=settings.password.resolve() if settings.password is not None else None,
            transport=settings.transport,
            scheme=settings.scheme,
            ca_bundle=settings.tls.ca_bundle,
            pinned_thumbprint=settings.tls.pinned_thumbprint,
            client_cert=settings.client_cert,
            client_key=settings.client_key,
            operation_timeout=settings.operation_timeout,
            connect_timeout=settings.connect_timeout,
            allow_insecure_http=settings.allow_insecure_http,
            insecure_skip_verify=settings.tls.insecure_skip_verify,
        )

    def ssh(self, host: str, settings: SshSettings, *, posix: bool = False) -> RemoteSession:
        from harness.target.windows.ssh_session import SshSession

        return SshSession(
            host,
            settings.port,
            settings.user,
            settings.key_file,
            passphrase=settings.passphrase.resolve() if settings.passphrase is not None else None,
            known_hosts=settings.known_hosts,
            connect_timeout=settings.connect_timeout,
            keepalive=settings.keepalive,
            posix=posix,
        )


def check_target(config: TargetConfig, *, session_factory: SessionOpener | None = None) -> list[StageResult]:
    """Every stage's result, in order; nothing on the machine is changed."""
    checks = _Checks(config, session_factory or ConfiguredSessions())
    stages: list[tuple[str, Callable[[], str]]] = [
        ("resolve", checks.resolve),
        ("tcp", checks.tcp),
        ("tls", checks.tls),
        ("auth+powershell", checks.auth_and_powershell),
        ("driver service", checks.driver_service),
        ("dump folder", checks.dump_folder),
        ("ssh", checks.ssh),
    ]
    results: list[StageResult] = []
    try:
        failed_network_stage = None
        for stage, run in stages:
            if failed_network_stage is not None:
                reason = f"not run (because {failed_network_stage} failed)"
                results.append(StageResult(stage, False, reason, 0.0, ran=False))
                continue
            results.append(_timed(stage, run))
            if not results[-1].ok and stage in NETWORK_STAGES:
                failed_network_stage = stage
        results.append(_timed("hypervisor", checks.hypervisor))
    finally:
        checks.close()
    return results


def _timed(stage: str, run: Callable[[], str]) -> StageResult:
    start = time.monotonic()
    try:
        message, ok, ran = run(), True, True
    except StageSkipped as skipped:
        message, ok, ran = str(skipped), True, False
    except (StageFailed, TargetError) as failure:  # sessions and credentials say what and where
        message, ok, ran = str(failure), False, True
    except Exception as exc:  # anything else (a library's own error) is still a finding, not a traceback
        message, ok, ran = f"{type(exc).__name__}: {exc}", False, True
    return StageResult(stage, ok, message, time.monotonic() - start, ran)


class _Checks:
    """The stages themselves; the command session opened by auth+powershell serves the two after it.

    Which connection that is, `commands` says (command_channel.py): over WinRM, resolve and tcp are
    the WinRM listener's and tls its certificate; over Windows OpenSSH (`commands: ssh`) they are
    the SSH server's, tls does not apply (the host key is checked against known_hosts at login),
    and the ssh stage checks SFTP on the same server. auth+powershell names the channel it used.
    """

    def __init__(self, config: TargetConfig, sessions: SessionOpener) -> None:
        self.config = config
        self.sessions = sessions
        self.commands: RemoteSession | None = None

    @property
    def _over_ssh(self) -> bool:
        return self.config.commands == "ssh"

    @property
    def _connect_timeout(self) -> float:
        settings = self.config.ssh if self._over_ssh else self.config.winrm
        assert settings is not None  # TargetConfig requires the commands' section
        return settings.connect_timeout

    def resolve(self) -> str:
        host, port = command_endpoint(self.config)
        try:
            infos = getaddrinfo_within(host, port, self._connect_timeout)
        except socket.gaierror as exc:
            raise StageFailed(f"cannot resolve {host}: {exc.strerror}") from None
        except ResolutionTimeout as exc:
            raise StageFailed(f"cannot resolve {host}: {exc}") from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        return f"{host} is {', '.join(addresses)}"

    def tcp(self) -> str:
        host, port = command_endpoint(self.config)
        timeout = self._connect_timeout
        listener = "sshd (Windows OpenSSH server)" if self._over_ssh else "the WinRM listener"
        try:
            with create_connection_within(host, port, timeout) as sock:
                peer = sock.getpeername()
        except ResolutionTimeout as exc:
            raise StageFailed(f"cannot resolve {host}: {exc}") from None
        except TimeoutError:
            raise StageFailed(f"no answer from {host}:{port} within {timeout:g} s (firewall?)") from None
        except ConnectionRefusedError:
            raise StageFailed(f"{host}:{port} refused the connection (is {listener} up?)") from None
        except OSError as exc:
            raise StageFailed(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from None
        return f"connected to {peer[0]}:{peer[1]}"

    def tls(self) -> str:
        if self._over_ssh:
            raise StageSkipped(
                "commands: ssh: no TLS; the VM's SSH host key is checked against known_hosts at login"
            )
        settings = self.config.winrm
        assert settings is not None
        if settings.scheme == "http":
            raise StageSkipped("scheme http (allow_insecure_http): WinRM traffic is not protected by TLS")
        return check_tls(
            self.config.host,
            settings.port,
            settings.tls,
            timeout=settings.connect_timeout,
            client_cert=settings.client_cert,
            client_key=settings.client_key,
        )

    def auth_and_powershell(self) -> str:
        self.commands = command_session(self.config, self.sessions)
        try:
            info = self._script("host-info", {})
        except powershell.ScriptError as failure:  # logged in, but the script did not run as sent
            if not self._over_ssh:
                raise
            raise StageFailed(
                f"{failure} (over SSH the command line goes to the account's default shell, which must"
                " be cmd.exe: HKLM\\SOFTWARE\\OpenSSH\\DefaultShell unset or cmd.exe)"
            ) from None
        return f"{host_info_verdict(info)}; {describe_channel(self.config)}"

    def driver_service(self) -> str:
        driver = self.config.driver
        info = self._script(
            "driver-status", {"service_name": driver.service_name, "hardware_id": driver.hardware_id}
        )
        return driver_verdict(info, driver)

    def dump_folder(self) -> str:
        info = self._script("dump-folder-status", {})
        return dump_folder_verdict(info, self.config.live_dumps.report_type)

    def ssh(self) -> str:
        settings, host = self.config.ssh, self.config.ssh_host
        if settings is None or host is None:
            raise StageSkipped("no ssh section: files travel over WinRM in chunks")
        if self._over_ssh:
            return self._sftp_on_the_command_connection()
        with closing(self.sessions.ssh(host, settings)) as session:
            result = session.run(["hostname"], timeout=self.config.timeouts.command)
        if not result.ok:
            raise StageFailed(f"`hostname` over SSH exited {result.exit_code}")
        name = result.stdout.decode("utf-8", "replace").strip()
        return f"logged in to {host}:{settings.port} as {settings.user}; hostname {name}"

    def _sftp_on_the_command_connection(self) -> str:
        """Logging in was proven by the commands; SFTP is a subsystem of its own (sshd_config's
        `Subsystem sftp`), so it is opened and asked for its home folder."""
        open_sftp = getattr(self.commands, "open_sftp", None)
        if open_sftp is None:
            raise StageSkipped("the command session offers no SFTP to check")
        try:
            with closing(open_sftp()) as sftp:
                home = sftp.normalize(".")
        except (OSError, EOFError) as error:
            raise StageFailed(f"SFTP does not answer on the command connection: {error}") from None
        return f"SFTP answers on the command connection (home {home})"

    def hypervisor(self) -> str:
        """Asked once and closed: a QMP monitor or libvirt connection `check` opened is let go."""
        with closing(hypervisor_from_config(self.config.hypervisor, self.sessions)) as hypervisor:
            return hypervisor.check()

    def _script(self, name: str, params: dict[str, powershell.JsonValue]) -> dict:
        assert self.commands is not None
        invocation = powershell.invocation(name, params)
        result = self.commands.run(
            invocation.argv, stdin=invocation.stdin, timeout=self.config.timeouts.command
        )
        return powershell.parse_result(result, name, host=self.config.host)

    def close(self) -> None:
        if self.commands is not None:
            self.commands.close()


def driver_verdict(info: dict, driver: DriverSettings) -> str:
    """driver-status's answer judged: the service runs and its device is started (CM problem 0)."""
    service = info.get("service") or {}
    device = info.get("device")
    problems = []
    if not service.get("exists"):
        problems.append(f"service {driver.service_name} is not installed")
    elif service.get("state") != "Running":
        problems.append(
            f"service {driver.service_name} is {service.get('state') or 'in no state'}, not Running"
        )
    if device is not None and not device.get("present"):
        problems.append(f"no device with hardware id {driver.hardware_id}")
    elif device is not None and device.get("problem_code"):
        problems.append(
            f"device {device.get('instance_id')} has problem {device.get('problem')}"
            f" (code {device.get('problem_code')})"
        )
    if problems:
        raise StageFailed("; ".join(problems))
    found = f"service {driver.service_name} Running ({service.get('path')}"
    found += f", file version {service.get('file_version')})"
    if device is not None:
        found += f"; device {device.get('instance_id')} started, driver {device.get('driver_version')}"
    return found


def dump_folder_verdict(info: dict, report_type: str) -> str:
    """dump-folder-status's answer judged: both dump folders exist and this account can write there."""
    found, problems = [], []
    for kind in ("live", "minidump"):
        folder = info.get(kind) or {}
        path = folder.get("path", "?")
        if not folder.get("exists"):
            problems.append(f"{kind} folder {path} does not exist")
        elif not folder.get("writable"):
            problems.append(
                f"{kind} folder {path} is not writable: {folder.get('write_error') or 'no reason given'}"
            )
        else:
            free = int(folder.get("free_bytes") or 0) / 2**30
            shown = f"{path}\\{report_folder_name(report_type)}" if kind == "live" else path
            found.append(f"{kind} dumps to {shown} ({free:.1f} GiB free)")
    if problems:
        raise StageFailed("; ".join(problems))
    if report_folder_name(report_type) != report_type:
        found.append(
            f"ReportType {report_type!r} as DMF truncates it: {DMF_REPORT_TYPE_KEPT} characters (F05)"
        )
    return "; ".join(found)


def host_info_verdict(info: dict) -> str:
    """host-info's answer judged: the harness installs drivers and sends admin-only IOCTLs (F26), so
    the account must be elevated, and its scripts need PowerShell's FullLanguage mode."""
    found = (
        f"{info.get('user')} on {info.get('computer_name')}: {info.get('os_product')}"
        f" {info.get('os_display_version')} build {info.get('os_build')},"
        f" PowerShell {info.get('powershell_version')}"
    )
    if info.get("elevated") is not True:
        raise StageFailed(f"logged in, but not as an elevated administrator: {found}")
    if info.get("language_mode") != "FullLanguage":
        raise StageFailed(f"PowerShell runs in {info.get('language_mode')} mode, not FullLanguage: {found}")
    return found


def check_tls(
    host: str,
    port: int,
    trust: TlsTrust,
    *,
    timeout: float,
    client_cert: Path | None = None,
    client_key: Path | None = None,
) -> str:
    """Handshake with `trust` and describe the certificate; raises StageFailed with the exact reason."""
    context = _client_context(trust)
    if client_cert is not None:
        context.load_cert_chain(client_cert, client_key)
    try:
        der = _handshake(host, port, context, timeout)
    except ssl.SSLCertVerificationError as exc:
        presented = _presented_certificate(host, port, timeout)
        raise StageFailed(
            f"certificate not trusted: {exc.verify_message}; server presented {presented}"
        ) from None
    except ResolutionTimeout as exc:
        raise StageFailed(f"cannot resolve {host}: {exc}") from None
    except TimeoutError:
        raise StageFailed(f"TLS handshake with {host}:{port} got no answer within {timeout:g} s") from None
    except ssl.SSLError as exc:
        raise StageFailed(f"TLS handshake with {host}:{port} failed: {exc.reason or exc}") from None
    except OSError as exc:
        raise StageFailed(f"TLS connection to {host}:{port} failed: {exc.strerror or exc}") from None
    described = describe_certificate(der)
    if trust.mode == "pinned":
        assert trust.pinned_thumbprint is not None
        actual = _thumbprint(der, len(trust.pinned_thumbprint))
        if actual != trust.pinned_thumbprint:
            raise StageFailed(
                f"certificate thumbprint {actual} does not match the pinned {trust.pinned_thumbprint};"
                f" server presented {described}"
            )
        return f"pinned thumbprint matches: {described}"
    if trust.mode == "insecure":
        return f"NOT VERIFIED (insecure_skip_verify): {described}"
    source = f"CA bundle {trust.ca_bundle}" if trust.mode == "ca_bundle" else "the system trust store"
    return f"verified against {source}: {described}"


def _client_context(trust: TlsTrust) -> ssl.SSLContext:
    if trust.mode in ("system", "ca_bundle"):
        cafile = str(trust.ca_bundle) if trust.ca_bundle is not None else None
        if trust.ca_bundle is not None and not trust.ca_bundle.is_file():
            raise StageFailed(f"CA bundle {trust.ca_bundle} does not exist")
        return ssl.create_default_context(cafile=cafile)
    return _unverified_context()


def _unverified_context() -> ssl.SSLContext:
    """For a pinned thumbprint (checked after the handshake) and for showing an untrusted certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _handshake(host: str, port: int, context: ssl.SSLContext, timeout: float) -> bytes:
    with (
        create_connection_within(host, port, timeout) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    if der is None:
        raise StageFailed(f"{host}:{port} presented no certificate")
    return der


def _presented_certificate(host: str, port: int, timeout: float) -> str:
    """What the server shows to anyone, for the report of a failed verification."""
    try:
        return describe_certificate(_handshake(host, port, _unverified_context(), timeout))
    except (OSError, StageFailed) as exc:
        return f"a certificate that could not be fetched again ({type(exc).__name__})"


def _thumbprint(der: bytes, digits: int) -> str:
    algorithm = hashlib.sha1 if digits == 40 else hashlib.sha256
    return algorithm(der).hexdigest().upper()


def describe_certificate(der: bytes, now: datetime | None = None) -> str:
    """Subject, expiry and both thumbprints: what a user checks, and what they would pin."""
    certificate = x509.load_der_x509_certificate(der)
    expires = certificate.not_valid_after_utc
    now = now or datetime.now(UTC)
    if expires < now:
        expiry = f"EXPIRED {expires:%Y-%m-%d}"
    else:
        expiry = f"expires {expires:%Y-%m-%d} (in {(expires - now).days} days)"
    return (
        f"subject {certificate.subject.rfc4514_string()}, {expiry},"
        f" SHA-1 {_thumbprint(der, 40)}, SHA-256 {_thumbprint(der, 64)}"
    )


def format_stage_report(results: list[StageResult]) -> str:
    """One line per stage, then a verdict naming the first failure."""
    width = max((len(result.stage) for result in results), default=0)
    lines = []
    for result in results:
        mark = (
            "PASS" if result.ok and result.ran else "skip" if result.ok else "FAIL" if result.ran else "----"
        )
        timing = f" ({result.seconds:.2f} s)" if result.ran else ""
        lines.append(f"{mark}  {result.stage:<{width}}  {result.message}{timing}")
    failed = [result.stage for result in results if not result.ok and result.ran]
    if failed:
        lines.append(f"target check FAILED at: {', '.join(failed)}")
    else:
        lines.append("target check passed")
    return "\n".join(lines)

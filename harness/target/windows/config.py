"""The target config: which Windows machine to test, how to reach it, and how to reset it.

pydantic models only. DESIGN.md: `target/` knows nothing of YAML, so reading the file (with
`file:line:col` errors) is `harness.target_config`'s job; these models validate the plain data it
hands over, and can as well be built in code. Every model is frozen and forbids unknown keys, so a
misspelt setting is an error at its own line, never a silently ignored one.

Rules the models enforce, and why:
- Secrets are references (`{env: NAME}` or `{keyring: {...}}`, see credentials.py); a literal
  password is refused, because config files get committed and pasted into bug reports.
- TLS is verified by default (system trust store); a CA bundle or a pinned certificate thumbprint
  narrows trust, and turning verification off needs a second, loudly named switch.
- Plain-HTTP WinRM needs `allow_insecure_http: true`; Basic authentication over HTTP is refused
  outright (it sends the password in clear text).
- Names that reach remote commands (Hyper-V VM and checkpoint, libvirt domain and snapshot, the
  live-dump report type, the hardware id) match conservative patterns: they travel as arguments or
  PowerShell parameters, never through a shell string, but a narrow alphabet keeps it that way.
- Relative paths resolve against the config file's folder (the loader passes it as the validation
  context `base_dir`), and `~` expands, so a config means the same from any working directory.

A complete example (vm/example-target.yaml is written from it)::

    name: win11-lab
    host: win11-lab.example.test
    winrm:
      port: 5986
      scheme: https
      transport: ntlm
      username: lkdh-admin
      password: {env: LKDH_WINRM_PASSWORD}
      tls: {ca_bundle: certs/win11-lab.pem}
      operation_timeout: 20
      connect_timeout: 10
    ssh:
      port: 22
      user: lkdh-admin
      key_file: ~/.ssh/lkdh_ed25519
      known_hosts: known_hosts
    hypervisor:
      kind: libvirt
      ssh: {host: kvm-host.example.test, user: lkdh, key_file: ~/.ssh/lkdh_ed25519,
            known_hosts: known_hosts}
      uri: qemu:///system
      domain: win11-lab
      snapshot: clean-driver-ready
    driver:
      package: ../driver/build/LkdhTestDriver
      certificate: ../driver/build/LkdhTest.cer
      hardware_id: Root\\LkdhTestDriver
      service_name: LkdhTestDriver
      lkdctl: ../driver/build/lkdctl.exe
      dmf_build: bfac434
    verifier: {enabled: true, flags: standard}
    live_dumps: {report_type: LkdhTestDriver, minimum_spacing_seconds: 60}
    non_admin_user: {username: lkdh-user, password: {env: LKDH_USER_PASSWORD}}
    timeouts: {command: 120, boot: 600, transfer: 900}

A Hyper-V host instead: `hypervisor: {kind: hyperv, host: hv01.example.test, winrm: {...as above...},
vm_name: Win11 Lab, checkpoint: clean-driver-ready}`; a QEMU on the harness's own host, attached
through its QMP socket: `hypervisor: {kind: qemu, qmp_socket: /run/lkdh/win11.qmp, snapshot:
clean-driver-ready, disk_node: disk0, console_log: /var/log/lkdh/win11-console.log}`; no hypervisor:
`{kind: none}` (the default).

Commands over Windows OpenSSH instead of WinRM (one port to open, key auth, no WinRM listener):
`commands: ssh` with the `ssh` section above; `winrm` may then be left out (a Hyper-V hypervisor
still needs its own `hypervisor.winrm`, for the Hyper-V host).
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    StrictBool,
    StrictInt,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from harness.target.dmf_builds import DMF_BUILDS
from harness.target.windows.credentials import SecretRef


class StrictModel(BaseModel):
    """Frozen, and unknown keys are errors. A ValidationError's text quotes no input: a mistyped
    secret must not reach a terminal or a log through it (the loader describes inputs itself)."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}\Z){_LABEL}(?:\.{_LABEL})*\.?")


def _host(value: str) -> str:
    """A DNS name or an IP address; anything else (a URL, a space, a shell character) is a mistake."""
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    if not _HOSTNAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a host name or an IP address")
    return value


def _config_path(value: Path, info: ValidationInfo) -> Path:
    """`~` expanded; a relative path taken from the config file's folder when the loader gives one."""
    value = value.expanduser()
    base = (info.context or {}).get("base_dir")
    if value.is_absolute() or base is None:
        return value
    return Path(os.path.normpath(Path(base) / value))


def _thumbprint(value: Any) -> Any:
    """'ab:12 CD...' as Windows and openssl print it → 'AB12CD...'; SHA-1 (40) or SHA-256 (64 digits)."""
    if not isinstance(value, str):
        return value
    digits = re.sub(r"[\s:]", "", value).upper()
    if not re.fullmatch(r"[0-9A-F]{40}|[0-9A-F]{64}", digits):
        raise ValueError(
            "a certificate thumbprint is 40 (SHA-1) or 64 (SHA-256) hex digits, colons and spaces allowed"
        )
    return digits


def _matching(pattern: str, what: str, longest: int) -> AfterValidator:
    """A pattern check whose error says what is allowed in words, not as a regular expression."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if len(value) > longest or not compiled.fullmatch(value):
            raise ValueError(f"{value!r} is not {what} (at most {longest} characters)")
        return value

    return AfterValidator(check)


Host = Annotated[str, Strict(), AfterValidator(_host)]
Port = Annotated[StrictInt, Field(ge=1, le=65535)]
Seconds = Annotated[float, Strict(), Field(gt=0, le=86400)]
ConfigPath = Annotated[Path, AfterValidator(_config_path)]
Label = Annotated[
    str, Strict(), _matching(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", "a label: letters, digits, '_', '.', '-'", 64)
]
UserName = Annotated[
    str,
    Strict(),
    _matching(
        r"[A-Za-z0-9_](?:[A-Za-z0-9 _.@\\-]*[A-Za-z0-9_.-])?",
        "a user name: letters, digits, ' ', '_', '.', '@', '-', a DOMAIN\\ prefix",
        256,
    ),
]
# Hyper-V names are often written with spaces ("Win11 Lab"); they reach PowerShell as data, not code.
HyperVName = Annotated[
    str,
    Strict(),
    _matching(
        r"[A-Za-z0-9_](?:[A-Za-z0-9 _.()-]*[A-Za-z0-9_.()-])?",
        "a Hyper-V name: letters, digits, inner spaces, '_', '.', '(', ')', '-'",
        100,
    ),
]
# libvirt names reach `virsh` over SSH as shell-quoted arguments: no spaces, to keep them plain words.
LibvirtName = Annotated[
    str,
    Strict(),
    _matching(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*", "a libvirt name: letters, digits, '_', '.', '+', '-'", 100),
]
LibvirtUri = Annotated[
    str,
    Strict(),
    _matching(r"[a-z][a-z0-9+]*://[A-Za-z0-9._~:/?=&@%+,-]*", "a libvirt URI such as qemu:///system", 512),
]
HardwareId = Annotated[
    str,
    Strict(),
    _matching(r"[A-Za-z0-9_&.\\-]+", "a hardware id such as Root\\LkdhTestDriver", 200),
]
Thumbprint = Annotated[str, BeforeValidator(_thumbprint)]


def _dmf_build(value: str) -> str:
    if value not in DMF_BUILDS:
        raise ValueError(f"{value!r} is no listed DMF build; listed: {', '.join(sorted(DMF_BUILDS))}")
    return value


DmfBuildName = Annotated[str, Strict(), AfterValidator(_dmf_build)]


class TlsTrust(StrictModel):
    """Which server certificates WinRM accepts. Empty: the system trust store, host name checked."""

    ca_bundle: ConfigPath | None = None
    pinned_thumbprint: Thumbprint | None = None
    insecure_skip_verify: StrictBool = False
    i_accept_that_credentials_can_be_stolen: StrictBool = False
    """The loud second switch: without verification anyone on the path can pose as the VM."""

    @model_validator(mode="after")
    def _one_trust(self) -> TlsTrust:
        chosen = [self.ca_bundle is not None, self.pinned_thumbprint is not None, self.insecure_skip_verify]
        if sum(chosen) > 1:
            raise ValueError("give at most one of ca_bundle, pinned_thumbprint and insecure_skip_verify")
        if self.insecure_skip_verify and not self.i_accept_that_credentials_can_be_stolen:
            raise ValueError(
                "insecure_skip_verify lets anyone on the network pose as the VM and take its credentials;"
                " prefer ca_bundle or pinned_thumbprint, or also set"
                " i_accept_that_credentials_can_be_stolen: true"
            )
        if self.i_accept_that_credentials_can_be_stolen and not self.insecure_skip_verify:
            raise ValueError("i_accept_that_credentials_can_be_stolen only goes with insecure_skip_verify")
        return self

    @property
    def mode(self) -> Literal["system", "ca_bundle", "pinned", "insecure"]:
        if self.ca_bundle is not None:
            return "ca_bundle"
        if self.pinned_thumbprint is not None:
            return "pinned"
        return "insecure" if self.insecure_skip_verify else "system"


class WinRMSettings(StrictModel):
    """How to reach a machine's WinRM listener (the VM, or the Hyper-V host)."""

    port: Port = 5986
    scheme: Literal["https", "http"] = "https"
    transport: Literal["ntlm", "kerberos", "credssp", "certificate", "basic"] = "ntlm"
    username: UserName | None = None
    password: SecretRef | None = None
    tls: TlsTrust = TlsTrust()
    client_cert: ConfigPath | None = None
    client_key: ConfigPath | None = None
    operation_timeout: Seconds = 20
    connect_timeout: Seconds = 10
    allow_insecure_http: StrictBool = False

    @model_validator(mode="after")
    def _consistent(self) -> WinRMSettings:
        if self.scheme == "http":
            _check_plain_http(self)
        if self.transport == "certificate":
            if self.client_cert is None or self.client_key is None:
                raise ValueError("transport certificate needs client_cert and client_key")
        else:
            if self.client_cert is not None or self.client_key is not None:
                raise ValueError("client_cert and client_key are only for transport: certificate")
            if self.username is None or self.password is None:
                raise ValueError(f"transport {self.transport} needs username and password")
        return self


def _check_plain_http(settings: WinRMSettings) -> None:
    if not settings.allow_insecure_http:
        raise ValueError("scheme http carries WinRM without TLS; use https, or set allow_insecure_http: true")
    if settings.transport in ("basic", "certificate"):
        raise ValueError(f"transport {settings.transport} over http would expose credentials: use https")
    if settings.tls != TlsTrust():
        raise ValueError("tls settings have no effect with scheme http")


class SshSettings(StrictModel):
    """SFTP to the VM for large files (OpenSSH on Windows), and every command with `commands: ssh`.
    The host defaults to the target's."""

    host: Host | None = None
    port: Port = 22
    user: UserName
    key_file: ConfigPath
    passphrase: SecretRef | None = None
    known_hosts: ConfigPath | None = None
    connect_timeout: Seconds = 10
    keepalive: Seconds = 30
    sftp_client: Literal["auto", "openssh", "paramiko"] = "auto"
    """What carries file pulls: OpenSSH's `ssh` (at OpenSSH's speed; openssh_sftp.py) or paramiko's
    transport (about half of it). `auto`: OpenSSH when `ssh` is installed and the key has no
    passphrase (ssh in BatchMode, without an agent, cannot be given one)."""

    @model_validator(mode="after")
    def _openssh_takes_no_passphrase(self) -> SshSettings:
        if self.sftp_client == "openssh" and self.passphrase is not None:
            raise ValueError(
                "sftp_client openssh cannot use a key with a passphrase (ssh runs in BatchMode, without"
                " an agent): use sftp_client auto or paramiko, or a key without one"
            )
        return self


class SshEndpoint(SshSettings):
    """SSH to a machine other than the target (the libvirt host): the host must be named."""

    host: Host


class HyperVSettings(StrictModel):
    """Reset by restoring a Hyper-V checkpoint, through WinRM to the Hyper-V host."""

    kind: Literal["hyperv"]
    host: Host
    winrm: WinRMSettings
    vm_name: HyperVName
    checkpoint: HyperVName
    timeout: Seconds = 600


class LibvirtSettings(StrictModel):
    """Reset by reverting a libvirt domain snapshot.

    `client: virsh` (the default) runs `virsh snapshot-revert` over SSH on the libvirt host (`ssh`
    says how to get there). `client: libvirt-python` speaks libvirt's RPC from the harness itself
    (libvirt_api.py): the URI says where the host is (`qemu:///system` here, or
    `qemu+ssh://user@kvm-host/system`), so `ssh` is not given.
    """

    kind: Literal["libvirt"]
    client: Literal["virsh", "libvirt-python"] = "virsh"
    ssh: SshEndpoint | None = None
    uri: LibvirtUri = "qemu:///system"
    domain: LibvirtName
    snapshot: LibvirtName
    timeout: Seconds = 600

    @model_validator(mode="after")
    def _reachable(self) -> LibvirtSettings:
        if self.client == "virsh" and self.ssh is None:
            raise ValueError("client virsh runs virsh over SSH on the libvirt host: give `ssh`")
        if self.client == "libvirt-python" and self.ssh is not None:
            raise ValueError(
                "client libvirt-python reaches the host through the URI (qemu+ssh://user@host/system):"
                " `ssh` is only for client virsh"
            )
        return self


# QEMU snapshot tags and monitor node names reach QMP as JSON strings; a plain alphabet keeps logs readable.
QemuName = Annotated[
    str,
    Strict(),
    _matching(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*", "a QEMU name: letters, digits, '_', '.', '+', '-'", 100),
]


class QemuSettings(StrictModel):
    """Reset by loading an internal snapshot through the QMP socket of a QEMU running on this host.

    The harness attaches to a VM someone else started (by hand, a systemd unit, a CI step) with a
    QMP server socket, e.g. `-qmp unix:/run/lkdh/win11.qmp,server=on,wait=off`; it never starts or
    stops QEMU itself. `disk_node` is the `-blockdev` node-name of the qcow2 disk that holds the
    snapshot (and the VM state); `console_log` the file the serial console is written to
    (`-chardev file,path=...`), copied into the run's log after a crash when given.
    """

    kind: Literal["qemu"]
    qmp_socket: ConfigPath
    snapshot: QemuName
    disk_node: QemuName = "disk0"
    console_log: ConfigPath | None = None
    timeout: Seconds = 600


class NoHypervisorSettings(StrictModel):
    """No hypervisor: the machine cannot be reset, so scenarios that crash it cannot run twice."""

    kind: Literal["none"]


def _hypervisor_kind(value: Any) -> str | None:
    return value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)


HypervisorSettings = Annotated[
    Annotated[HyperVSettings, Tag("hyperv")]
    | Annotated[LibvirtSettings, Tag("libvirt")]
    | Annotated[QemuSettings, Tag("qemu")]
    | Annotated[NoHypervisorSettings, Tag("none")],
    Discriminator(
        _hypervisor_kind,
        custom_error_type="hypervisor_kind",
        custom_error_message="`kind` must be one of hyperv, libvirt, qemu, none",
    ),
]


class DriverSettings(StrictModel):
    """The test driver build to install on the VM, and the control program that talks to it."""

    package: ConfigPath
    """The folder with the .inf, .sys and .cat."""
    certificate: ConfigPath | None = None
    """The test-signing certificate to trust on the VM; None when the package is otherwise signed."""
    hardware_id: HardwareId
    service_name: Label = "LkdhTestDriver"
    """The kernel service the INF installs (AddService), which `lkdh target check` finds running."""
    lkdctl: ConfigPath
    dmf_build: DmfBuildName | None = None
    """The DMF build the driver is built against (harness/target/dmf_builds.py): it decides which
    known defects the VM has. Checked against the package's stamp and the driver's INFO reply;
    when omitted, the stamp (then INFO) says (driver_build.py)."""


class VerifierSettings(StrictModel):
    """Driver Verifier on the test driver: `standard` or a raw /flags value (0x209BB)."""

    enabled: StrictBool = True
    flags: Literal["standard"] | Annotated[StrictInt, Field(ge=0, le=0xFFFF_FFFF)] = "standard"


DMF_REPORT_TYPE_KEPT = 11
"""F05: DMF bfac434's config field is WCHAR ReportType[12] and the module forces ReportType[11] = 0."""


def report_folder_name(report_type: str) -> str:
    """The LiveKernelReports subfolder a driver asking for `report_type` writes to: the ReportType as
    DMF truncates it (F05), so 'LkdhTestDriver' lands in 'LkdhTestDri'."""
    return report_type[:DMF_REPORT_TYPE_KEPT]


class LiveDumpSettings(StrictModel):
    """Where the OS writes the driver's live dumps, and how often it agrees to (one per report type).

    `report_type` is what the driver asks DMF for (LKDH_REPORT_TYPE); the dumps land in
    LiveKernelReports\\<first 11 characters> (`folder_name`, F05).
    """

    report_type: Label = "LkdhTestDriver"
    minimum_spacing_seconds: Annotated[StrictInt, Field(ge=0, le=86400)] = 60

    @property
    def folder_name(self) -> str:
        return report_folder_name(self.report_type)


class UserAccount(StrictModel):
    """A second, non-administrator account for IOCTLs sent `as_user`."""

    username: UserName
    password: SecretRef


class Timeouts(StrictModel):
    """Wall-clock deadlines, in seconds: one remote command, one reboot, one file transfer."""

    command: Seconds = 120
    boot: Seconds = 600
    transfer: Seconds = 900


class TargetConfig(StrictModel):
    """One real Windows test machine: the root of a target config file.

    `commands` names the channel PowerShell commands travel on: `winrm` (the default) or `ssh`,
    Windows OpenSSH's server with its default shell, cmd.exe (command_channel.py). It is declared
    after `winrm` and `ssh` so that its check sees both, and a missing section is reported at the
    `commands:` line that asks for it.
    """

    name: Label
    host: Host
    winrm: WinRMSettings | None = None
    ssh: SshSettings | None = None
    commands: Annotated[Literal["winrm", "ssh"], Field(validate_default=True)] = "winrm"
    hypervisor: HypervisorSettings = NoHypervisorSettings(kind="none")
    driver: DriverSettings
    verifier: VerifierSettings = VerifierSettings()
    live_dumps: LiveDumpSettings = LiveDumpSettings()
    non_admin_user: UserAccount | None = None
    timeouts: Timeouts = Timeouts()

    @field_validator("commands")
    @classmethod
    def _channel_configured(cls, commands: str, info: ValidationInfo) -> str:
        """The channel's section is given. A section that failed its own validation is absent from
        `info.data` and has its own error already, so only a section left out is reported here."""
        if commands == "winrm" and "winrm" in info.data and info.data["winrm"] is None:
            raise ValueError(
                "commands go over WinRM (commands: winrm, the default): give a `winrm` section,"
                " or set commands: ssh to send them to Windows OpenSSH with the `ssh` section"
            )
        if commands == "ssh" and "ssh" in info.data and info.data["ssh"] is None:
            raise ValueError(
                "commands: ssh sends every command to Windows OpenSSH: give an `ssh` section"
                " (port, user, key_file, known_hosts)"
            )
        return commands

    @property
    def ssh_host(self) -> str | None:
        """The host SFTP connects to: `ssh.host`, else the target's; None without `ssh`."""
        return None if self.ssh is None else self.ssh.host or self.host

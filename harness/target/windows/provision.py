"""Making the VM ready for a scenario: test signing, certificate, driver, Verifier, live dumps.

Every step is idempotent and asks the machine first, so a VM reverted to a checkpoint that already
runs the package's build costs a few read-only calls. The loaded build is compared with the package
(image SHA-256), so a new build is installed over an old one (the old oemNN.inf deleted first).
Steps that need a reboot to take effect (test signing, Verifier, live-dump throttling) reboot once
at the end, confirmed by another boot identity; after it the driver must run from the package's
image, reboot or not, or provisioning fails saying what the device reports.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.target.base import TargetError
from harness.target.windows.config import TargetConfig
from harness.target.windows.guest import BootIdentity, Guest
from harness.target.windows.package_check import PackageFacts

log = logging.getLogger(__name__)

GUEST_ROOT = r"C:\ProgramData\lkdh"
"""Where the harness keeps the driver package and lkdctl.exe on the guest."""
RESTART_DELAY_SECONDS = 2
SHUTDOWN_GRACE_SECONDS = 120.0
"""How long a machine told to restart may go on answering from the old boot while it shuts down."""


@dataclass
class ProvisionReport:
    """What prepare() did, for the run log."""

    actions: list[str] = field(default_factory=list)
    rebooted: bool = False
    loaded: dict[str, Any] = field(default_factory=dict)
    """driver-status after provisioning: the build that runs (path, version, SHA-256, oemNN.inf)."""


def guest_path(*parts: str) -> str:
    return "\\".join([GUEST_ROOT, *parts])


def lkdctl_guest_path(config: TargetConfig) -> str:
    return guest_path("bin", config.driver.lkdctl.name)


def provision(guest: Guest, config: TargetConfig, package: PackageFacts) -> ProvisionReport:
    """Bring the package's build up on the machine as the config describes; TargetError says what
    failed. Ends with the driver running from exactly the package's .sys, or raises."""
    report = ProvisionReport()
    reboot = False
    signing = guest.script("enable-test-signing", {})
    if signing.get("reboot_required"):
        report.actions.append("test signing enabled (reboot needed)")
        reboot = True
    _upload_tools(guest, config, report)
    if config.driver.certificate is not None:
        cer = guest_path("driver", config.driver.certificate.name)
        guest.script("import-certificate", {"cer_path": cer})
        report.actions.append("test certificate trusted (Root, TrustedPublisher)")
    status = driver_status(guest, config)
    if not _runs_build(status, package):
        reboot = _install(guest, config, package, status, report, reboot_pending=reboot) or reboot
    reboot = _configure_verifier(guest, config, report) or reboot
    live_dumps = guest.script("configure-live-dumps", {"action": "apply", "clear_wer_policy": True})
    if live_dumps.get("reboot_required"):
        changed = "; ".join(live_dumps.get("changed") or []) or "settings"
        report.actions.append(f"live dump settings changed ({changed}), reboot needed")
        reboot = True
    if reboot:
        restart(guest)
        report.rebooted = True
    status = driver_status(guest, config)
    if not _runs_build(status, package):
        raise TargetError(_not_running(status, package, rebooted=report.rebooted))
    report.loaded = status
    return report


def driver_status(guest: Guest, config: TargetConfig) -> dict[str, Any]:
    return guest.script(
        "driver-status",
        {"service_name": config.driver.service_name, "hardware_id": config.driver.hardware_id},
    )


def restart(guest: Guest) -> BootIdentity:
    """Reboot and wait for the new boot. The machine may answer from the old boot while it shuts
    down; past the restart delay plus SHUTDOWN_GRACE_SECONDS that proves the restart did not happen."""
    before = guest.boot_identity()
    answer = guest.script("restart-computer", {"delay_seconds": RESTART_DELAY_SECONDS})
    grace = float(answer.get("delay_seconds", RESTART_DELAY_SECONDS)) + SHUTDOWN_GRACE_SECONDS
    return guest.wait_for_new_boot(before, same_boot_grace=grace)


def _install(
    guest: Guest,
    config: TargetConfig,
    package: PackageFacts,
    status: dict,
    report: ProvisionReport,
    *,
    reboot_pending: bool,
) -> bool:
    """pnputil + lkdctl --install-device (install-driver.ps1); the old build's oemNN.inf is deleted
    first so the new one cannot lose the driver ranking to it. True when a reboot is pending. A
    device that did not start fails here unless a pending reboot (test signing) may excuse it; the
    check after the reboot then decides."""
    device = status.get("device") or {}
    old = str(device.get("inf_name") or "")
    old_infs = [old] if re.fullmatch(r"oem\d+\.inf", old, re.IGNORECASE) else []
    result = guest.script(
        "install-driver",
        {
            "inf_path": guest_path("driver", package.inf.name),
            "hardware_id": config.driver.hardware_id,
            "lkdctl_path": lkdctl_guest_path(config),
            "old_inf_names": old_infs,
        },
    )
    made = (result.get("device_install") or {}).get("device", "?")
    replaced = f", replacing {', '.join(old_infs)}" if old_infs else ""
    published = result.get("published_name") or "?"
    report.actions.append(f"driver {package.driver_version} installed ({published}, device {made}{replaced})")
    pending = bool(result.get("reboot_required"))
    if not result.get("ok") and not (pending or reboot_pending):
        raise TargetError(_not_running({"device": result.get("device")}, package, rebooted=False))
    return pending


def _configure_verifier(guest: Guest, config: TargetConfig, report: ProvisionReport) -> bool:
    """Verifier on the driver; the template changes (and asks for a reboot) only when settings differ."""
    if not config.verifier.enabled:
        return False
    flags = config.verifier.flags
    verifier = guest.script(
        "configure-verifier",
        {
            "action": "enable",
            "driver": config.driver.service_name + ".sys",
            "flags": flags if isinstance(flags, int) else None,
            "boot_mode": "resetonbootfail",
        },
    )
    if verifier.get("reboot_required"):
        report.actions.append("Driver Verifier enabled (reboot needed)")
        return True
    return False


def _runs_build(status: dict, package: PackageFacts) -> bool:
    """The service runs, its device is started, and the loaded image is the package's .sys."""
    service = status.get("service") or {}
    device = status.get("device") or {}
    return (
        str(service.get("state", "")).lower() == "running"
        and device.get("present") is True
        and device.get("problem_code", 1) == 0
        and str(service.get("image_sha256", "")).lower() == package.sys_sha256
    )


def _not_running(status: dict, package: PackageFacts, *, rebooted: bool) -> str:
    service = status.get("service") or {}
    device = status.get("device") or {}
    when = "after provisioning and a reboot" if rebooted else "after provisioning"
    if not device.get("present"):
        why = "no device with the configured hardware id exists"
    elif device.get("problem_code", 1) != 0:
        problem = device.get("problem") or "a problem"
        why = f"device {device.get('instance_id')} has {problem} (code {device.get('problem_code')})"
    elif str(service.get("state", "")).lower() != "running":
        why = f"service is {service.get('state') or 'not installed'}"
    else:
        why = (
            f"the loaded image {service.get('path')} (SHA-256 {service.get('image_sha256')}, version"
            f" {service.get('file_version')}) is not the package's {package.sys.name}"
            f" {package.driver_version} (SHA-256 {package.sys_sha256})"
        )
    return f"the test driver did not start {when}: {why}"


def _upload_tools(guest: Guest, config: TargetConfig, report: ProvisionReport) -> None:
    """The driver package, its certificate and lkdctl.exe, unless the guest already has them."""
    files: list[tuple[Path, str]] = [
        (path, guest_path("driver", path.name))
        for path in sorted(config.driver.package.iterdir())
        if path.is_file()
    ]
    if config.driver.certificate is not None:
        files.append((config.driver.certificate, guest_path("driver", config.driver.certificate.name)))
    files.append((config.driver.lkdctl, lkdctl_guest_path(config)))
    present = guest.file_hashes([remote for _, remote in files])
    for local, remote in files:
        want = hashlib.sha256(local.read_bytes()).hexdigest()
        if present.get(remote, {}).get("sha256") != want:
            guest.upload(local, remote)
            report.actions.append(f"uploaded {local.name}")

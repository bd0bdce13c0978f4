"""Making the VM ready for a scenario: revert, test signing, certificate, driver, Verifier, live dumps.

Every step is idempotent and asks the machine first, so a VM reverted to a checkpoint that already
has the driver costs one `driver-status` call. Steps that need a reboot to take effect (test
signing, Verifier) reboot once at the end, and the reboot is confirmed by a new boot time.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

from harness.target.base import TargetError
from harness.target.windows.config import TargetConfig
from harness.target.windows.guest import Guest

log = logging.getLogger(__name__)

GUEST_ROOT = r"C:\ProgramData\lkdh"
"""Where the harness keeps the driver package and lkdctl.exe on the guest."""


@dataclass
class ProvisionReport:
    """What prepare() did, for the run log."""

    actions: list[str] = field(default_factory=list)
    rebooted: bool = False


def guest_path(*parts: str) -> str:
    return "\\".join([GUEST_ROOT, *parts])


def lkdctl_guest_path(config: TargetConfig) -> str:
    return guest_path("bin", config.driver.lkdctl.name)


def provision(guest: Guest, config: TargetConfig) -> ProvisionReport:
    """Bring the driver up on the machine as the config describes; TargetError says what failed."""
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
    status = guest.script(
        "driver-status",
        {"service_name": config.driver.service_name, "hardware_id": config.driver.hardware_id},
    )
    if not _driver_running(status):
        inf = next(config.driver.package.glob("*.inf"), None)
        if inf is None:
            raise TargetError(f"the driver package {config.driver.package} has no .inf file")
        result = guest.script(
            "install-driver",
            {"inf_path": guest_path("driver", inf.name), "hardware_id": config.driver.hardware_id},
        )
        report.actions.append(f"driver installed ({result.get('published_name', '?')})")
        reboot = reboot or bool(result.get("reboot_required"))
        if not result.get("ok") and not reboot:
            raise TargetError(f"the test driver did not start after pnputil: device {result.get('device')}")
    if config.verifier.enabled:
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
            reboot = True
    guest.script("configure-live-dumps", {"action": "apply", "clear_wer_policy": True})
    if reboot:
        restart(guest)
        report.rebooted = True
    return report


def restart(guest: Guest) -> float:
    """Reboot and wait for the new boot; the new boot time."""
    before = guest.boot_time()
    guest.script("restart-computer", {"delay_seconds": 2})
    return guest.wait_for_new_boot(before)


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


def _driver_running(status: dict) -> bool:
    service = status.get("service") or {}
    device = status.get("device") or {}
    return str(service.get("state", "")).lower() == "running" and device.get("problem_code", 1) == 0

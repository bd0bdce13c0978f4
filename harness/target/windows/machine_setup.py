"""Applying a scenario's `machine:` to a real VM, and putting the VM back afterwards.

Module configuration (ReportType, the two GUIDs, IncludeDmfDataInBugCheckTriageDump): written as the
test driver's registry parameters (module_config.py, device-parameters.ps1), then the device is
restarted (`pnputil /restart-device`) so the driver reads them; a restart that needs a reboot
(pnputil exit 3010) is followed by one. Driver Verifier: `verifier /standard /driver <svc>.sys` or
`verifier /reset` (configure-verifier.ps1), which take effect only after a reboot, so a change
reboots the VM. Both are checked afterwards from the driver's INFO (`unmet`), never assumed.

What the VM had before lkdh first changed it is remembered (the baseline) and written back when a
later scenario does not ask for the setting, and when the target closes. A hypervisor revert resets
the VM to its checkpoint anyway; the baseline is then what the checkpoint holds, so nothing is
rewritten needlessly. `target_build` cannot be applied here: it is fixed when the driver is compiled.
"""

from __future__ import annotations

import logging

from harness.target.machine_settings import MachineSettings
from harness.target.windows import module_config
from harness.target.windows.config import TargetConfig
from harness.target.windows.guest import Guest
from harness.target.windows.provision import restart

log = logging.getLogger(__name__)

Values = dict[str, module_config.RegistryValue | None]
"""Registry values by name; None: the value is absent (the driver uses its built-in default)."""


def cannot_apply(settings: MachineSettings, os_build_floor: int | None) -> str | None:
    """Why the vm target skips these settings, or None. target_build is a compile-time fact (F04,
    F44: NTDDI_VERSION decides whether DMF compiles live dumps in), so one package cannot change it.
    An empty ReportType cannot be set either: the test driver takes 1 to 15 characters from its
    registry parameters and refuses anything else (Config.c), so the scenario would run with the
    driver's default folder instead of the empty one it asks for."""
    if settings.report_type == "":
        return (
            "report_type='' cannot be set on the vm target: the test driver reads a ReportType of 1 to"
            " 15 characters from its registry parameters and refuses an empty one"
            " (driver/LkdhTestDriver/Config.c)"
        )
    if settings.target_build is None:
        return None
    built = (
        f"this package targets Windows build {os_build_floor} or later" if os_build_floor else "the package"
    )
    return (
        f"target_build={settings.target_build} is fixed when the driver is compiled (NTDDI_VERSION, F04/F44)"
        f" and {built}: build a second driver package for that target and run the scenario with a"
        " target config that points at it"
    )


class MachineSetup:
    """The VM's module parameters and Verifier state, as scenarios ask and as they were before."""

    def __init__(self, guest: Guest, config: TargetConfig) -> None:
        self.guest, self.config = guest, config
        self.baseline: Values | None = None
        """The parameters before lkdh first wrote any (None: never looked)."""
        self.current: Values | None = None
        self.verifier_baseline: bool | None = None
        self.rebooted = False

    def forget_written(self) -> None:
        """A hypervisor revert put the checkpoint's parameters back: what lkdh wrote is gone."""
        self.current = self.baseline

    def apply(self, settings: MachineSettings) -> list[str]:
        """Bring the VM to `settings` (the baseline for what they leave out); what was done."""
        actions: list[str] = []
        self.rebooted = False
        wanted = module_config.registry_values(settings)
        if wanted or (self.baseline is not None and self.current != self.baseline):
            actions += self._parameters(wanted)
        if settings.verifier is not None or self.verifier_baseline is not None:
            actions += self._verifier(settings.verifier)
        return actions

    def restore(self) -> list[str]:
        """The VM's own parameters and Verifier state back (at close)."""
        return self.apply(MachineSettings())

    def _parameters(self, wanted: dict[str, module_config.RegistryValue]) -> list[str]:
        if self.baseline is None:
            answer = self._script({"action": "query", "names": list(module_config.PARAMETER_NAMES)})
            self.baseline = self.current = dict(answer["values"])
        target: Values = {**self.baseline, **wanted}
        if target == self.current:
            return []
        answer = self._script(
            {
                "action": "apply",
                "names": list(module_config.PARAMETER_NAMES),
                "values": target,
                "restart": True,
            }
        )
        self.current = dict(answer["values"])
        changed = ", ".join(answer.get("changed") or []) or "nothing"
        device = answer.get("instance_id", "?")
        if answer.get("reboot_required"):
            log.info(
                "%s: pnputil could not restart %s without a reboot (exit 3010)", self.config.name, device
            )
            restart(self.guest)
            self.rebooted = True
            return [f"driver parameters written ({changed}); the device needed a reboot (pnputil exit 3010)"]
        return [f"driver parameters written ({changed}); device {device} restarted"]

    def _verifier(self, wanted: bool | None) -> list[str]:
        driver = self.config.driver.service_name + ".sys"
        state = self.guest.script("configure-verifier", {"action": "query"})
        configured = driver.lower() in {str(name).lower() for name in state.get("configured_drivers") or []}
        if self.verifier_baseline is None:
            self.verifier_baseline = configured
        target = self.verifier_baseline if wanted is None else wanted
        if target == configured:
            return []
        params: dict[str, object] = {"action": "reset"}
        if target:
            flags = self.config.verifier.flags
            params = {
                "action": "enable",
                "driver": driver,
                "flags": flags if isinstance(flags, int) else None,
                "boot_mode": "resetonbootfail",
            }
        self.guest.script("configure-verifier", params)
        restart(self.guest)  # Verifier's settings are read at boot
        self.rebooted = True
        return [f"Driver Verifier {'enabled on ' + driver if target else 'reset'}, rebooted"]

    def _script(self, params: dict[str, object]) -> dict:
        params = {"hardware_id": self.config.driver.hardware_id, **params}
        return self.guest.script("device-parameters", params)  # type: ignore[arg-type]

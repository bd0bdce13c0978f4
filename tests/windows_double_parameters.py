"""The test driver's registry parameters on the Windows double (device-parameters.ps1), kept apart
from windows_double.py so that file only gains the hooks.

How each behaviour is documented:
- values live under the device's hardware key and survive reboots; the driver reads them in
  EvtDriverDeviceAdd (WdfDeviceOpenRegistryKey, PLUGPLAY_REGKEY_DEVICE: MicrosoftDocs
  windows-driver-docs-ddi wdfdevice/nf-wdfdevice-wdfdeviceopenregistrykey), so a write reaches the
  running driver only when the device restarts or the machine reboots;
- `pnputil /restart-device <instance id>` (Windows 10 2004+, windows-driver-docs
  devtest/pnputil-command-syntax.md) stops and starts the device; exit 0 when done, 3010
  (ERROR_SUCCESS_REBOOT_REQUIRED, devtest/pnputil-return-values.md) when the change needs a reboot:
  then the device keeps running as it was until the machine restarts (`restart_needs_reboot` knob).
  pnputil's message text is not documented; the template decides on the exit code alone, and the
  text here is only what a log would show;
- what the driver makes of each value is Config.c's rule, mirrored here (lkdh_control.h:
  ReportType 1..15 characters and a valid folder name, GUIDs in RtlGUIDFromString's braced form,
  IncludeDmfDataInBugCheckTriageDump a DWORD 0 or 1; anything else keeps the default and is
  reported as rejected). `ignored` is a knob for a driver build that does not read some value
  (an old build): it keeps its built-in value and reports nothing, which the harness must catch.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, replace
from typing import Any

from harness.target.sim import SimulatedMachine
from harness.target.sim.livekerneldump import ModuleConfig
from harness.target.windows import protocol

_GUID_TEXT = re.compile(r"\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}")
_FORBIDDEN = set('\\/:*?"<>|')
PARAMETER_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,63}$")


@dataclass(frozen=True)
class DriverStart:
    """What Config.c read at one device start: the module config and INFO's protocol-2 fields."""

    module: ModuleConfig
    from_registry: int = 0
    rejected: int = 0


def report_type_valid(text: str) -> bool:
    """LkdhReportTypeValid (Config.c)."""
    return (
        0 < len(text) <= protocol.REPORT_TYPE_MAX_CHARS
        and all(ord(c) >= 0x20 and c not in _FORBIDDEN for c in text)
        and text[-1] not in ". "
    )


class DeviceParameters:
    """The hardware key's values, the driver start that read them, and pnputil /restart-device."""

    def __init__(self, sim: SimulatedMachine) -> None:
        self.sim = sim
        self.defaults = sim.settings.module
        """The driver's built-in values (Config.c's LkdhSettingsDefaults)."""
        self.values: dict[str, dict[str, Any]] = {}
        self.key_exists = False
        self.restart_needs_reboot = False
        self.ignored: set[str] = set()
        self.restarts: list[str] = []
        self.running = DriverStart(self.defaults)
        self._module = sim.module
        self._pending = self.running

    # -- what the driver reads ----------------------------------------------------------------
    def read(self) -> DriverStart:
        """LkdhSettingsRead over the current values."""
        module, taken, refused = self.defaults, 0, 0
        for name, bit, field, parse in (
            ("ReportType", protocol.CONFIG_REPORT_TYPE, "report_type", _report_type),
            ("GuidDeviceInterface", protocol.CONFIG_GUID_DEVICE_INTERFACE, "device_interface_guid", _guid),
            ("GuidSecondaryData", protocol.CONFIG_GUID_SECONDARY_DATA, "secondary_data_guid", _guid),
            (
                "IncludeDmfDataInBugCheckTriageDump",
                protocol.CONFIG_INCLUDE_DMF_DATA,
                "include_dmf_data_in_bugcheck_dump",
                _flag,
            ),
        ):
            value = self.values.get(name)
            if value is None or name in self.ignored:
                continue
            parsed = parse(value)
            if parsed is None:
                refused |= bit
            else:
                module, taken = replace(module, **{field: parsed}), taken | bit
        return DriverStart(module, taken, refused)

    def in_effect(self) -> DriverStart:
        """The start the running driver came from: a new module (a reboot, a crash, a device
        restart) means the driver started again and read the values as they were then."""
        if self.sim.module is not self._module:
            self._module, self.running = self.sim.module, self._pending
        return self.running

    def _stage(self) -> None:
        """Values written: the next start (device restart or boot) reads them; this one does not
        (the driver reads them in EvtDriverDeviceAdd: wdfdevice/nf-wdfdevice-wdfdeviceopenregistrykey)."""
        self.in_effect()
        self._pending = self.read()
        self.sim.settings = replace(self.sim.settings, module=self._pending.module)

    # -- device-parameters.ps1 ----------------------------------------------------------------
    def script(self, params: dict[str, Any], instance_id: str, free_slots: Any) -> dict[str, Any]:
        """The template's answer; raises ValueError with the template's throw message."""
        action = params["action"]
        if action not in ("query", "apply"):
            raise ValueError(f"device-parameters: action must be query or apply, not '{action}'")
        names = [str(name) for name in params.get("names") or [] if name]
        changed: list[str] = []
        if action == "apply":
            self.key_exists = True  # CM_Open_DevNode_Key, RegDisposition_OpenAlways creates the key
            for name, wanted in (params.get("values") or {}).items():
                if not PARAMETER_NAME.match(name):
                    raise ValueError(f"device-parameters: '{name}' is not a parameter name")
                if name not in names:
                    names.append(name)
                if wanted is None:
                    if self.values.pop(name, None) is not None:
                        changed.append(name)
                    continue
                if wanted.get("type") == "String":
                    self.values[name] = {"type": "String", "data": str(wanted["data"])}
                elif wanted.get("type") == "DWord":
                    self.values[name] = {"type": "DWord", "data": int(wanted["data"]) & 0xFFFF_FFFF}
                else:
                    raise ValueError(
                        f"device-parameters: {name}: type must be String or DWord, not '{wanted.get('type')}'"
                    )
                changed.append(name)
            self._stage()
        restart_exit, output, reboot = None, "", False
        if action == "apply" and params.get("restart"):
            self.restarts.append(instance_id)
            if self.restart_needs_reboot:  # devtest/pnputil-return-values.md: 3010, reboot required
                restart_exit, reboot = 3010, True
                output = (
                    f"Restarting device:       {instance_id}\n"
                    "System reboot is needed to complete the operation."
                )
            else:
                free_slots()  # LkdhEvtDeviceCleanup frees every ALLOC slot when the device goes
                self.sim.restart_driver()  # devtest/pnputil-command-syntax.md: /restart-device
                self.in_effect()
                restart_exit = 0  # devtest/pnputil-return-values.md: ERROR_SUCCESS
                output = f"Restarting device:       {instance_id}\nDevice restarted successfully."
        return {
            "instance_id": instance_id,
            "values": {name: self.values.get(name) for name in names},
            "changed": changed,
            "restart_exit_code": restart_exit,
            "restart_output": output,
            "reboot_required": reboot,
        }

    def info_fields(self) -> dict[str, Any]:
        """INFO's protocol-2 fields, as Control.c fills them from the device context."""
        start = self.in_effect()
        return {
            "ConfigFromRegistry": start.from_registry,
            "ConfigRejected": start.rejected,
            "ConfigKeyStatus": 0 if self.key_exists else 0xC0000034,  # STATUS_OBJECT_NAME_NOT_FOUND
            "IncludeDmfDataInBugCheckTriageDump": int(
                self.sim.module.config.include_dmf_data_in_bugcheck_dump
            ),
            "ConfigReserved": b"",
            "RequestedReportType": start.module.report_type.encode("utf-16-le"),
        }


def _report_type(value: dict[str, Any]) -> str | None:
    text = str(value["data"])
    return text if value["type"] == "String" and report_type_valid(text) else None


def _guid(value: dict[str, Any]) -> uuid.UUID | None:
    text = str(value["data"])
    return uuid.UUID(text) if value["type"] == "String" and _GUID_TEXT.fullmatch(text) else None


def _flag(value: dict[str, Any]) -> bool | None:
    return bool(value["data"]) if value["type"] == "DWord" and value["data"] in (0, 1) else None

"""A scenario's `machine:` on a real VM: the test driver's registry parameters, a device restart, and
proof from the driver that it took them.

The test driver reads DMF_CONFIG_LiveKernelDump from its device's hardware key at every device start
(driver/LkdhTestDriver/Config.c). The value names, their formats and the INFO bits that report them
are defined once, in driver/include/lkdh_control.h ("Module configuration from the registry"); this
module states them the way protocol.py states every other constant of that header, and
tests/test_driver_header.py compiles the header to prove the two agree (a C program built from it
prints each name). The harness never trusts its own write: after the restart it reads INFO and
compares what the driver reports with what the scenario asked (`unmet`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from harness.target.base import TargetError
from harness.target.machine_settings import MachineSettings
from harness.target.windows import protocol

RegistryValue = dict[str, object]
"""One value as device-parameters.ps1 carries it: {"type": "String" | "DWord", "data": ...}."""


@dataclass(frozen=True)
class Parameter:
    """One registry value of the driver: its name (LKDH_REG_*_TEXT) and INFO bit (LKDH_CONFIG_*)."""

    setting: str
    """The MachineSettings field it carries."""
    name: str
    bit: int


PARAMETERS = (
    Parameter("report_type", "ReportType", protocol.CONFIG_REPORT_TYPE),
    Parameter("guid_device_interface", "GuidDeviceInterface", protocol.CONFIG_GUID_DEVICE_INTERFACE),
    Parameter("guid_secondary_data", "GuidSecondaryData", protocol.CONFIG_GUID_SECONDARY_DATA),
    Parameter(
        "include_dmf_data_in_bugcheck_dump",
        "IncludeDmfDataInBugCheckTriageDump",
        protocol.CONFIG_INCLUDE_DMF_DATA,
    ),
)
"""Every module setting the driver reads from the registry, in lkdh_control.h's order."""

PARAMETER_NAMES = tuple(parameter.name for parameter in PARAMETERS)


class ModuleConfigNotTaken(TargetError):
    """The VM was told a scenario's `machine:` settings, but the driver (or Verifier) does not run
    with them: each entry of `unmet` says which setting, what was asked and what the driver reports."""

    def __init__(self, machine: str, unmet: list[str]) -> None:
        self.unmet = unmet
        super().__init__(
            f"{machine}: the test driver did not take the scenario's machine settings: " + "; ".join(unmet)
        )


def guid_text(value: uuid.UUID) -> str:
    """The only form RtlGUIDFromString accepts: braces, 36 characters (LKDH_GUID_TEXT_CHARS)."""
    return "{" + str(value) + "}"


def registry_values(settings: MachineSettings) -> dict[str, RegistryValue]:
    """The registry values that carry the module settings `settings` chooses, by value name."""
    values: dict[str, RegistryValue] = {}
    for parameter in PARAMETERS:
        chosen = getattr(settings, parameter.setting)
        if chosen is None:
            continue
        if isinstance(chosen, bool):
            values[parameter.name] = {"type": "DWord", "data": int(chosen)}
        elif isinstance(chosen, uuid.UUID):
            values[parameter.name] = {"type": "String", "data": guid_text(chosen)}
        else:
            values[parameter.name] = {"type": "String", "data": str(chosen)}
    return values


def unmet(settings: MachineSettings, info: protocol.InfoReply) -> list[str]:
    """What the driver's INFO contradicts of `settings` (empty: every chosen setting took)."""
    chosen = [parameter for parameter in PARAMETERS if getattr(settings, parameter.setting) is not None]
    if not chosen:
        return []
    config = info.config
    if config is None:
        return [
            f"the driver speaks protocol {info.protocol_version} and reports no module configuration"
            f" (protocol {protocol.PROTOCOL_VERSION} does): install a build that reads its"
            " registry parameters"
        ]
    problems = []
    for parameter in chosen:
        wanted = getattr(settings, parameter.setting)
        if config.rejected & parameter.bit:
            problems.append(
                f"{parameter.setting}={wanted}: the driver refused registry value {parameter.name}"
            )
        elif not config.from_registry & parameter.bit:
            problems.append(
                f"{parameter.setting}={wanted}: the driver did not read registry value {parameter.name}"
                f" (hardware key status 0x{config.key_status:08X}), it runs with its built-in value"
            )
        else:
            reported = _reported(parameter.setting, info)
            if reported != wanted:
                problems.append(f"{parameter.setting}={wanted}: the driver reports {reported}")
    return problems


def _reported(setting: str, info: protocol.InfoReply) -> object:
    """The driver's own account of one setting (the requested ReportType: DMF then keeps 11, F05)."""
    assert info.config is not None
    return {
        "report_type": info.config.requested_report_type,
        "guid_device_interface": info.device_interface_guid,
        "guid_secondary_data": info.secondary_data_guid,
        "include_dmf_data_in_bugcheck_dump": info.config.include_dmf_data_in_bugcheck_dump,
    }[setting]

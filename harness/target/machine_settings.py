"""What a scenario's `machine:` asks of the target: Driver Verifier and the module configuration.

The runner translates the scenario's `machine:` into these (a target never sees YAML); the target
either applies them before the scenario (`Target.configure`) or says why it cannot, and the scenario
is skipped with that reason. Every field left as None keeps the target's own setting.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class MachineSettings:
    """Driver Verifier on the test driver, and DMF_CONFIG_LiveKernelDump as the driver fills it."""

    verifier: bool | None = None
    """Driver Verifier on the test driver (F14)."""
    report_type: str | None = None
    """ReportType: the LiveKernelReports subfolder (F05)."""
    guid_device_interface: uuid.UUID | None = None
    """GuidDeviceInterface; all zeros: no device interface, the IOCTL cannot be opened (F23)."""
    guid_secondary_data: uuid.UUID | None = None
    """GuidSecondaryData; all zeros: secondary data is dropped with a success (F21)."""
    include_dmf_data_in_bugcheck_dump: bool | None = None
    """IncludeDmfDataInBugCheckTriageDump (F22)."""
    target_build: int | None = None
    """The Windows build the driver was compiled for (F04: below RS3 Create writes nothing)."""

    def chosen(self) -> dict[str, object]:
        """The settings given, by name, in declaration order."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    def is_empty(self) -> bool:
        return not self.chosen()

    def describe(self) -> str:
        """'verifier=False, report_type=LkdhShort' for messages."""
        return ", ".join(f"{name}={value}" for name, value in self.chosen().items()) or "none"

"""The simulator's part of a target config: `kind: sim` documents select profile, Verifier and the
other switches a real machine would have, so a team can pin them in a file next to its VM configs.

Example (`vm/sim-contract.yaml`)::

    kind: sim
    profile: contract            # dmf-bfac434 (default) | contract
    verifier: true               # Driver Verifier on the test driver
    wer_allows_dumps: true       # false: WER policy refuses live dumps (F09)
    report_type: LkdhTestDriver  # DMF_CONFIG_LiveKernelDump.ReportType (F05 cuts it on bfac434)
    include_dmf_data_in_bugcheck_dump: false   # F22
    seed: 1                      # address layout of the simulated pool
    crash_dump: kernel           # triage (default): a bugcheck writes the minidump; kernel: also
                                 # %SystemRoot%\\MEMORY.DMP, a kernel memory dump (DumpType 5)
    live_dump: triage            # kernel: a create writes a full live dump (DumpType 6)
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from harness.target.sim.livekerneldump import ModuleConfig
from harness.target.sim.machine import SimSettings
from harness.target.sim.profiles import DEFAULT_PROFILE


class SimConfig(BaseModel):
    """A target config that describes the simulated machine."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["sim"]
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$", max_length=64)] = "sim"
    profile: Literal["dmf-bfac434", "contract"] = DEFAULT_PROFILE
    verifier: StrictBool = True
    wer_allows_dumps: StrictBool = True
    report_type: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,15}$")] = "LkdhTestDriver"
    include_dmf_data_in_bugcheck_dump: StrictBool = False
    seed: Annotated[StrictInt, Field(ge=0, le=2**31)] = 1
    crash_dump: Literal["triage", "kernel"] = "triage"
    live_dump: Literal["triage", "kernel"] = "triage"

    def settings(self, profile: str | None = None) -> SimSettings:
        """SimSettings from this config; an explicit `profile` (the --sim-profile option) wins."""
        module = replace(
            ModuleConfig(),
            report_type=self.report_type,
            include_dmf_data_in_bugcheck_dump=self.include_dmf_data_in_bugcheck_dump,
        )
        return SimSettings(
            profile=profile or self.profile,
            verifier=self.verifier,
            seed=self.seed,
            wer_allows_dumps=self.wer_allows_dumps,
            module=module,
            crash_dump=self.crash_dump,
            live_dump=self.live_dump,
        )

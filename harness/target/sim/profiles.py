"""Simulator profiles: DMF as shipped (defects included) or as its documentation promises."""

from __future__ import annotations

from dataclasses import dataclass

from harness.target.defects import KNOWN_DEFECTS
from harness.target.dmf_builds import DMF_BUILDS


@dataclass(frozen=True)
class SimProfile:
    """Which known defects the simulated module reproduces."""

    name: str
    defects: frozenset[str]
    description: str

    def has(self, defect_id: str) -> bool:
        if defect_id not in KNOWN_DEFECTS:
            raise KeyError(f"unknown defect id {defect_id!r}")
        return defect_id in self.defects


PROFILES: dict[str, SimProfile] = {
    "dmf-bfac434": SimProfile(
        "dmf-bfac434",
        DMF_BUILDS["bfac434"].defects,  # the same table the VM target reads (dmf_builds.py)
        "DMF at commit bfac434 as shipped: every known defect reproduced",
    ),
    "contract": SimProfile(
        "contract",
        frozenset(),
        "DMF_LiveKernelDump as its documentation promises: no known defect",
    ),
}

DEFAULT_PROFILE = "dmf-bfac434"


def profile_named(name: str) -> SimProfile:
    """The profile called `name`; ValueError listing the choices otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown simulator profile {name!r}; choose one of {', '.join(PROFILES)}") from None

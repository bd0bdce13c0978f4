"""The simulated machine: the embedded default target."""

from harness.target.sim.machine import SimSettings, SimulatedMachine
from harness.target.sim.profiles import DEFAULT_PROFILE, PROFILES, SimProfile, profile_named

__all__ = ["DEFAULT_PROFILE", "PROFILES", "SimProfile", "SimSettings", "SimulatedMachine", "profile_named"]

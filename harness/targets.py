"""Choosing and building a target from command-line options (shared by `lkdh` and the pytest plugin)."""

from __future__ import annotations

from pathlib import Path

from harness.target.base import Target, TargetError
from harness.target.sim import SimSettings, SimulatedMachine

TARGET_NAMES = ("sim", "vm")


def build_target(
    name: str, output_dir: Path, *, sim_profile: str, target_config: Path | None = None
) -> Target:
    """A prepared-on-demand target: the simulator, or the Windows VM described by `target_config`."""
    if name == "sim":
        return SimulatedMachine(output_dir, SimSettings(profile=sim_profile))
    if name == "vm":
        if target_config is None:
            raise TargetError("the vm target needs --target-config FILE (see vm/README.md)")
        raise TargetError(
            f"{target_config}: this version has no Windows target yet (WinRM/SSH sessions arrive with "
            "the real-machine work); run on the simulator with --target sim"
        )
    raise TargetError(f"unknown target {name!r}; choose one of {', '.join(TARGET_NAMES)}")

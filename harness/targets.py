"""Choosing and building targets from command-line options (shared by `lkdh` and the pytest plugin).

A fresh simulator per scenario (cheap, and nothing leaks between scenarios); one Windows machine for
the whole run (its sessions and provisioning are expensive), pointed at each scenario's output
folder in turn. `prepare()` gives every scenario a clean machine either way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.scenario.errors import ScenarioErrors
from harness.target.base import Target, TargetError
from harness.target.sim import SimSettings, SimulatedMachine
from harness.target.sim.config import SimConfig
from harness.target.windows.config import TargetConfig
from harness.target_config import load_any_target_config

TARGET_NAMES = ("sim", "vm")


class TargetFactory:
    """Targets for one run, from `--target-config` (a VM, or `kind: sim`) and `--sim-profile`."""

    def __init__(self, *, sim_profile: str | None = None, target_config: Path | None = None) -> None:
        self.sim_profile = sim_profile
        self.config_path = target_config
        self._config: TargetConfig | SimConfig | None = None
        self._loaded = False
        self._windows: Target | None = None

    @property
    def config(self) -> TargetConfig | SimConfig | None:
        """The target config, loaded on first use; TargetError naming every problem at file:line:col."""
        if not self._loaded and self.config_path is not None:
            try:
                self._config = load_any_target_config(self.config_path)
            except ScenarioErrors as errors:
                raise TargetError(f"the target config is invalid:\n{errors}") from None
            self._loaded = True
        return self._config

    def vm_skip_reason(self) -> str | None:
        """Why vm items cannot run, or None when a Windows VM is configured."""
        if self.config_path is None:
            return "no Windows VM configured: pass --target-config vm/my-vm.yaml to run hardware items"
        if isinstance(self.config, SimConfig):
            return f"{self.config_path} describes the simulator (kind: sim), not a Windows VM"
        return None

    @contextmanager
    def target(self, name: str, output_dir: Path) -> Iterator[Target]:
        """The target for one scenario writing under `output_dir`."""
        if name == "sim":
            with SimulatedMachine(output_dir, self.sim_settings()) as machine:
                yield machine
        elif name == "vm":
            machine = self._windows_machine(output_dir)
            machine.output_dir = output_dir
            yield machine
        else:
            raise TargetError(f"unknown target {name!r}; choose one of {', '.join(TARGET_NAMES)}")

    def sim_settings(self) -> SimSettings:
        """The simulator's settings: the `kind: sim` config if given; an explicit profile wins."""
        if isinstance(self.config, SimConfig):
            return self.config.settings(self.sim_profile)
        return SimSettings(profile=self.sim_profile) if self.sim_profile else SimSettings()

    def close(self) -> None:
        if self._windows is not None:
            self._windows.close()
            self._windows = None

    def _windows_machine(self, output_dir: Path) -> Target:
        if self._windows is None:
            reason = self.vm_skip_reason()
            if reason is not None:
                raise TargetError(reason)
            config = self.config
            assert isinstance(config, TargetConfig)
            from harness.target.windows.machine import WindowsMachine
            from harness.target.windows.stage_check import ConfiguredSessions

            self._windows = WindowsMachine(output_dir, config, ConfiguredSessions())
        return self._windows

"""Choosing and building targets from command-line options (shared by `lkdh` and the pytest plugin).

A fresh simulator per scenario (cheap, and nothing leaks between scenarios); one Windows machine for
the whole run (its sessions and provisioning are expensive), pointed at each scenario's output
folder in turn. `prepare()` gives every scenario a clean machine either way.

With a pool config (`pool:`, harness/target/pool_config.py) the caller names the member it leased
(harness/pool.py) and gets that machine; one WindowsMachine is kept per member.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.scenario.errors import ScenarioErrors
from harness.target.base import Target, TargetError
from harness.target.pool_config import PoolConfig
from harness.target.sim import SimSettings, SimulatedMachine
from harness.target.sim.config import SimConfig
from harness.target.windows.config import TargetConfig
from harness.target_config import load_any_target_config

TARGET_NAMES = ("sim", "vm")

MachineBuilder = Callable[[TargetConfig, Path], Target]
"""Builds the Target for one Windows VM config (default: a WindowsMachine over real sessions)."""


def _windows_machine_for(config: TargetConfig, output_dir: Path) -> Target:
    from harness.target.windows.machine import WindowsMachine
    from harness.target.windows.stage_check import ConfiguredSessions

    return WindowsMachine(output_dir, config, ConfiguredSessions())


class TargetFactory:
    """Targets for one run, from `--target-config` (a VM, `kind: sim`, or a pool of either) and
    `--sim-profile`."""

    def __init__(
        self,
        *,
        sim_profile: str | None = None,
        target_config: Path | None = None,
        machine_builder: MachineBuilder | None = None,
    ) -> None:
        self.sim_profile = sim_profile
        self.config_path = target_config
        self.machine_builder = machine_builder or _windows_machine_for
        self.collected_before: frozenset[tuple[str, str]] = frozenset()
        """(remote name, SHA-256) of dumps a resumed run's journal says were already collected."""
        self.kept_copies: dict[Path, str] = {}
        """Local copies that journal says were pulled (absolute path -> SHA-256): kept, never
        pulled again nor overwritten (WindowsMachine.kept_copies)."""
        self._config: TargetConfig | SimConfig | PoolConfig | None = None
        self._loaded = False
        self._windows: dict[str, Target] = {}

    @property
    def pool(self) -> PoolConfig | None:
        """The pool the target config lists, or None for a single machine (or none)."""
        return self.config if isinstance(self.config, PoolConfig) else None

    @property
    def config(self) -> TargetConfig | SimConfig | PoolConfig | None:
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
        if self.pool is not None and self.pool.target_name == "sim":
            return f"{self.config_path} lists a pool of simulators (kind: sim), not Windows VMs"
        return None

    @contextmanager
    def target(self, name: str, output_dir: Path, member: str | None = None) -> Iterator[Target]:
        """The target for one scenario writing under `output_dir`; `member` is the pool machine
        leased for it (required when the pool serves this target)."""
        if name == "sim":
            with SimulatedMachine(output_dir, self.sim_settings(member)) as machine:
                yield machine
        elif name == "vm":
            machine = self._windows_machine(output_dir, member)
            machine.output_dir = output_dir
            yield machine
        else:
            raise TargetError(f"unknown target {name!r}; choose one of {', '.join(TARGET_NAMES)}")

    def sim_settings(self, member: str | None = None) -> SimSettings:
        """The simulator's settings: the `kind: sim` config (or pool member) if given; an explicit
        profile wins. Simulators in one pool differ in name only, so any member's settings stand
        for the pool's."""
        config = self.config
        if isinstance(config, PoolConfig) and config.target_name == "sim":
            config = config.member(member) if member is not None else config.pool[0]
        if isinstance(config, SimConfig):
            return config.settings(self.sim_profile)
        return SimSettings(profile=self.sim_profile) if self.sim_profile else SimSettings()

    def health_check(self, member: str) -> str:
        """Check one pool member without changing it (TargetError when unhealthy): a simulator is
        built on demand and always answers; a VM is asked `Target.health_check()`."""
        pool = self.pool
        assert pool is not None
        if pool.target_name == "sim":
            return "simulator"
        return self._windows_machine(Path("lkdh-out"), member).health_check()

    def close(self) -> None:
        machines, self._windows = list(self._windows.values()), {}
        for machine in machines:
            machine.close()

    def close_member(self, member: str) -> None:
        """Disconnect from one pool member (its sessions and its hypervisor's monitor), so that the
        next worker to lease it finds it free: a QEMU QMP socket serves one client at a time."""
        machine = self._windows.pop(member, None)
        if machine is None:
            return
        machine.close()  # its sessions and its hypervisor's connection (WindowsMachine.close)

    def _windows_machine(self, output_dir: Path, member: str | None = None) -> Target:
        reason = self.vm_skip_reason()
        if reason is not None:
            raise TargetError(reason)
        config = self.config
        if isinstance(config, PoolConfig):
            if member is None:
                raise TargetError(
                    f"{self.config_path} lists a pool of {len(config.pool)} VMs: run it with pytest"
                    " (-n N leases one VM per worker), or give lkdh run one VM's config"
                )
            config = config.member(member)
        assert isinstance(config, TargetConfig)
        if config.name not in self._windows:
            machine = self.machine_builder(config, output_dir)
            if self.collected_before and hasattr(machine, "collected_before"):
                machine.collected_before = set(self.collected_before)
            if self.kept_copies and hasattr(machine, "kept_copies"):
                machine.kept_copies = dict(self.kept_copies)
            self._windows[config.name] = machine
        return self._windows[config.name]

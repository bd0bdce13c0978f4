"""A pool of test machines in one target config: `pool:` lists several VMs (or simulators).

Under pytest-xdist (`pytest -n N`) each worker leases one member for its whole session
(harness/pool.py), so N workers run scenarios on N machines at once. Each member is a complete
target config, the same document a single-VM config file holds; the file is read with the same
`file:line:col` errors (harness/target_config.py). Example (vm/example-pool.yaml in the README)::

    pool:
      - name: win11-a
        host: win11-a.example.test
        winrm: {username: lkdh-admin, password: {env: LKDH_WINRM_PASSWORD}}
        hypervisor: {kind: libvirt, domain: win11-a, snapshot: clean-driver-ready,
                     ssh: {host: kvm-host.example.test, user: lkdh, key_file: ~/.ssh/lkdh_ed25519}}
        driver: {package: ../driver/build/LkdhTestDriver, hardware_id: Root\\LkdhTestDriver,
                 lkdctl: ../driver/build/lkdctl.exe}
      - name: win11-b
        host: win11-b.example.test
        winrm: {username: lkdh-admin, password: {env: LKDH_WINRM_PASSWORD}}
        hypervisor: {kind: libvirt, domain: win11-b, snapshot: clean-driver-ready,
                     ssh: {host: kvm-host.example.test, user: lkdh, key_file: ~/.ssh/lkdh_ed25519}}
        driver: {package: ../driver/build/LkdhTestDriver, hardware_id: Root\\LkdhTestDriver,
                 lkdctl: ../driver/build/lkdctl.exe}

Rules, and why:
- names are unique: a lease is a lock file named after the member, and reports name the member;
- members are all Windows VMs or all simulators (`kind: sim`): a pool serves one item target
  (`[vm]` or `[sim]`), and a scenario's verdict must not depend on which kind of machine it drew;
- simulator members differ in their name only, for the same reason (a simulator has no
  per-machine state worth pooling; a simulator pool exists to run the lease machinery without VMs).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag

from harness.target.sim.config import SimConfig
from harness.target.windows.config import TargetConfig


def _member_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "sim" if value.get("kind") == "sim" else "vm"
    return "sim" if isinstance(value, SimConfig) else "vm"


PoolMember = Annotated[
    Annotated[TargetConfig, Tag("vm")] | Annotated[SimConfig, Tag("sim")],
    Discriminator(_member_kind),
]


def _consistent(members: list[TargetConfig | SimConfig]) -> list[TargetConfig | SimConfig]:
    first_of: dict[str, int] = {}
    for index, member in enumerate(members):
        if member.name in first_of:
            raise ValueError(
                f"pool member {index + 1} is named {member.name!r} like member {first_of[member.name] + 1}:"
                " each machine in a pool needs its own name (its lease is a lock file of that name)"
            )
        first_of[member.name] = index
    kinds = {isinstance(member, SimConfig) for member in members}
    if len(kinds) > 1:
        raise ValueError("a pool lists Windows VMs or simulators (kind: sim), not both")
    sims = [member for member in members if isinstance(member, SimConfig)]
    for index, member in enumerate(sims[1:], start=2):
        if member.model_copy(update={"name": sims[0].name}) != sims[0]:
            raise ValueError(
                f"pool member {index} ({member.name}) is a simulator set up differently from member 1"
                f" ({sims[0].name}): simulators in one pool differ in their name only"
            )
    return members


class PoolConfig(BaseModel):
    """The root of a target config file that lists several machines."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    pool: Annotated[list[PoolMember], Field(min_length=1), AfterValidator(_consistent)]

    @property
    def target_name(self) -> Literal["sim", "vm"]:
        """The item target the pool serves: `vm` for Windows VMs, `sim` for simulators."""
        return "sim" if isinstance(self.pool[0], SimConfig) else "vm"

    @property
    def names(self) -> list[str]:
        return [member.name for member in self.pool]

    def member(self, name: str) -> TargetConfig | SimConfig:
        for member in self.pool:
            if member.name == name:
                return member
        raise KeyError(name)

"""The Target interface: one machine (simulated or real) that runs the test driver (DESIGN.md)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType

from harness.target.ops import CollectedDump, DriverInfo, Op, OpResult


class TargetError(Exception):
    """The target itself failed (transport, VM, driver not loaded): an infrastructure problem,
    distinct from the module under test returning a status the scenario did not expect."""


class Target(ABC):
    """A machine with the test driver loaded; every target obeys the same contract.

    `prepare()` brings it to a clean state (fresh simulator, snapshot revert), `execute()` runs one
    operation, `collect_dumps()` copies dumps written since the last call into `output_dir`.
    """

    name: str = "target"

    def __init__(self, output_dir: Path) -> None:
        self.output_dir = output_dir

    @abstractmethod
    def prepare(self) -> None:
        """Bring the machine to a clean state with the driver installed and started."""

    @abstractmethod
    def execute(self, op: Op) -> OpResult:
        """Run one operation and return what the machine answered."""

    @abstractmethod
    def collect_dumps(self) -> list[CollectedDump]:
        """Copy every dump written since the last call to `output_dir`, verified by hash."""

    @abstractmethod
    def driver_info(self) -> DriverInfo:
        """What the loaded driver reports about its DMF_LiveKernelDump module."""

    def close(self) -> None:  # noqa: B027 - optional hook: most targets hold nothing to release
        """Release connections; the default holds nothing."""

    def __enter__(self) -> Target:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

"""The Target interface: one machine (simulated or real) that runs the test driver (DESIGN.md)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType

from harness.target.machine_settings import MachineSettings
from harness.target.ops import CollectedDump, DriverInfo, Op, OpResult


class TargetError(Exception):
    """The target itself failed (transport, VM, driver not loaded): an infrastructure problem,
    distinct from the module under test returning a status the scenario did not expect."""


class OperationTimeout(TargetError):
    """An operation had not finished when its step's deadline came: a hang (a call that never
    returns, a machine that stops answering without rebooting), reported as the step's failure.

    `detail` says what the target saw at the deadline. The machine's state afterwards is unknown,
    so the runner runs no further step of the scenario.
    """

    def __init__(self, seconds: float, detail: str) -> None:
        super().__init__(seconds, detail)
        self.seconds = seconds
        self.detail = detail

    def __str__(self) -> str:
        return f"did not finish within {self.seconds:g} s: {self.detail}"


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
    def execute(self, op: Op, *, timeout: float | None = None) -> OpResult:
        """Run one operation and return what the machine answered.

        With `timeout` (seconds, the step's `timeout`), raise `OperationTimeout` when the operation
        has not finished by then; every target states how it keeps that deadline.
        """

    @abstractmethod
    def collect_dumps(self) -> list[CollectedDump]:
        """Copy every dump written since the last call to `output_dir`, verified by hash."""

    @abstractmethod
    def driver_info(self) -> DriverInfo:
        """What the loaded driver reports about its DMF_LiveKernelDump module."""

    def configure(self, settings: MachineSettings) -> str | None:
        """Set the machine up as a scenario's `machine:` asks, from the next `prepare()` on.

        Returns None when applied, or why not (the scenario is then skipped with that reason). Each
        call replaces the previous one's settings: empty settings mean the target's own. A target
        that applies nothing accepts only empty settings.
        """
        if settings.is_empty():
            return None
        return f"the {self.name} target cannot apply machine settings ({settings.describe()})"

    def health_check(self) -> str:
        """Reach the machine without changing it and say in one line what answered; TargetError
        when it cannot be reached. A VM pool takes a machine that fails this out (harness/pool.py).
        The default has nothing to reach."""
        return f"{self.name}: nothing to reach"

    def close(self) -> None:  # noqa: B027 - optional hook: most targets hold nothing to release
        """Release connections; the default holds nothing."""

    def __enter__(self) -> Target:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

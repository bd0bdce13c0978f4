"""The pytest side of a VM pool: where the leases live, the worker's seat, and the run's summary.

Follows pytest-xdist's documented patterns ("Making session-scoped fixtures execute only once"):
the worker's id comes from `PYTEST_XDIST_WORKER` ("master" without xdist), files shared by the
workers of one run go to `tmp_path_factory.getbasetemp().parent` (every worker's base temp is a
folder of the controller's), and what the controller reports comes back in `config.workeroutput`.
`--lkdh-lease-dir` puts the leases elsewhere, so that runs sharing one pool on one host (CI
runners beside the same hypervisor) also exclude each other.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest

from harness.pool import WorkerLease, lease_history, out_of_pool
from harness.target.base import TargetError
from harness.targets import TargetFactory

log = logging.getLogger(__name__)

LEASE_DIR_KEY = pytest.StashKey[Path]()


def worker_id() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "master")


def lease_dir(config: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = config.option.lkdh_lease_dir
    if chosen is not None:
        return Path(chosen)
    base = tmp_path_factory.getbasetemp()
    return (base.parent if worker_id() != "master" else base) / "lkdh-leases"


class PoolSeat:
    """The machine this worker holds, leased on first use (a worker running only items of the
    other target never takes one) and swapped when it fails its health check."""

    def __init__(self, factory: TargetFactory, folder: Path, wait_seconds: float) -> None:
        pool = factory.pool
        assert pool is not None
        self.factory = factory
        self.target_name = pool.target_name
        self.lease = WorkerLease(
            pool.names, folder, worker_id(), factory.health_check, wait_seconds=wait_seconds
        )

    def member(self) -> str:
        return self.lease.acquire()

    def still_healthy(self) -> str | None:
        """None when the held machine passes its health check again, else why not."""
        member = self.lease.member
        assert member is not None
        try:
            self.factory.health_check(member)
        except TargetError as error:
            return str(error)
        return None

    def take_out(self, reason: str) -> None:
        self._disconnect()
        self.lease.take_out(reason)

    def release(self) -> None:
        self._disconnect()
        self.lease.release()

    def _disconnect(self) -> None:
        """Close the held machine before its lock is given up, not at the end of the worker's
        process: the next holder must not find this worker still on the VM's QMP monitor."""
        member = self.lease.member
        if member is not None:
            try:
                self.factory.close_member(member)
            except (TargetError, OSError) as error:  # a dead VM's sessions may fail to close
                log.warning("%s: closing %s before giving up its lease: %s", worker_id(), member, error)


def report_lines(folder: Path) -> list[str]:
    """What the run summary says about the pool: who leased what, what was taken out and why."""
    lines = [
        f"{item['worker']} (pid {item['pid']}) leased {item['member']}: {item['health']}"
        for item in lease_history(folder)
    ]
    lines += [f"{item.member} taken out by {item.worker}: {item.reason}" for item in out_of_pool(folder)]
    return lines


def remember_for_controller(config: pytest.Config, folder: Path) -> None:
    """A worker tells the controller where its leases are (xdist's `workeroutput`)."""
    output: dict[str, Any] | None = getattr(config, "workeroutput", None)
    if output is not None:
        output["lkdh_lease_dir"] = str(folder)

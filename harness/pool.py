"""Leasing one machine of a pool (harness/target/pool_config.py) per pytest-xdist worker.

A lease is an exclusive `filelock.FileLock` on `<lease dir>/<member>.lock`. On Linux and macOS that
is `fcntl.flock` on an open file (filelock's UnixFileLock), and the kernel drops a flock when the
last descriptor of its open file closes, which includes the process dying: a worker killed with
SIGKILL frees its VM at once, with no stale lock file to clean up (tested: tests/test_pool_xdist.py
kills a worker holding a lease and its replacement leases the same VM). filelock's SoftFileLock
would not do this (a marker file that outlives its holder), so it is not used, nor the soft
fallback FileLock takes where flock is missing (`fallback_to_soft=False`).

A member is leased only after its health check passes (reach the machine and its hypervisor,
change nothing). A member that fails the check, at lease time or after a scenario failed with an
infrastructure error, is taken out of the pool for the rest of the run: the reason is appended to
`<lease dir>/out-of-pool.jsonl`, every worker skips it from then on, and the run's summary and
Allure environment name it. No lease server, no scheduler of our own: xdist spreads the items,
the kernel keeps the locks.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from harness.target.base import TargetError

log = logging.getLogger(__name__)

OUT_OF_POOL = "out-of-pool.jsonl"
LEASE_LOG = "leases.jsonl"
POLL_SECONDS = 0.5

HealthCheck = Callable[[str], str]
"""Checks one member by name; returns what it found (one line), raises TargetError if unhealthy."""


class PoolExhausted(TargetError):
    """No member of the pool can be leased: all are out, or all stayed busy until the deadline."""


@dataclass(frozen=True)
class OutOfPool:
    member: str
    reason: str
    worker: str


def _append_line(path: Path, event: dict[str, Any]) -> None:
    """One O_APPEND write per line (workers append to the same file), fsynced."""
    line = (json.dumps(event, sort_keys=True) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_lines(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def out_of_pool(lease_dir: Path) -> list[OutOfPool]:
    """The members taken out so far in this lease folder, first reason first."""
    return [
        OutOfPool(line["member"], line["reason"], line["worker"])
        for line in _read_lines(lease_dir / OUT_OF_POOL)
    ]


def lease_history(lease_dir: Path) -> list[dict[str, Any]]:
    """Every lease taken in this folder: member, worker, pid, in order."""
    return _read_lines(lease_dir / LEASE_LOG)


def worker_index(worker_id: str) -> int:
    """gw3 -> 3; the controller or a run without xdist ("master") -> 0."""
    digits = worker_id.removeprefix("gw")
    return int(digits) if digits.isdigit() else 0


class WorkerLease:
    """The member one worker holds, and the way to swap it for another when it fails."""

    def __init__(
        self,
        members: Sequence[str],
        lease_dir: Path,
        worker_id: str,
        health_check: HealthCheck,
        *,
        wait_seconds: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.members = list(members)
        self.lease_dir = lease_dir
        self.worker_id = worker_id
        self.health_check = health_check
        self.wait_seconds = wait_seconds
        self._clock, self._sleep = clock, sleep
        self._lock: FileLock | None = None
        self.member: str | None = None
        lease_dir.mkdir(parents=True, exist_ok=True)

    def _order(self) -> list[str]:
        """Each worker starts at its own member so workers do not queue on the first one."""
        start = worker_index(self.worker_id) % len(self.members)
        return self.members[start:] + self.members[:start]

    def acquire(self) -> str:
        """Lease a healthy member, waiting up to `wait_seconds` for one to come free."""
        if self.member is not None:
            return self.member
        deadline = self._clock() + self.wait_seconds
        while True:
            out = {item.member for item in out_of_pool(self.lease_dir)}
            candidates = [name for name in self._order() if name not in out]
            if not candidates:
                raise PoolExhausted(f"every machine in the pool is out: {self.describe_out()}")
            for name in candidates:
                if self._try(name):
                    return name
            if self._clock() >= deadline:
                raise PoolExhausted(
                    f"no machine of the pool came free within {self.wait_seconds:g} s"
                    f" (busy: {', '.join(candidates)}); run with -n no larger than the pool"
                )
            self._sleep(POLL_SECONDS)

    def _try(self, name: str) -> bool:
        # fallback_to_soft=False: where flock is unavailable, filelock would quietly use a marker
        # file that outlives a killed worker; a lease must die with its holder, so that is an error.
        lock = FileLock(self.lease_dir / f"{name}.lock", thread_local=False, fallback_to_soft=False)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return False
        try:
            found = self.health_check(name)
        except TargetError as error:
            self._record_out(name, f"health check failed: {error}")
            lock.release()
            return False
        self._lock, self.member = lock, name
        _append_line(
            self.lease_dir / LEASE_LOG,
            {"member": name, "worker": self.worker_id, "pid": os.getpid(), "health": found},
        )
        log.info("%s leased %s (%s)", self.worker_id, name, found)
        return True

    def take_out(self, reason: str) -> None:
        """Take the held member out of the pool for the rest of the run, and give up its lease."""
        if self.member is None:
            return
        self._record_out(self.member, reason)
        self.release()

    def _record_out(self, name: str, reason: str) -> None:
        log.warning("%s: %s taken out of the pool: %s", self.worker_id, name, reason)
        _append_line(
            self.lease_dir / OUT_OF_POOL, {"member": name, "reason": reason, "worker": self.worker_id}
        )

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
        self._lock, self.member = None, None

    def describe_out(self) -> str:
        return "; ".join(f"{item.member}: {item.reason}" for item in out_of_pool(self.lease_dir)) or "none"

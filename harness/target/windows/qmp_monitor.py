"""A synchronous handle on QEMU's monitor (QMP) that never misses an event.

`qemu.qmp.QMPClient` is asyncio; the harness is synchronous. Its own sync shim (`qemu.qmp.legacy`)
only reads the socket while a call is in progress, so an event's arrival time is lost and it uses the
caller's event loop. Here the client lives on its own event loop in a daemon thread that reads all the
time: every event (GUEST_PANICKED, RESET, STOP, JOB_STATUS_CHANGE, ...) is stored with the host's
monotonic time of arrival, and callers wait for one by name. Commands cross to the loop with
`asyncio.run_coroutine_threadsafe`. The protocol itself (greeting, capabilities negotiation, framing)
is all qemu.qmp's; this module only bridges threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qemu.qmp import ExecuteError, QMPClient

from harness.target.base import TargetError


class QmpError(TargetError):
    """QEMU's monitor could not be reached, or refused a command (QEMU's own reason attached)."""


@dataclass(frozen=True)
class QmpEvent:
    """One QMP event: its name, its data, and when (host monotonic clock) it arrived."""

    name: str
    data: dict[str, Any]
    received: float


@dataclass
class _EventLog:
    events: list[QmpEvent] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def add(self, event: QmpEvent) -> None:
        with self.changed:
            self.events.append(event)
            self.changed.notify_all()


class QmpMonitor:
    """Connected to one QEMU's QMP unix socket until `close()`."""

    def __init__(self, socket_path: Path, *, connect_timeout: float = 10.0, name: str = "qemu") -> None:
        self.socket_path = socket_path
        self._log = _EventLog()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"qmp-{name}", daemon=True)
        self._thread.start()
        try:
            self._client: QMPClient = self._call(self._make_client(name), connect_timeout, "start")
            self._call(self._connect(), connect_timeout, "connect")
        except BaseException:
            self._stop_loop()
            raise

    @staticmethod
    async def _make_client(name: str) -> QMPClient:
        return QMPClient(name)

    async def _connect(self) -> None:
        await self._client.connect(str(self.socket_path))
        # Held here: the event loop keeps only a weak reference to a task.
        self._pump_task = asyncio.get_running_loop().create_task(self._pump())

    async def _pump(self) -> None:
        while True:  # drains the client's default listener, so its queue never grows
            event = await self._client.events.get()
            self._log.add(QmpEvent(event["event"], dict(event.get("data", {})), time.monotonic()))

    def _call(self, coroutine: Any, timeout: float, what: str) -> Any:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(timeout)
        except ExecuteError as error:
            raise QmpError(f"QMP {what} refused by QEMU: {error.error.desc}") from None
        except TimeoutError:
            future.cancel()
            raise QmpError(f"QMP {what} got no answer from {self.socket_path} in {timeout:g} s") from None
        except (OSError, EOFError) as error:
            raise QmpError(f"QMP {what} on {self.socket_path} failed: {error}") from None
        except Exception as error:  # qemu.qmp's ConnectError, StateError, ... carry their own text
            raise QmpError(
                f"QMP {what} on {self.socket_path} failed: {type(error).__name__}: {error}"
            ) from None

    def execute(self, command: str, arguments: dict[str, Any] | None = None, *, timeout: float = 30.0) -> Any:
        """Run one QMP command and return its `return` value."""
        return self._call(self._client.execute(command, arguments), timeout, command)

    def events(self, since: float = 0.0, name: str | None = None) -> list[QmpEvent]:
        """Events received at or after `since` (monotonic), optionally of one name."""
        with self._log.changed:
            return [e for e in self._log.events if e.received >= since and (name is None or e.name == name)]

    def wait_for(
        self,
        name: str | tuple[str, ...],
        *,
        since: float,
        timeout: float,
        match: Callable[[QmpEvent], bool] = lambda _event: True,
    ) -> QmpEvent | None:
        """The first `name` event (or one of several names) received since `since` that `match`
        accepts; None after `timeout` s."""
        names = (name,) if isinstance(name, str) else name
        deadline = time.monotonic() + timeout
        with self._log.changed:
            while True:
                for event in self._log.events:
                    if event.received >= since and event.name in names and match(event):
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._log.changed.wait(remaining)

    def close(self) -> None:
        if self._loop.is_closed():
            return
        if self._client.runstate.name != "IDLE":
            # QEMU may be gone already (quit, killed): nothing left to say goodbye to.
            with contextlib.suppress(QmpError):
                self._call(self._client.disconnect(), 5.0, "disconnect")
        self._stop_loop()

    @staticmethod
    async def _cancel_pending() -> None:
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _stop_loop(self) -> None:
        with contextlib.suppress(QmpError):
            self._call(self._cancel_pending(), 5.0, "shutdown")
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5.0)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> QmpMonitor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

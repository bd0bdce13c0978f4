"""The live progress of `lkdh run`: scenario n/N, the current step, elapsed time, and waits (a
`wait` step, or a target waiting out the one-live-dump-per-minute rule, F06) named as such.

It writes to stderr, so stdout keeps only the result table and can be piped or diffed. On a
terminal one status line is redrawn in place (twice a second, so a long wait counts up) and a
line per finished scenario scrolls above it. Anywhere else (CI logs, pipes) it degrades to plain
lines: one when a scenario starts and ends, one per wait, and with `-v` one per step, never a
carriage return or an escape sequence. Waits announced by a target arrive as INFO log records of
the `harness` loggers (the Windows target logs its spacing wait there) and are shown the same way.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from harness.record import RunRecord, StepRecord
from harness.report.table import OUTCOME_LABELS
from harness.runner import RunListener

CLEAR_LINE = "\r\x1b[2K"
WIDTH = 100
WAIT_WORDS = ("waiting", "wait ")


def clock_text(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes:02d}:{rest:02d}"


class LiveProgress(RunListener):
    """Progress over a whole `lkdh run`; `scenario_started` advances n of `total`."""

    def __init__(
        self,
        total: int,
        stream: TextIO | None = None,
        *,
        verbose: bool = False,
        live: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        interval: float = 0.5,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.total = total
        self.verbose = verbose
        self.live = self.stream.isatty() if live is None else live
        self.clock = clock
        self.interval = interval
        self.number = 0
        self.began = clock()
        self.scenario = ""
        self.scenario_began = self.began
        self.activity = ""
        self.activity_began = self.began
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._log = _WaitLog(self)
        self._level = logging.NOTSET
        self.planned_steps = 0
        """Steps of the scenario about to run (`lkdh run` sets it; the record grows step by step)."""

    # --- lifetime ------------------------------------------------------------------------------
    def __enter__(self) -> LiveProgress:
        logger = logging.getLogger("harness")
        self._level = logger.level
        logger.setLevel(logging.INFO)  # targets announce waits at INFO
        logger.addHandler(self._log)
        if self.live:
            self._ticker = threading.Thread(target=self._tick, name="lkdh-progress", daemon=True)
            self._ticker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        logger = logging.getLogger("harness")
        logger.removeHandler(self._log)
        logger.setLevel(self._level)
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        with self._lock:
            if self.live:
                self.stream.write(CLEAR_LINE)
                self.stream.flush()

    # --- runner events -------------------------------------------------------------------------
    def scenario_started(self, record: RunRecord) -> None:
        self.number += 1
        self.scenario = record.scenario
        self.scenario_began = self.clock()
        self._set_activity("preparing")
        if not self.live:
            self._line(f"[{self.number}/{self.total}] {record.scenario} on {record.target}: started")

    def scenario_kept(self, record: RunRecord) -> None:
        """A scenario a resumed run does not run again (the journal has its result): it still takes
        its place in the count, so the next scenario is shown as what it is, e.g. [2/3]."""
        self.number += 1
        self._line(f"[{self.number}/{self.total}] {record.scenario}: {record.outcome}, kept from the journal")

    def step_started(self, record: RunRecord, step: StepRecord) -> None:
        text = f"step {step.index}/{max(self.planned_steps, step.index)} {step.title}"
        if step.operation == "wait":
            text = f"waiting: {text} (scenario step)"
            if not self.live:
                self._line(f"[{self.number}/{self.total}] {record.scenario}: {text}")
        self._set_activity(text)

    def step_finished(self, record: RunRecord, step: StepRecord) -> None:
        if self.verbose:
            self._line(f"  {record.scenario} step {step.index}: {step.title}: {step.outcome}")

    def scenario_finished(self, record: RunRecord) -> None:
        if record.scenario != self.scenario:  # skipped before it started (a missing feature)
            self.number += 1
        label = OUTCOME_LABELS[record.outcome]
        self._line(
            f"[{self.number}/{self.total}] {label:<5} {record.scenario} ({record.seconds:.1f} s, "
            f"{len(record.dumps)} dumps)"
        )
        self.scenario = ""

    def target_said(self, message: str) -> None:
        """A target announced something it is doing (a wait, a revert, provisioning)."""
        self._set_activity(message)
        if not self.live and any(word in message for word in WAIT_WORDS):
            self._line(f"[{self.number}/{self.total}] {message}")

    # --- drawing -------------------------------------------------------------------------------
    def status_line(self) -> str:
        """`[3/10] irql_store 00:12 | waiting: step 4/6 wait 61 s 00:05 | total 01:05`, cut to 100."""
        now = self.clock()
        parts = [
            f"[{self.number}/{self.total}] {self.scenario or '-'} {clock_text(now - self.scenario_began)}"
        ]
        if self.activity:
            parts.append(f"{self.activity} {clock_text(now - self.activity_began)}")
        parts.append(f"total {clock_text(now - self.began)}")
        line = " | ".join(parts)
        return line if len(line) <= WIDTH - 1 else line[: WIDTH - 2] + "…"

    def _set_activity(self, text: str) -> None:
        with self._lock:
            self.activity, self.activity_began = text, self.clock()
        self._redraw()

    def _line(self, text: str) -> None:
        with self._lock:
            prefix = CLEAR_LINE if self.live else ""
            self.stream.write(f"{prefix}{text}\n")
            if self.live and self.scenario:
                self.stream.write(self.status_line())
            self.stream.flush()

    def _redraw(self) -> None:
        if not self.live:
            return
        with self._lock:
            self.stream.write(CLEAR_LINE + self.status_line())
            self.stream.flush()

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            if self.scenario:
                self._redraw()


class _WaitLog(logging.Handler):
    """Hands INFO records of the harness's loggers (targets announcing waits) to the display."""

    def __init__(self, progress: LiveProgress) -> None:
        super().__init__(logging.INFO)
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        self.progress.target_said(record.getMessage())

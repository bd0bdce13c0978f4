"""The crash-safe run journal: every step's outcome and every collected dump, on disk as it happens.

A nightly on real VMs takes hours; a harness killed with SIGKILL, or a host that reboots, must not
lose what already ran. The journal is JSON Lines, one event per line, each line written with one
`write` and made durable with `fsync` before the run goes on (a line cut short by the kill is the
only possible damage, and the reader drops an unterminated last line). The events:
- `scenario_started` {scenario, file, target};
- `step` {scenario, index, outcome} for each finished step;
- `dump` {scenario, path, sha256, remote_name} for each collected dump;
- `scenario_finished` {scenario, record}: the scenario's full run record, as in run-record.json.

`lkdh run --resume FILE` reads it back: scenarios with a `scenario_finished` line are not run again
and their recorded result stands; a scenario that started but did not finish is run again from the
beginning on a freshly prepared target (reverted VM, new simulated machine); the journal is then
appended to, so a resumed run can itself be killed and resumed. Only whole scenarios are replayed:
re-running half a scenario would need the machine's state at the cut, which only a revert gives.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.record import RunRecord, StepRecord
from harness.runner import RunListener
from harness.target.ops import CollectedDump, Crash

VERSION = 1


class JournalError(ValueError):
    """The journal cannot be resumed from; the message names the file, line and what was wrong."""


class RunJournal(RunListener):
    """Appends one fsynced JSON line per run event to `path`.

    Events name their scenario by `record.scenario` (what `lkdh run` resumes by); `keyed(name)`
    gives a view that names them `name` instead (the pytest plugin resumes by item node id, since
    one scenario is an item per target). Several processes may append to one journal (xdist
    workers): each line is one O_APPEND write, which Linux never interleaves."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.key: str | None = None
        self._owner = True
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if os.fstat(self._fd).st_size == 0:
            self._append({"event": "journal", "version": VERSION})

    def keyed(self, key: str) -> RunJournal:
        """This journal, naming every event's scenario `key`; closing the view closes nothing."""
        view = copy.copy(self)
        view.key, view._owner = key, False
        return view

    def _name(self, record: RunRecord) -> str:
        return self.key if self.key is not None else record.scenario

    def close(self) -> None:
        if self._fd >= 0 and self._owner:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> RunJournal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _append(self, event: dict[str, Any]) -> None:
        line = (json.dumps(event, sort_keys=True) + "\n").encode("utf-8")
        os.write(self._fd, line)  # O_APPEND: one write, so lines never interleave
        os.fsync(self._fd)

    def scenario_started(self, record: RunRecord) -> None:
        self._append(
            {
                "event": "scenario_started",
                "scenario": self._name(record),
                "file": str(record.file),
                "target": record.target,
            }
        )

    def step_finished(self, record: RunRecord, step: StepRecord) -> None:
        self._append(
            {"event": "step", "scenario": self._name(record), "index": step.index, "outcome": step.outcome}
        )

    def dump_collected(self, record: RunRecord, dump: CollectedDump, summary: str) -> None:
        self._append(
            {
                "event": "dump",
                "scenario": self._name(record),
                "path": str(dump.path),
                "sha256": dump.sha256,
                "remote_name": dump.remote_name,
            }
        )

    def scenario_finished(self, record: RunRecord) -> None:
        self._append(
            {"event": "scenario_finished", "scenario": self._name(record), "record": record.to_json()}
        )


@dataclass
class JournalState:
    """What a journal says already happened."""

    finished: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Scenario name -> its run record (run-record.json form), for scenarios that ran to the end."""
    cut_off: list[str] = field(default_factory=list)
    """Scenarios that started and never finished: the run was killed inside them."""
    dumps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def collected(self) -> frozenset[tuple[str, str]]:
        """(guest name, SHA-256) of every dump collected before the cut: not to be pulled again."""
        return frozenset((dump["remote_name"], dump["sha256"]) for dump in self.dumps)

    @property
    def kept_copies(self) -> dict[Path, str]:
        """Absolute local path -> SHA-256 of every copy pulled before the cut (a relative path is
        taken from the working directory, as the run that wrote it took it)."""
        return {Path(dump["path"]).absolute(): dump["sha256"] for dump in self.dumps}


def read_journal(path: Path) -> JournalState:
    """The journal's state; a missing file is an empty journal (nothing ran yet)."""
    state = JournalState()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return state
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    elif lines:
        lines.pop()  # the kill cut this line short: it was never fsynced whole
    started: list[str] = []
    for number, line in enumerate(lines, start=1):
        try:
            event = json.loads(line)
            kind = event["event"]
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise JournalError(f"{path}:{number}: not a journal line ({error})") from None
        if kind == "journal" and event.get("version") != VERSION:
            raise JournalError(
                f"{path}:{number}: journal version {event.get('version')!r}, expected {VERSION}"
            )
        if kind == "scenario_started":
            started.append(event["scenario"])
        elif kind == "scenario_finished":
            state.finished[event["scenario"]] = event["record"]
        elif kind == "dump":
            state.dumps.append(event)
    state.cut_off = [name for name in dict.fromkeys(started) if name not in state.finished]
    return state


def record_from_json(document: dict[str, Any]) -> RunRecord:
    """A RunRecord back from its run-record.json form (`RunRecord.to_json`), for a resumed run's
    table and record file; the inverse of to_json for every field it writes."""
    dumps = {
        item["path"]: CollectedDump(Path(item["path"]), item["kind"], item["sha256"], item["remote_name"])
        for item in document["dumps"]
    }
    steps = []
    for item in document["steps"]:
        crash = item["crash"]
        steps.append(
            StepRecord(
                index=item["index"],
                operation=item["operation"],
                title=item["title"],
                location=item["location"],
                outcome=item["outcome"],
                status=item["status"],
                failures=list(item["failures"]),
                crash=None
                if crash is None
                else Crash(crash["bugcheck_code"], tuple(crash["parameters"]), crash["reason"]),
                dumps=[dumps[path] for path in item["dumps"] if path in dumps],
            )
        )
    return RunRecord(
        scenario=document["scenario"],
        file=Path(document["file"]),
        location=document["location"],
        target=document["target"],
        profile=document["profile"],
        target_facts=dict(document["target_facts"]),
        known_defect=document["known_defect"],
        defect_active=document["defect_active"],
        defect_note=document["defect_note"],
        outcome=document["outcome"],
        steps=steps,
        dumps=list(dumps.values()),
        error=document["error"],
        skip_reason=document["skip_reason"],
        seconds=document["seconds"],
    )

"""The JSON run record: every scenario's outcome, steps, failures and dump paths, for CI tooling."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from harness.record import RunRecord


def write_run_record(path: Path, records: Sequence[RunRecord]) -> Path:
    """Write all records as one JSON document (stable key order)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"version": 1, "scenarios": [record.to_json() for record in records]}
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path

"""Did a known-defect scenario fail the way its defect says? (`harness.target.defects` signatures)

A scenario citing `known_defect` on a machine that has the defect is predicted to fail. Any failure
is not good enough: a scenario that stumbles at its first `alloc` proves nothing about Remove. So
the first failing step is matched against the defect's signature; only a match counts as the
defect reproduced, and a mismatch is reported as a plain failure naming what the defect would do.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.target.defects import KNOWN_DEFECTS, KnownDefect, Signature
from harness.target.ops import Crash
from harness.target.status import status_name
from harness.verify.mismatch import Mismatch, YamlPath
from harness.verify.outcome import describe_crash

STATUS_PATH: YamlPath = ("expect", "status")


@dataclass(frozen=True)
class StepFailure:
    """The first failing step of a run, with what the machine did there."""

    index: int
    """1-based, as the failure messages count steps."""
    operation: str
    status: int | None
    crash: Crash | None
    mismatches: tuple[Mismatch, ...]


def key_path(path: YamlPath) -> str:
    """('expect', 'dump', 'parameters', 1) -> 'expect.dump.parameters.1'."""
    return ".".join(str(part) for part in path)


def covers(pattern: str, path: YamlPath) -> bool:
    """Whether the signature's key path `pattern` names `path` or a node above it (`*`: any one)."""
    wanted = pattern.split(".")
    found = [str(part) for part in path]
    if len(wanted) > len(found):
        return False
    return all(want in ("*", got) for want, got in zip(wanted, found, strict=False))


def explains(signature: Signature, failure: StepFailure) -> bool:
    """Whether the signature accounts for this step's failure (rules: harness.target.defects)."""
    if signature.operations and failure.operation not in signature.operations:
        return False
    if failure.crash is not None:
        code, parameters = failure.crash.bugcheck_code, failure.crash.parameters
        return any(bugcheck.matches(code, parameters) for bugcheck in signature.bugchecks)
    if not failure.mismatches:
        return False
    return all(_explained(signature, failure, mismatch) for mismatch in failure.mismatches)


def _explained(signature: Signature, failure: StepFailure, mismatch: Mismatch) -> bool:
    if mismatch.path == STATUS_PATH and failure.status in signature.statuses:
        return True
    return any(covers(pattern, mismatch.path) for pattern in signature.expectations)


def defect_verdict(defect_id: str, failure: StepFailure | None) -> str | None:
    """None when `failure` is the defect's; otherwise the sentence that says why it is not."""
    defect: KnownDefect = KNOWN_DEFECTS[defect_id]
    if failure is not None and explains(defect.signature, failure):
        return None
    expected = (
        f"known defect {defect.id} ({', '.join(defect.facts)}) was expected to show as "
        f"{defect.signature.describe()}"
    )
    if failure is None:
        return f"{expected}, but no step failed"
    return f"{expected}; instead step {failure.index} ({failure.operation}) failed with {_what(failure)}"


def _what(failure: StepFailure) -> str:
    if failure.crash is not None:
        return describe_crash(failure.crash)
    parts = []
    for mismatch in failure.mismatches:
        text = f"`{key_path(mismatch.path)}`"
        if mismatch.path == STATUS_PATH and failure.status is not None:
            text += f" (status {status_name(failure.status)})"
        parts.append(text)
    return "a failing " + ", ".join(parts)

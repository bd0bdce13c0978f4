"""The YAML scenario a predicted sequence becomes: each `Step` one scenario step, its `expect` the
model's prediction, so running the file checks the target against the model and a failing file is
ready to keep, review and file (README: Scenario language)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from harness.explore.model import BUFFERS, CALLER_SECONDARY, CALLER_SECONDARY_TEXT, Call, Step
from harness.target.irql import Irql

CREATE_CODE = 0x1E0
IOCTL_CODE = 0x1E1
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def scenario_yaml(name: str, steps: Sequence[Step], description: str, header: str = "") -> str:
    """The sequence as one scenario document; `header` becomes its leading comment."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    lines += [
        f"name: {name}",
        f"description: {flow(description)}",
        "tags: [explore]",
        f"requires: [{', '.join(requirements(steps))}]",
        "steps:",
    ]
    for step in steps:
        lines.append(f"  - {_operation(step.call)}")
        if step.call.irql is not Irql.PASSIVE_LEVEL:
            lines.append(f"    irql: {step.call.irql.name}")
        if step.expect is not None:
            lines.append(f"    expect: {flow(step.expect)}")
    return "\n".join(lines) + "\n"


def requirements(steps: Sequence[Step]) -> list[str]:
    """The features the sequence needs: Verifier always (the IRQL promises are judged under it,
    F14/F38), the IOCTL path and a standard user when it uses them."""
    needs = {"test-driver", "verifier"}
    for step in steps:
        if step.call.operation == "ioctl_create":
            needs |= {"ioctl", "admin"}
            if step.call.caller != "admin":
                needs.add("non-admin-user")
    return sorted(needs)


def _operation(call: Call) -> str:
    match call.operation:
        case "alloc":
            return f"alloc: {{name: {call.buffer}, size: {BUFFERS[call.buffer]}}}"
        case "store" | "remove":
            return f"{call.operation}: {call.buffer}"
        case "store_collection":
            return f"store_collection: 0x{call.value:X}"
        case "wait":
            return f"wait: {call.value}"
        case "reboot":
            return "reboot: true"
    fields: dict[str, Any] = {
        "bugcheck_code": IOCTL_CODE if call.operation == "ioctl_create" else CREATE_CODE,
        "parameter": call.value,
        "exclude_dmf_data": call.exclude,
    }
    if call.structures:
        fields["client_structures"] = list(call.structures)
    if call.secondary == CALLER_SECONDARY:
        fields["secondary_data"] = {"text": CALLER_SECONDARY_TEXT}
    elif call.secondary:
        fields["secondary_data"] = call.secondary
    if call.caller != "admin":
        fields["caller"] = call.caller
    return f"{call.operation}: {flow(fields)}"


def flow(value: Any) -> str:
    """`value` as YAML flow text: mappings and lists inline, names bare, other text quoted."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {flow(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(flow(item) for item in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"0x{value:X}" if value > 9 else str(value)
    text = str(value)
    return text if _PLAIN.match(text) and text not in ("true", "false", "null") else json.dumps(text)

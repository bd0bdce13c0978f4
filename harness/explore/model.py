"""The reference model `lkdh explore` predicts with: the documented contract of DMF_LiveKernelDump
(../shared/seed), small enough to read in one sitting, and the YAML scenario a sequence becomes.

An operation sequence is a list of `Call`s on a fixed set of buffers (`BUFFERS`, allocated first).
The model follows the documentation only:

- DataBufferSourceAdd / Remove "can be called at IRQL <= DISPATCH_LEVEL" and return (Add: success);
  Remove removes the exact (buffer, size) entry, every duplicate of it (F12 agrees).
- LiveKernelMemoryDumpCreate, at PASSIVE_LEVEL only, writes a dump that "includes all the data buffers
  stored"; with ExcludeDmfData the dump holds no stored buffer and P2 is 0 (F01/F02: the documented
  flag, as both profiles show it). One report per minute (F06): the model waits 61 s before each.

Each call becomes a scenario step whose `expect` is the model's prediction, so the sequence IS a
scenario: running it checks the target against the model, and a failing one is ready to file.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.target.irql import Irql

BUFFERS: dict[str, int] = {"b0": 16, "b1": 24}
"""The buffers a sequence may use, by name and size (distinct sizes: a dump shows whose bytes)."""


@dataclass(frozen=True)
class Call:
    """One module call: `store`, `remove` or `create` (with `exclude` for ExcludeDmfData)."""

    operation: str
    buffer: str = ""
    irql: Irql = Irql.PASSIVE_LEVEL
    exclude: bool = False

    def describe(self) -> str:
        if self.operation == "create":
            return f"create(exclude_dmf_data={int(self.exclude)})"
        level = "" if self.irql is Irql.PASSIVE_LEVEL else f" at {self.irql.name}"
        return f"{self.operation}({self.buffer}){level}"


@dataclass
class ContractModel:
    """What the documentation predicts after each call: the buffers a dump must hold."""

    stored: list[str]

    @classmethod
    def empty(cls) -> ContractModel:
        return cls([])

    def apply(self, call: Call) -> None:
        if call.operation == "store":
            self.stored.append(call.buffer)
        elif call.operation == "remove":
            self.stored = [name for name in self.stored if name != call.buffer]

    def dump_prediction(self, call: Call) -> tuple[list[str], list[str]]:
        """(must contain, must exclude) for a Create: stored buffers in, the others out."""
        held = sorted(set(self.stored))
        if call.exclude:
            return [], sorted(BUFFERS)  # F01: ExcludeDmfData leaves every stored buffer out
        return held, sorted(set(BUFFERS) - set(held))


def scenario_yaml(name: str, calls: list[Call], description: str, header: str = "") -> str:
    """The sequence as a scenario document, each step's `expect` the model's prediction."""
    used = sorted({call.buffer for call in calls if call.buffer})
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    lines += [
        f"name: {name}",
        f"description: {description}",
        "tags: [explore]",
        "requires: [test-driver, verifier]",
        "steps:",
    ]
    lines += [f"  - alloc: {{name: {buffer}, size: {BUFFERS[buffer]}}}" for buffer in used]
    model = ContractModel.empty()
    for call in calls:
        if call.operation == "create":
            lines += _create_lines(model, call, used)
        else:
            lines.append(f"  - {call.operation}: {call.buffer}")
            if call.irql is not Irql.PASSIVE_LEVEL:
                lines.append(f"    irql: {call.irql.name}")
        model.apply(call)
    return "\n".join(lines) + "\n"


def _create_lines(model: ContractModel, call: Call, used: list[str]) -> list[str]:
    contains, excludes = model.dump_prediction(call)
    excludes = [name for name in excludes if name in used]
    lines = [
        "  - wait: 61",
        f"  - create: {{bugcheck_code: 0x1E0, parameter: 1, exclude_dmf_data: {str(call.exclude).lower()}}}",
        "    expect:",
        "      dump:",
        f"        parameters: [1, {'0' if call.exclude else 'collection'}]",
    ]
    if contains:
        lines.append(f"        contains: [{', '.join(contains)}]")
    if excludes:
        lines.append(f"        excludes: [{', '.join(excludes)}]")
    return lines

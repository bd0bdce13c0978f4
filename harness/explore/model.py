"""The reference models `lkdh explore` predicts with: the documented contract of DMF_LiveKernelDump
(../shared/seed, the module doc), and the same contract with DMF bfac434's known defects.

A sequence is a list of `Call`s on a fixed set of buffers (`BUFFERS`). The model turns each call into
a `Step`: the call and the expectation the scenario step carries (`None`: the default, success and
no crash), and it keeps only what the documentation speaks of:

- Add / Remove "can be called at IRQL <= DISPATCH_LEVEL" and return; Remove drops the buffer (every
  duplicate of it, F12 agrees). StoreDmfCollectionAsBugcheckParameter (PASSIVE) sets what the next
  dump shows as its second parameter.
- LiveKernelMemoryDumpCreate (PASSIVE) writes a dump that "includes all the data buffers stored", the
  client structures and the secondary data; ExcludeDmfData is a BOOLEAN, "when set to true" (any
  non-zero byte, as C reads a BOOLEAN) the dump holds no stored buffer and P2 is 0 (F01/F02).
- IOCTL_LIVEKERNELDUMP_CREATE is the same Create from an application, administrators only (F26), and,
  as for every METHOD_BUFFERED IOCTL with embedded pointers, those pointers are user-mode buffers the
  driver probes ("Buffer Descriptions for I/O Control Codes", "Handling embedded pointers" in the
  WDK docs): a kernel address there is refused with STATUS_ACCESS_VIOLATION.
- One live report per minute (F06, lkmdtel's documented STATUS_OBJECT_NAME_COLLISION): `ReportSpacing`
  says whether the next Create is certainly allowed, certainly refused, or cannot be told (a reboot's
  length is the machine's). The generator never leaves a Create in the last state: it waits first.
- A reboot (or a predicted crash, which reboots) forgets every buffer and stored entry.

`Bfac434Model` is the contract with bfac434's defects (harness/target/defects.py), each deviation
tagged with its defect id: run against dmf-bfac434 it predicts what the shipped module does, so a
campaign with it finds only what is new there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.target.irql import Irql

BUFFERS: dict[str, int] = {"b0": 16, "b1": 24}
"""The buffers a sequence may use, by name and size (distinct sizes: a dump shows whose bytes)."""

CALLER_SECONDARY = "caller"
"""An IOCTL's secondary data held in the calling application's own memory (a user-mode buffer)."""
CALLER_SECONDARY_TEXT = "explore secondary"
COLLECTION_VALUES = (0xFFFF_B000_1234_5678, 0x1)
REPORT_SPACING_SECONDS = 60.0
"""F06: one live report per minute per machine."""
STEPS_WELL_WITHIN_A_MINUTE = 4
"""How many steps after a report still certainly fall inside its minute (on a VM a step takes a few
seconds of wall time, never 15)."""

ANY_LOCK_BUGCHECK = [0xC4, 0x10D, 0xA, 0xD1]  # F14/F38 at DISPATCH_LEVEL under Verifier
APC_LOCK_BUGCHECK = [0x1, 0x10D]  # F38 at APC_LEVEL under KMDF's verifier
REMOVE_BUGCHECK = [0xD1, 0xA, 0x7E, 0x3B]  # F13/F33


@dataclass(frozen=True)
class Call:
    """One operation of a generated sequence (the scenario step it becomes: `scenario_text.py`)."""

    operation: str
    """alloc, store, remove, store_collection, create, ioctl_create, wait or reboot."""
    buffer: str = ""
    irql: Irql = Irql.PASSIVE_LEVEL
    exclude: int = 0
    """The raw ExcludeDmfData byte: 0, 1, or another value (F17)."""
    structures: tuple[str, ...] = ()
    """Client structures, by buffer name (for the IOCTL: their kernel addresses)."""
    secondary: str = ""
    """Secondary data: a buffer name, CALLER_SECONDARY (IOCTL only), or none."""
    caller: str = "admin"
    """IOCTL caller: admin or standard-user (F26)."""
    value: int = 0
    """store_collection's value; wait's seconds; a create's BugCheckParameter (P1)."""

    @property
    def kernel_pointers(self) -> bool:
        """An IOCTL passing kernel addresses in its embedded pointers (the F27 disclosure path)."""
        return bool(self.structures) or self.secondary not in ("", CALLER_SECONDARY)

    def describe(self) -> str:
        level = "" if self.irql is Irql.PASSIVE_LEVEL else f" at {self.irql.name}"
        if self.operation in ("alloc", "store", "remove"):
            return f"{self.operation}({self.buffer}){level}"
        if self.operation == "store_collection":
            return f"store_collection(0x{self.value:X})"
        if self.operation == "wait":
            return f"wait({self.value})"
        if self.operation == "reboot":
            return "reboot"
        parts = [f"exclude_dmf_data={self.exclude}"]
        if self.structures:
            parts.append(f"client_structures=[{', '.join(self.structures)}]")
        if self.secondary:
            parts.append(f"secondary_data={self.secondary}")
        if self.caller != "admin":
            parts.append(f"caller={self.caller}")
        return f"{self.operation}({', '.join(parts)})"


@dataclass(frozen=True)
class Step:
    """A call with the model's prediction: `expect` as the scenario states it (None: success)."""

    call: Call
    expect: dict[str, Any] | None
    aspects: frozenset[str]
    """What is unusual about the call (its IRQL, a stored buffer's removal, an ExcludeDmfData value,
    kernel pointers in an IOCTL): a finding's key, and what the generator avoids once found."""
    defect: str | None = None
    """The known defect the model's prediction follows here (Bfac434Model only)."""


def aspects_of(call: Call, stored: bool = False) -> frozenset[str]:
    """The call's unusual choices; an ordinary call is just its operation."""
    found: set[str] = set()
    if call.irql is not Irql.PASSIVE_LEVEL:
        found.add(f"at {call.irql.name}")
    elif call.operation == "remove" and stored:
        found.add("remove of a stored buffer")
    if call.operation in ("create", "ioctl_create"):
        if call.exclude:
            found.add("exclude_dmf_data=1" if call.exclude == 1 else "exclude_dmf_data=other")
        if call.operation == "ioctl_create" and call.kernel_pointers:
            found.add("ioctl with kernel pointers")
        if call.caller != "admin":
            found.add("ioctl from a standard user")
    return frozenset(found or {call.operation})


@dataclass
class ReportSpacing:
    """What the model knows of the time since the last live report (F06)."""

    submitted: bool = False
    waited: float = 0.0
    steps: int = 0
    unknown: bool = False
    """A reboot happened since the report: how long it took is the machine's."""

    def state(self) -> str:
        """'free' (the next Create is allowed), 'collision' (it is refused) or 'unknown'."""
        if not self.submitted or self.waited >= REPORT_SPACING_SECONDS:
            return "free"
        if not self.unknown and self.waited <= 1 and self.steps <= STEPS_WELL_WITHIN_A_MINUTE:
            return "collision"
        return "unknown"


@dataclass
class ContractModel:
    """The module as documented: what each call must do, given the calls before it."""

    name = "contract"
    allocated: list[str] = field(default_factory=list)
    stored: list[str] = field(default_factory=list)
    collection: int | str = "collection"
    """What P2 shows without ExcludeDmfData: the framework's DmfCollection until store_collection."""
    spacing: ReportSpacing = field(default_factory=ReportSpacing)

    def predict(self, call: Call) -> Step:
        """The step `call` becomes, and the model's state after it."""
        aspects = aspects_of(call, call.buffer in self.stored)
        spacing = self.spacing
        deviation = self._deviation(call)
        if deviation is not None:
            expect, defect = deviation
            if "bugcheck" in expect:
                self._reboot()
            step = Step(call, expect, aspects, defect)
        else:
            step = Step(call, getattr(self, f"_{call.operation}")(call), aspects)
        if self.spacing is spacing:  # not a new report: one more step since the last one
            spacing.steps += 1
        return step

    def _deviation(self, call: Call) -> tuple[dict[str, Any], str] | None:
        """Where a variant model departs from the contract: (expect, defect id)."""
        return None

    def _alloc(self, call: Call) -> None:
        self.allocated.append(call.buffer)

    def _store(self, call: Call) -> None:
        self.stored.append(call.buffer)

    def _remove(self, call: Call) -> None:
        self.stored = [name for name in self.stored if name != call.buffer]

    def _store_collection(self, call: Call) -> None:
        self.collection = call.value

    def _wait(self, call: Call) -> None:
        self.spacing.waited += call.value

    def _reboot(self, call: Call | None = None) -> None:
        self.allocated, self.stored, self.collection = [], [], "collection"
        self.spacing.unknown = self.spacing.submitted

    def _ioctl_create(self, call: Call) -> dict[str, Any]:
        if call.caller != "admin":
            return {"status": "STATUS_ACCESS_DENIED"}  # F26
        if call.kernel_pointers:
            return {"status": "STATUS_ACCESS_VIOLATION"}  # embedded pointers are probed as user buffers
        return self._create(call)

    def _create(self, call: Call, *, insert_dmf_data: bool | None = None, p2_zero: bool | None = None):
        if self.spacing.state() == "collision":
            return {"status": "STATUS_OBJECT_NAME_COLLISION"}  # F06
        excluded = call.exclude != 0  # a BOOLEAN: any non-zero value is TRUE
        insert = not excluded if insert_dmf_data is None else insert_dmf_data
        zero = excluded if p2_zero is None else p2_zero
        contains = sorted((set(self.stored) if insert else set()) | set(call.structures))
        dump: dict[str, Any] = {"parameters": [call.value, 0 if zero else self.collection]}
        if contains:
            dump["contains"] = contains
        excludes = [name for name in self.allocated if name not in contains]
        if excludes:
            dump["excludes"] = sorted(excludes)
        if call.secondary == CALLER_SECONDARY:
            dump["secondary_data"] = [{"hex": CALLER_SECONDARY_TEXT.encode().hex(" ")}]
        elif call.secondary:
            dump["secondary_data"] = [{"buffer": call.secondary}]
        self.spacing = ReportSpacing(submitted=True)
        return {"dump": dump}


@dataclass
class Bfac434Model(ContractModel):
    """The contract with DMF bfac434's known defects (DMF_FACTS.md), each tagged with its id."""

    name = "bfac434"

    def _deviation(self, call: Call) -> tuple[dict[str, Any], str] | None:
        if call.operation in ("store", "remove", "store_collection"):
            if call.irql is Irql.APC_LEVEL:
                return {"bugcheck": APC_LOCK_BUGCHECK}, "apc-wait-lock"  # F38
            if call.irql is Irql.DISPATCH_LEVEL:
                return {"bugcheck": ANY_LOCK_BUGCHECK}, "dispatch-wait-lock"  # F14/F38
        if call.operation == "remove" and call.buffer in self.stored:
            return {"bugcheck": REMOVE_BUGCHECK}, "remove-null-context"  # F13/F33
        if call.operation not in ("create", "ioctl_create") or call.caller != "admin":
            return None
        if call.operation == "ioctl_create" and call.kernel_pointers:
            # F27: unprobed, the kernel addresses are copied (with F17 on top when it applies)
            return self._create_bfac434(call), "ioctl-unprobed-user-pointers"
        if call.exclude not in (0, 1):
            return self._create_bfac434(call), "exclude-dmf-data-nonbool"
        return None

    def _create_bfac434(self, call: Call) -> dict[str, Any]:
        """F17: `== TRUE` zeroes P2, `== FALSE` inserts the DMF data: 2 does neither."""
        return self._create(call, insert_dmf_data=call.exclude == 0, p2_zero=call.exclude == 1)


MODELS: dict[str, type[ContractModel]] = {"contract": ContractModel, "bfac434": Bfac434Model}
"""`lkdh explore --model NAME`."""


def legal(model: ContractModel, call: Call) -> bool:
    """Whether `call` may come next: its buffers allocated (alloc: not yet), and a Create whose
    report-spacing outcome the model can tell (F06)."""
    names = [call.buffer] if call.buffer else []
    names += [*call.structures, *([call.secondary] if call.secondary not in ("", CALLER_SECONDARY) else [])]
    if call.operation == "alloc":
        return call.buffer not in model.allocated
    if not all(name in model.allocated for name in names):
        return False
    return call.operation not in ("create", "ioctl_create") or model.spacing.state() != "unknown"


def predict_sequence(model_class: type[ContractModel], calls: Sequence[Call]) -> list[Step] | None:
    """The steps of `calls` from an empty start, or None when one of them is not legal there."""
    model = model_class()
    steps = []
    for call in calls:
        if not legal(model, call):
            return None
        steps.append(model.predict(call))
    return steps

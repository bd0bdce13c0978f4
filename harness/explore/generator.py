"""Sequences generated with hypothesis' stateful testing (`RuleBasedStateMachine`).

Each rule is one operation of the issue's set (alloc, store, remove, store_collection, create,
ioctl_create, wait, reboot); its preconditions and choices read the reference model, never the
target, so a sequence is a function of the seed alone (and of which disagreements were already
found), whichever target runs it. Each rule appends the model's `Step`; `teardown` hands the whole
sequence to the campaign's judge, which runs it as one scenario on a freshly prepared target and
raises `Disagreement` when the target does not do what the model predicted. hypothesis then shrinks
the rule sequence, running each candidate whole again, so the minimal program is itself a scenario
that was run. (Checking rule by rule against a live target would find the same first failure, but
the sequence that is written out would then not be the one that ran from a clean machine.)

A choice that is by itself the key of a disagreement already found (an IRQL, an ExcludeDmfData value,
kernel pointers in an IOCTL) is no longer drawn, and any other call whose aspects include every
aspect of such a key is left out (the rule does nothing): that disagreement would end the sequence
first and hide whatever comes after it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from hypothesis import HealthCheck, Phase, Verbosity, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule, run_state_machine_as_test

from harness.explore.model import (
    BUFFERS,
    CALLER_SECONDARY,
    COLLECTION_VALUES,
    Call,
    ContractModel,
    Step,
    aspects_of,
)
from harness.target.irql import Irql

LEVELS = (Irql.PASSIVE_LEVEL, Irql.APC_LEVEL, Irql.DISPATCH_LEVEL)
"""The IRQLs Add/Remove are documented for; PASSIVE first, so shrinking goes towards it."""
EXCLUDE_VALUES = (0, 1, 2)
"""ExcludeDmfData: FALSE, TRUE, and another non-zero byte (F17)."""
WAITS = (61, 1)
"""A wait past the one-report-per-minute rule (F06), and a short one inside it."""

Judge = Callable[[Sequence[Step]], None]


class SequenceMachine(RuleBasedStateMachine):
    """Generates one sequence of calls, predicted step by step by `model_class`."""

    model_class: type[ContractModel] = ContractModel
    avoid: tuple[frozenset[str], ...] = ()
    judge: Judge

    def __init__(self) -> None:
        super().__init__()
        self.model = self.model_class()
        self.steps: list[Step] = []

    def _do(self, call: Call) -> None:
        aspects = aspects_of(call, call.buffer in self.model.stored)
        if any(key <= aspects for key in self.avoid):
            return
        if call.operation in ("create", "ioctl_create") and self.model.spacing.state() == "unknown":
            self.steps.append(self.model.predict(Call("wait", value=WAITS[0])))  # F06: be certain
        self.steps.append(self.model.predict(call))

    @precondition(lambda self: len(self.model.allocated) < len(BUFFERS))
    @rule(data=st.data())
    def alloc(self, data: st.DataObject) -> None:
        free = [name for name in BUFFERS if name not in self.model.allocated]
        self._do(Call("alloc", data.draw(st.sampled_from(free), label="buffer")))

    def _open(self, aspect: str) -> bool:
        """Whether a choice with this one aspect is still worth drawing (no finding has it as key)."""
        return frozenset({aspect}) not in self.avoid

    @precondition(lambda self: self.model.allocated)
    @rule(data=st.data(), operation=st.sampled_from(["store", "remove"]))
    def buffer_call(self, data: st.DataObject, operation: str) -> None:
        """DataBufferSourceAdd or Remove of an allocated buffer (one rule for both, so a sequence
        holds as many of them as of all the rest: they are the module's everyday calls)."""
        levels = [irql for irql in LEVELS if irql is Irql.PASSIVE_LEVEL or self._open(f"at {irql.name}")]
        irql = data.draw(st.sampled_from(levels), label="irql")
        names = self.model.allocated
        if operation == "remove":  # a stored buffer is the usual one to remove; the others too
            names = [*dict.fromkeys(self.model.stored), *names]
        self._do(Call(operation, data.draw(st.sampled_from(names), label="buffer"), irql))

    @rule(data=st.data(), operation=st.sampled_from(["create", "ioctl_create"]))
    def dump(self, data: st.DataObject, operation: str) -> None:
        """LiveKernelMemoryDumpCreate, or the IOCTL that calls it for an application."""
        names = self.model.allocated
        excludes = [
            value for value in EXCLUDE_VALUES if value in (0, 1) or self._open("exclude_dmf_data=other")
        ]
        exclude = data.draw(st.sampled_from(excludes), label="exclude_dmf_data")
        parameter = len(self.steps) + 1
        if operation == "create":
            structures = data.draw(st.lists(st.sampled_from(names), max_size=2, unique=True)) if names else []
            secondary = data.draw(st.sampled_from(["", *names]), label="secondary")
            call = Call(operation, exclude=exclude, structures=tuple(structures), secondary=secondary)
        else:
            if not self._open("ioctl with kernel pointers"):
                names = []  # only the caller's own memory in the embedded pointers
            structures = data.draw(st.lists(st.sampled_from(names), max_size=1)) if names else []
            secondary = data.draw(st.sampled_from(["", CALLER_SECONDARY, *names]), label="secondary")
            caller = data.draw(st.sampled_from(["admin", "admin", "standard-user"]), label="caller")
            call = Call(
                operation, exclude=exclude, structures=tuple(structures), secondary=secondary, caller=caller
            )
        self._do(replace(call, value=parameter))

    @rule(data=st.data(), operation=st.sampled_from(["store_collection", "wait", "reboot"]))
    def machine_call(self, data: st.DataObject, operation: str) -> None:
        """StoreDmfCollectionAsBugcheckParameter, a wait (F06's minute) or a reboot."""
        if operation == "store_collection":
            self._do(Call(operation, value=data.draw(st.sampled_from(COLLECTION_VALUES), label="value")))
        elif operation == "wait":
            self._do(Call(operation, value=data.draw(st.sampled_from(WAITS), label="seconds")))
        else:
            self._do(Call(operation))

    def teardown(self) -> None:
        if self.steps:
            type(self).judge(self.steps)


def search(
    seed: int,
    *,
    steps: int,
    examples: int,
    model: type[ContractModel],
    avoid: Sequence[frozenset[str]],
    judge: Judge,
) -> None:
    """One seeded hypothesis run: up to `examples` sequences of up to `steps` rules, each judged;
    returns when all agreed, or lets the judge's `Disagreement` out for the shrunk sequence.

    The seed is hypothesis' own `@seed` on the machine class (which `run_state_machine_as_test`
    honours); `database=None`, so nothing from an earlier run is replayed: the same seed gives the
    same sequences."""
    machine = type(
        "ExploreSequences",
        (SequenceMachine,),
        {"model_class": model, "avoid": tuple(avoid), "judge": staticmethod(judge)},
    )
    run_state_machine_as_test(
        hypothesis_seed(seed)(machine),
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            database=None,
            deadline=None,
            report_multiple_bugs=False,
            suppress_health_check=list(HealthCheck),
            verbosity=Verbosity.quiet,
            phases=[Phase.generate, Phase.shrink],
        ),
    )

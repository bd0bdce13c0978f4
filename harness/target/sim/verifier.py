"""Driver Verifier as the simulated machine runs it: which bugcheck a PASSIVE-only call at raised
IRQL gives, with the parameters Microsoft documents (DMF_FACTS.md F14, F28-F30).

The module's lock is a WDF wait lock (F14): WdfWaitLockAcquire enters a critical region
(KeEnterCriticalRegion) and waits on a kernel event. Verifier's DDI compliance checking, part of
`verifier /standard` since Windows 8.1, checks KeEnterCriticalRegion with its IrqlKeApcLte2 rule:
bugcheck 0xC4 DRIVER_VERIFIER_DETECTED_VIOLATION with P1 = 0x00020010 (the rule id, documented on
the rule's page), P2 = the address of the rule's description string, P3 = the address of the rule's
internal state, P4 = the address of supplemental states (the second and third arguments of
`!ruleinfo`). Add, Remove and Create take that lock (F15), so all three report this rule.

StoreDmfCollectionAsBugcheckParameter takes no lock (F18): it is only paged code. Verifier's IRQL
checking trims pageable code and data whenever IRQL is raised, so executing it at DISPATCH_LEVEL
faults: bugcheck 0xD1 DRIVER_IRQL_NOT_LESS_OR_EQUAL, P1 = the address referenced, P2 = the IRQL,
P3 = 8 (an execute access), P4 = the faulting instruction (the same address).

Which rule fires first on a real machine is an inference [INF]: KMDF's own verifier may report
0x10D first, and F14 lists 0xC4, 0x10D, 0xA and 0xD1 as possible. Scenarios should accept that set.

Without Verifier the simulator lets the call through: an uncontended wait lock is acquired without
waiting, and the paged code is normally resident, so the real machine most often carries on; the
failure is intermittent (F14) and a simulator that crashed would predict a crash the VM rarely shows.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from harness.target.irql import Irql
from harness.target.sim.memory import KernelMemory

DRIVER_VERIFIER_DETECTED_VIOLATION = 0xC4
DRIVER_IRQL_NOT_LESS_OR_EQUAL = 0xD1
EXECUTE_ACCESS = 8


@dataclass(frozen=True)
class DdiRule:
    """A Verifier DDI compliance rule: its documented 0xC4 subcode and condition text."""

    name: str
    rule_id: int
    condition: str


IRQL_KE_APC_LTE2 = DdiRule(
    "IrqlKeApcLte2",
    0x00020010,
    "KeEnterCriticalRegion should only be called at IRQL <= APC_LEVEL.",
)
"""The rule KeEnterCriticalRegion (inside WdfWaitLockAcquire) breaks at DISPATCH_LEVEL."""


@dataclass(frozen=True)
class VerifierViolation:
    """What Verifier stops the machine with."""

    code: int
    parameters: tuple[int, int, int, int]
    reason: str
    evidence: tuple[tuple[int, bytes], ...] = ()
    """Memory worth putting in the crash dump: the rule's description string, for one."""


@dataclass
class DriverVerifier:
    """Verifier's rule state on one boot: where its strings and state blocks live in kernel memory."""

    memory: KernelMemory
    enabled: bool = True

    def __post_init__(self) -> None:
        self._rule_text = self.memory.allocate(
            len(IRQL_KE_APC_LTE2.condition) + 1, fill=IRQL_KE_APC_LTE2.condition.encode() + b"\0", tag="Vfdd"
        )
        self._rule_state = self.memory.allocate(0x40, fill=b"\0", tag="Vfdd")
        self._supplemental = self.memory.allocate(0x40, fill=b"\0", tag="Vfdd")

    def wait_lock_at(self, irql: Irql, routine: str) -> VerifierViolation | None:
        """A routine acquiring the module's wait lock at `irql` (F14, F28, F29)."""
        if not self.enabled or irql <= Irql.APC_LEVEL:
            return None
        rule = IRQL_KE_APC_LTE2
        text = self.memory.read(self._rule_text, len(rule.condition) + 1)
        return VerifierViolation(
            DRIVER_VERIFIER_DETECTED_VIOLATION,
            (rule.rule_id, self._rule_text, self._rule_state, self._supplemental),
            f"{routine} acquired the module's WDF wait lock at {irql.name}: Verifier DDI rule "
            f"{rule.name} ({rule.condition})",
            ((self._rule_text, text),),
        )

    def paged_code_at(self, irql: Irql, routine: str, image_base: int) -> VerifierViolation | None:
        """A pageable routine executed at `irql` while Verifier trims pageable memory (F30)."""
        if not self.enabled or irql <= Irql.APC_LEVEL:
            return None
        address = image_base + 0x2000 + (zlib.crc32(routine.encode()) & 0xFF0)
        return VerifierViolation(
            DRIVER_IRQL_NOT_LESS_OR_EQUAL,
            (address, int(irql), EXECUTE_ACCESS, address),
            f"{routine} (pageable, PASSIVE_LEVEL only) executed at {irql.name} with Verifier trimming "
            "pageable code",
        )

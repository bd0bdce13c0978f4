"""Driver Verifier and KMDF's verifier as the simulated machine runs them: what a PASSIVE-only lock
or routine does at raised IRQL (DMF_FACTS.md F14, F18, F28-F30, F38, F39).

The module lock is a WDF wait lock taken through DMF's paged helper (`DMF_Generic_Lock_Passive`
and its auxiliary twin, GEN.c:2217-2266, `#pragma code_seg("PAGE")`):

- DISPATCH_LEVEL, Driver Verifier on: Verifier's IRQL checking trims pageable code whenever IRQL
  is raised, so the first paged instruction faults before WdfWaitLockAcquire is even reached
  (F38): bugcheck 0xD1 DRIVER_IRQL_NOT_LESS_OR_EQUAL, P1 = the address referenced (the paged
  routine), P2 = the IRQL, P3 = 8 (execute), P4 = the faulting instruction (the same address). For
  Add/Remove that is the lock helper; for Create and StoreDmfCollectionAsBugcheckParameter, which are
  paged themselves, it is their own first instruction. (The old choice, 0xC4 IrqlKeApcLte2 from
  KeEnterCriticalRegion, needs the helper to have run first; it cannot fire before the fault.)
- APC_LEVEL, Driver Verifier on: KMDF's verifier is on too (KMDF >= 1.9 follows Driver Verifier,
  Windows-Driver-Frameworks globals.cpp:1517-1526), so `WdfWaitLockAcquire(lock, NULL)` above
  PASSIVE returns STATUS_INVALID_DEVICE_REQUEST without touching the lock (fxwaitlockapi.cpp:140-145,
  fxverifier.h:196-215; DbgBreakOnError is off by default, so no break). DMF ignores the status
  (GEN.c:2258) and later releases: `FxWaitLockInternal::ReleaseLock` (fxwaitlock.hpp:295-306) calls
  KeLeaveCriticalRegion for a region never entered, leaving the thread's KernelApcDisable at +1.
  Nothing checks that until the system call that carried the request returns to user mode, where
  the kernel stops with 0x1 APC_INDEX_MISMATCH: P1 = the system call (NtDeviceIoControlFile),
  P2 = ApcStateIndex (0), P3 = CombinedApcDisable (SpecialApcDisable << 16 | KernelApcDisable, here
  the count of unbalanced releases), P4 = 0 (a system call), as Microsoft's bug-check reference
  documents them. This is why the facts' 0x10D is not chosen: no KMDF path bugchecks here (its
  release has only a checked-build ASSERT), while the unbalanced critical region is certain. The
  operation itself completes (the entry is stored, the dump written) before the stop.
- Verifier off: an uncontended wait lock is acquired without waiting and paged code is usually
  resident; the outcome on a real machine is intermittent (F14), and the simulator lets it through.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.target.irql import Irql
from harness.target.sim.driver_image import NT_DEVICE_IO_CONTROL_FILE, DriverImage

APC_INDEX_MISMATCH = 0x1
DRIVER_IRQL_NOT_LESS_OR_EQUAL = 0xD1
EXECUTE_ACCESS = 8
LOCK_HELPER = "DMF_Generic_Lock_Passive"
"""GEN.c: the PASSIVE module's default lock routine (paged), reached through DMF_ModuleLock."""


@dataclass(frozen=True)
class VerifierViolation:
    """What the machine stops with."""

    code: int
    parameters: tuple[int, int, int, int]
    reason: str
    evidence: tuple[tuple[int, bytes], ...] = ()


@dataclass
class DriverVerifier:
    """Driver Verifier (and KMDF's verifier with it) on the test driver, for one boot."""

    image: DriverImage
    enabled: bool = True
    unbalanced_critical_regions: int = 0
    """KernelApcDisable above zero after a failed acquire and its release (F38)."""

    def paged_code_at(self, irql: Irql, routine: str) -> VerifierViolation | None:
        """Executing paged `routine` at `irql` while Verifier trims pageable code (F30, F38)."""
        if not self.enabled or irql < Irql.DISPATCH_LEVEL:
            return None
        address = self.image.routine(routine, paged=True)
        return VerifierViolation(
            DRIVER_IRQL_NOT_LESS_OR_EQUAL,
            (address, int(irql), EXECUTE_ACCESS, address),
            f"{routine} (pageable, PASSIVE_LEVEL only) executed at {irql.name} with Verifier trimming "
            "pageable code (F38)",
        )

    def module_lock(self, irql: Irql, routine: str) -> VerifierViolation | None:
        """`routine` takes the module's wait lock through the paged helper (F14, F18, F28, F38)."""
        violation = self.paged_code_at(irql, LOCK_HELPER)
        if violation is not None:
            return VerifierViolation(
                violation.code, violation.parameters, f"{routine} took the module lock: {violation.reason}"
            )
        if self.enabled and irql == Irql.APC_LEVEL:
            self.unbalanced_critical_regions += 1  # acquire refused, release done anyway
        return None

    def system_call_exit(self) -> VerifierViolation | None:
        """The check at the return to user mode: an unbalanced KernelApcDisable stops the machine."""
        count, self.unbalanced_critical_regions = self.unbalanced_critical_regions, 0
        if count == 0:
            return None
        return VerifierViolation(
            APC_INDEX_MISMATCH,
            (NT_DEVICE_IO_CONTROL_FILE, 0, count & 0xFFFF, 0),
            f"KMDF's verifier refused WdfWaitLockAcquire at APC_LEVEL and DMF released the lock anyway: "
            f"{count} KeLeaveCriticalRegion without KeEnterCriticalRegion, found when the system call "
            "returned (F38)",
        )

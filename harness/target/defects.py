"""Known defects of DMF as shipped (commit bfac434), each with a stable id that scenarios cite in
`known_defect` and the simulator's `dmf-bfac434` profile reproduces (DMF_FACTS.md).

Every defect declares its **signature**: how a scenario that exercises it fails on a machine that
has it. A known-defect scenario counts as *reproducing* the defect only when its first failing step
fails that way; any other failure is a plain failure that names what the defect was expected to do
(`harness.verify.known_defect` does the matching). A signature is a set of alternatives, any one of
which is enough:

- ``bugchecks``: the machine bugchecks at the step with one of these codes; each ``Bugcheck`` may
  pin P1..P4 (``Bugcheck(0xD1, p2=2)``), an unpinned parameter (``ANY``, the default) matches
  anything. A crash explains every mismatch of its step (after it nothing else can hold).
- ``statuses``: NTSTATUS values the step returns where the scenario expected another (the step's
  ``expect.status`` fails with one of these found).
- ``expectations``: YAML key paths, relative to the step, of expectations the defect makes fail
  (``expect.dump.parameters.1`` is P2). A path covers everything below it
  (``expect.dump.secondary_data`` covers ``expect.dump.secondary_data.0.size``), and ``*`` stands
  for any one key or list index.

Without a crash, every mismatch of the step must be explained by a status or an expectation of the
signature. ``operations`` narrows all alternatives to steps of those operations (``remove``,
``ioctl_create``: the step's operation key); empty means any step.

Writing a signature: take it from what DMF_FACTS.md allows on a real machine (F13/F33 allow 0xD1
or 0xA, 0x7E/0x3B possible), never from the code the simulator happens to choose today, so the
signature holds on a real VM and across simulator versions. A defect that no scenario expectation
can observe would get the empty ``Signature()``, which `lkdh check` refuses as a scenario's
`known_defect` (F05's ReportType, which shows only in a folder name, is observed through
`expect.dump.folder`). ``signature`` has no default on purpose: a
new defect without one fails at import, not silently at run time.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.target.status import STATUS_CODES

ANY: None = None
"""An unpinned bugcheck parameter."""

STATUS_SUCCESS = STATUS_CODES["STATUS_SUCCESS"]
STATUS_INVALID_PARAMETER = STATUS_CODES["STATUS_INVALID_PARAMETER"]
STATUS_BUFFER_TOO_SMALL = STATUS_CODES["STATUS_BUFFER_TOO_SMALL"]
EXCEPTION_ACCESS_VIOLATION = 0xC0000005
"""STATUS_ACCESS_VIOLATION as the exception code in P1 of 0x7E / 0x3B."""


@dataclass(frozen=True)
class Bugcheck:
    """A bugcheck code with optionally pinned parameters (ANY matches every value)."""

    code: int
    p1: int | None = ANY
    p2: int | None = ANY
    p3: int | None = ANY
    p4: int | None = ANY

    def matches(self, code: int, parameters: tuple[int, ...]) -> bool:
        pinned = (self.p1, self.p2, self.p3, self.p4)
        if code != self.code:
            return False
        return all(want is None or want == got for want, got in zip(pinned, parameters, strict=False))

    def describe(self) -> str:
        pinned = [
            f"P{i + 1}=0x{p:X}" for i, p in enumerate((self.p1, self.p2, self.p3, self.p4)) if p is not None
        ]
        return f"0x{self.code:X}" + (f" ({', '.join(pinned)})" if pinned else "")


@dataclass(frozen=True)
class Signature:
    """How a defect shows in a scenario step (see the module docstring for the matching rules)."""

    bugchecks: tuple[Bugcheck, ...] = ()
    statuses: tuple[int, ...] = ()
    expectations: tuple[str, ...] = ()
    operations: tuple[str, ...] = ()

    @property
    def observable(self) -> bool:
        """Whether a scenario can show this defect at all."""
        return bool(self.bugchecks or self.statuses or self.expectations)

    def describe(self) -> str:
        """'bugcheck 0xD1 (P2=0x2) or 0xA at a remove step' for failure messages."""
        if not self.observable:
            return "nothing a scenario can check"
        parts = []
        if self.bugchecks:
            parts.append("bugcheck " + " or ".join(b.describe() for b in self.bugchecks))
        if self.statuses:
            names = {value: name for name, value in STATUS_CODES.items()}
            shown = " or ".join(names.get(s, f"0x{s:08X}") for s in self.statuses)
            parts.append(f"status {shown} where another was expected")
        if self.expectations:
            parts.append("failing " + " or ".join(f"`{path}`" for path in self.expectations))
        where = f" at a {' or '.join(self.operations)} step" if self.operations else ""
        return "; or ".join(parts) + where


@dataclass(frozen=True)
class KnownDefect:
    """One defect: its id, the facts it rests on, what a real machine does, and how it fails."""

    id: str
    facts: tuple[str, ...]
    summary: str
    signature: Signature


KNOWN_DEFECTS: dict[str, KnownDefect] = {
    defect.id: defect
    for defect in (
        KnownDefect(
            "remove-null-context",
            ("F13", "F33"),
            "DataBufferSourceRemove of a stored buffer writes DmfDataSize through a NULL module context "
            "at DISPATCH_LEVEL: bugcheck 0xD1 (0x10, 2, 1, an address in the driver)",
            # F33: a data access through NULL+0x10 under the RingBuffer's spin lock: P2 (the IRQL)
            # is 2, P3 a read (0) or write (1) - never 8, the execute fault of paged code (F38),
            # which is the dispatch-wait-lock defect, not this one.
            Signature(
                bugchecks=(
                    Bugcheck(0xD1, p2=2, p3=0),
                    Bugcheck(0xD1, p2=2, p3=1),
                    Bugcheck(0xA, p2=2, p3=0),
                    Bugcheck(0xA, p2=2, p3=1),
                    Bugcheck(0x7E, p1=EXCEPTION_ACCESS_VIOLATION),
                    Bugcheck(0x3B, p1=EXCEPTION_ACCESS_VIOLATION),
                ),
                operations=("remove",),
            ),
        ),
        KnownDefect(
            "dispatch-wait-lock",
            ("F14", "F28", "F38"),
            "Add/Remove at DISPATCH_LEVEL take a WDF wait lock through a paged helper: under Verifier "
            "bugcheck 0xD1 with P3 = 8 (execute)",
            # F14/F38: 0xD1 (P3 = 8, the paged helper) is the likelier first failure; 0xC4, 0x10D
            # and 0xA remain possible on a real machine.
            Signature(
                bugchecks=(Bugcheck(0xC4), Bugcheck(0x10D), Bugcheck(0xA), Bugcheck(0xD1)),
                operations=("store", "remove", "store_collection"),
            ),
        ),
        KnownDefect(
            "apc-wait-lock",
            ("F28", "F38"),
            "Add/Remove at APC_LEVEL under KMDF's verifier: the wait-lock acquire is refused, DMF "
            "releases it anyway, and the system call returns with APC_INDEX_MISMATCH (0x1)",
            # F38: 0x10D WDF_VIOLATION or 0x1 APC_INDEX_MISMATCH [INF].
            Signature(
                bugchecks=(Bugcheck(0x1), Bugcheck(0x10D)),
                operations=("store", "remove", "store_collection"),
            ),
        ),
        KnownDefect(
            "rejected-buffer-poisons-dumps",
            ("F40", "F15"),
            "a stored buffer lkmdtel rejects (size 0, unaligned, unreadable) stays valid and fails every "
            "later Create with DMF data until evicted or reboot, leaking a queue buffer each time",
            # F40/F08: lkmdtel refuses the insert with STATUS_INVALID_PARAMETER; the Create returns it.
            Signature(statuses=(STATUS_INVALID_PARAMETER,), operations=("create", "ioctl_create")),
        ),
        KnownDefect(
            "exclude-dmf-data-nonbool",
            ("F17",),
            "ExcludeDmfData other than 0/1 gives P2 = collection yet inserts no DMF data",
            Signature(expectations=("expect.dump.parameters.1",), operations=("create", "ioctl_create")),
        ),
        KnownDefect(
            "secondary-data-null-guid",
            ("F21",),
            "secondary data silently dropped (success returned) when GuidSecondaryData is all zeros",
            Signature(
                statuses=(STATUS_SUCCESS,),
                expectations=("expect.dump.secondary_data",),
                operations=("create", "ioctl_create"),
            ),
        ),
        KnownDefect(
            "report-type-truncated",
            ("F05",),
            "ReportType is cut to 11 characters (WCHAR[12] with ReportType[11] = 0), not the documented 15",
            # Only the LiveKernelReports folder name shows it (F09): `expect.dump.folder`.
            Signature(expectations=("expect.dump.folder",), operations=("create", "ioctl_create")),
        ),
        KnownDefect(
            "stale-queue-after-failed-insert",
            ("F15",),
            "entries left queued by a failed insert leak into the next dump",
            Signature(
                expectations=("expect.dump.excludes", "expect.dump.block_count"),
                operations=("create", "ioctl_create"),
            ),
        ),
        KnownDefect(
            "ioctl-unprobed-user-pointers",
            ("F27",),
            "IOCTL_LIVEKERNELDUMP_CREATE dereferences the caller's embedded pointers unprobed: a bad pointer "
            "bugchecks and a kernel address copies kernel memory into the dump",
            # A bad user pointer faults in the caller's system call (0x3B), a bad kernel one pages
            # in vain (0x50); a kernel address is copied: success, and its bytes in the dump.
            Signature(
                bugchecks=(Bugcheck(0x3B, p1=EXCEPTION_ACCESS_VIOLATION), Bugcheck(0x50)),
                # F36: probed up front (the contract) a bad element is refused before anything
                # else; read lazily, an earlier failure such as BUFFER_TOO_SMALL is returned instead.
                # An unprobed Address or secondary buffer reaches lkmdtel, which refuses an
                # unreadable range with INVALID_PARAMETER (F08's rule for a bad block) where it
                # checks, and faults (the bugchecks above) where it copies unchecked [INF].
                statuses=(STATUS_SUCCESS, STATUS_BUFFER_TOO_SMALL, STATUS_INVALID_PARAMETER),
                expectations=("expect.dump.excludes",),
                operations=("ioctl_create",),
            ),
        ),
    )
}

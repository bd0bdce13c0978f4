"""Known defects of DMF as shipped (commit bfac434), each with a stable id that scenarios cite in
`known_defect` and the simulator's `dmf-bfac434` profile reproduces (DMF_FACTS.md)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KnownDefect:
    """One defect: its id, the facts it rests on, and what a real machine does."""

    id: str
    facts: tuple[str, ...]
    summary: str


KNOWN_DEFECTS: dict[str, KnownDefect] = {
    defect.id: defect
    for defect in (
        KnownDefect(
            "remove-null-context",
            ("F13", "F33"),
            "DataBufferSourceRemove of a stored buffer writes DmfDataSize through a NULL module context "
            "at DISPATCH_LEVEL: bugcheck 0xD1 (0x10, 2, 1, an address in the driver)",
        ),
        KnownDefect(
            "dispatch-wait-lock",
            ("F14", "F28", "F38"),
            "Add/Remove at DISPATCH_LEVEL take a WDF wait lock through a paged helper: under Verifier "
            "bugcheck 0xD1 with P3 = 8 (execute)",
        ),
        KnownDefect(
            "apc-wait-lock",
            ("F28", "F38"),
            "Add/Remove at APC_LEVEL under KMDF's verifier: the wait-lock acquire is refused, DMF "
            "releases it anyway, and the system call returns with APC_INDEX_MISMATCH (0x1)",
        ),
        KnownDefect(
            "rejected-buffer-poisons-dumps",
            ("F40", "F15"),
            "a stored buffer lkmdtel rejects (size 0, unaligned, unreadable) stays valid and fails every "
            "later Create with DMF data until evicted or reboot, leaking a queue buffer each time",
        ),
        KnownDefect(
            "exclude-dmf-data-nonbool",
            ("F17",),
            "ExcludeDmfData other than 0/1 gives P2 = collection yet inserts no DMF data",
        ),
        KnownDefect(
            "secondary-data-null-guid",
            ("F21",),
            "secondary data silently dropped (success returned) when GuidSecondaryData is all zeros",
        ),
        KnownDefect(
            "report-type-truncated",
            ("F05",),
            "ReportType is cut to 11 characters (WCHAR[12] with ReportType[11] = 0), not the documented 15",
        ),
        KnownDefect(
            "stale-queue-after-failed-insert",
            ("F15",),
            "entries left queued by a failed insert leak into the next dump",
        ),
        KnownDefect(
            "ioctl-unprobed-user-pointers",
            ("F27",),
            "IOCTL_LIVEKERNELDUMP_CREATE dereferences the caller's embedded pointers unprobed: a bad pointer "
            "bugchecks and a kernel address copies kernel memory into the dump",
        ),
    )
}

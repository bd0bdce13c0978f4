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
            ("F13",),
            "DataBufferSourceRemove of a stored buffer writes through a NULL module context: bugcheck",
        ),
        KnownDefect(
            "dispatch-wait-lock",
            ("F14", "F28"),
            "Add/Remove at DISPATCH_LEVEL take a WDF wait lock from paged code: Verifier violation",
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

"""What an upstream report about each known defect quotes: the documentation's promise and the
source lines that break it.

`DOC_PROMISES` names, per defect, the sections of the module's own documentation
(`../shared/seed/000_fdad489486791514.txt`, DMF's Dmf_LiveKernelDump.md) and a phrase of the line to
quote; `quote_promises` finds them and gives each its line number, and fails when a phrase is not
there, so a changed document cannot leave a report quoting something it no longer says.

`EXTRA_SOURCE_LINES` adds, for facts whose DMF_FACTS.md text names a file but no line, the lines
themselves, read in microsoft/DMF at bfac434 (`git show bfac434:<path>`); the pack lists them after
the facts' own references and says where they came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from harness.report.dmf_facts import SOURCE_PATHS, SourceRef, shared_dir


@dataclass(frozen=True)
class Promise:
    """A line of the module documentation, by its section heading and a phrase the line holds."""

    section: str
    phrase: str


_ADD = "DMF_LiveKernelDump_DataBufferSourceAdd"
_REMOVE = "DMF_LiveKernelDump_DataBufferSourceRemove"
_CREATE = "DMF_LiveKernelDump_LiveKernelMemoryDumpCreate"
_STORE = "DMF_LiveKernelDump_StoreDmfCollectionAsBugcheckParameter"
_CONFIG = "DMF_CONFIG_LiveKernelDump"
_IOCTL = "IOCTL_LIVEKERNELDUMP_CREATE"

DOC_PROMISES: dict[str, tuple[Promise, ...]] = {
    "remove-null-context": (
        Promise(_REMOVE, "This method removes a data buffer"),
        Promise(_REMOVE, "remove buffers from the Live Kernel Dump Module before they are destroyed"),
        Promise(_REMOVE, "IRQL <= DISPATCH_LEVEL"),
    ),
    "dispatch-wait-lock": (
        Promise(_ADD, "_IRQL_requires_max_(DISPATCH_LEVEL)"),
        Promise(_ADD, "IRQL <= DISPATCH_LEVEL"),
        Promise(_REMOVE, "IRQL <= DISPATCH_LEVEL"),
    ),
    "apc-wait-lock": (
        Promise(_ADD, "IRQL <= DISPATCH_LEVEL"),
        Promise(_REMOVE, "IRQL <= DISPATCH_LEVEL"),
        Promise(_STORE, "_IRQL_requires_max_(PASSIVE_LEVEL)"),
    ),
    "rejected-buffer-poisons-dumps": (
        Promise(_ADD, "Fails if the data buffer could not be added"),
        Promise(_CREATE, "It includes all the data buffers stored by the"),
    ),
    "exclude-dmf-data-nonbool": (
        Promise(_CREATE, "ExcludeDmfData | When set to true"),
        Promise(_IOCTL, "Flag to indicate if DMF data should be included"),
    ),
    "secondary-data-null-guid": (
        Promise(_CONFIG, "Guid used to locate the secondary data"),
        Promise(_CREATE, "SizeOfSecondaryData | Size of secondary data that needs to be part"),
        Promise(_CREATE, "Fails if the Live Kernel Memory Dump could not be created"),
    ),
    "report-type-truncated": (
        Promise(_CONFIG, "Null terminated wide character string used to identify"),
        Promise(_CONFIG, "WCHAR ReportType[16];"),
    ),
    "stale-queue-after-failed-insert": (
        Promise(_CREATE, "It includes all the data buffers stored by the"),
        Promise(_CREATE, "Fails if the Live Kernel Memory Dump could not be created"),
    ),
    "ioctl-unprobed-user-pointers": (
        Promise(_IOCTL, "This IOCTL is used to generate a Live Kernel Dump from an application"),
        Promise(_IOCTL, "PLIVEKERNELDUMP_CLIENT_STRUCTURE ArrayOfClientStructures;"),
        Promise(_IOCTL, "VOID* SecondaryDataBuffer;"),
    ),
}

_LKD_C = SOURCE_PATHS["Dmf_LiveKernelDump.c"]
_LKD_H = SOURCE_PATHS["Dmf_LiveKernelDump.h"]

EXTRA_SOURCE_LINES: dict[str, tuple[tuple[SourceRef, str], ...]] = {
    "remove-null-context": (
        (SourceRef(_LKD_C, 236, 240), "the match callback updates DmfDataSize through the context it got"),
    ),
    "rejected-buffer-poisons-dumps": (
        (SourceRef(_LKD_C, 552, 577), "a failed LkmdTelInsertTriageDataBlock aborts Create; the entry stays"),
    ),
    "exclude-dmf-data-nonbool": (
        (SourceRef(_LKD_C, 814, 814), "P2 is cleared only when ExcludeDmfData == TRUE"),
        (SourceRef(_LKD_C, 841, 841), "DMF data is inserted only when ExcludeDmfData == FALSE"),
    ),
    "secondary-data-null-guid": (
        (SourceRef(_LKD_C, 864, 880), "secondary data is skipped without an error for an all-zero GUID"),
    ),
    "report-type-truncated": (
        (SourceRef(_LKD_H, 41, 41), "DMF_LIVEKERNELDUMP_MAXIMUM_REPORT_TYPE_SIZE is 12"),
        (SourceRef(_LKD_H, 60, 60), "the config field is WCHAR ReportType[12]"),
        (SourceRef(SOURCE_PATHS["DmfDeviceInit.c"], 1419, 1419), "ReportType[11] is forced to 0"),
    ),
    "stale-queue-after-failed-insert": (
        (
            SourceRef(_LKD_C, 552, 577),
            "the dequeue loop stops at the first failed insert: the rest stay queued",
        ),
    ),
    "ioctl-unprobed-user-pointers": (
        (SourceRef(_LKD_C, 976, 984), "the IOCTL passes the caller's embedded pointers on as they are"),
        (SourceRef(_LKD_C, 727, 738), "each client structure is read and inserted without a probe"),
    ),
}


class DocumentationError(ValueError):
    """A promise the module documentation does not hold (the section or the phrase is missing)."""


@dataclass(frozen=True)
class Quote:
    """A documentation line: its section, its 1-based line number in the document, its text."""

    section: str
    line: int
    text: str


_RULE = re.compile(r"^-{10,}\s*$")


def quote_promises(doc_text: str, defect_id: str, doc_name: str = "the module documentation") -> list[Quote]:
    """Every promise of `defect_id` quoted from `doc_text`; DocumentationError names what is missing."""
    lines = doc_text.splitlines()
    quotes = []
    for promise in DOC_PROMISES.get(defect_id, ()):
        start = _section_start(lines, promise.section)
        if start is None:
            raise DocumentationError(f"{doc_name} has no section `{promise.section}` (defect {defect_id})")
        for number in range(start + 1, len(lines)):
            if _RULE.match(lines[number]):
                raise DocumentationError(
                    f"{doc_name}: section `{promise.section}` (line {start + 1}) has no line with "
                    f"{promise.phrase!r} (defect {defect_id})"
                )
            if promise.phrase in lines[number]:
                quotes.append(Quote(promise.section, number + 1, lines[number].strip()))
                break
    return quotes


def _section_start(lines: list[str], heading: str) -> int | None:
    for number, line in enumerate(lines):
        if line.lstrip("#").strip() == heading and line.startswith("#"):
            return number
    return None


def default_doc_path() -> Path:
    """The module documentation the project ships with: `../shared/seed/000_fdad489486791514.txt`."""
    return shared_dir() / "seed" / "000_fdad489486791514.txt"

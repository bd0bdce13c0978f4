"""The DMF facts (F01..F45) as `DMF_FACTS.md` states them, and the DMF source lines each one cites.

Both the upstream defect pack (`defect_pack.py`) and `lkdh coverage` read the facts from the one
reference file, `../shared/reference/DMF_FACTS.md` beside the checkout, when it is there; without it
they fall back to `FACT_IDS` (the ids only), so neither command needs the reference to run.

Source references are parsed from a fact's text as DMF_FACTS.md writes them: `LKD.c:78-88`,
`RB.c:992-995`, `Dmf_CrashDump.c:204, 3959-3966`, with the short names resolved through the
"Line numbers are at bfac434: `LKD.c` = `...`" legend and `SOURCE_PATHS` (the full paths in
microsoft/DMF at bfac434, read from that commit's tree). References into KMDF (fxverifier.h, ...)
point at microsoft/Windows-Driver-Frameworks.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

DMF_REPOSITORY = "microsoft/DMF"
DMF_COMMIT = "bfac434fd3497259095a1f8d70ed734493228091"
KMDF_REPOSITORY = "microsoft/Windows-Driver-Frameworks"

FACT_IDS: tuple[str, ...] = tuple(f"F{number:02d}" for number in range(1, 46))
"""The fallback when DMF_FACTS.md is absent: every id it defines (F01..F45)."""

SOURCE_PATHS: dict[str, str] = {
    # The files DMF_FACTS.md names, as paths in microsoft/DMF's tree at bfac434.
    "Dmf_LiveKernelDump.c": "Dmf/Framework/Modules.Core/Dmf_LiveKernelDump.c",
    "Dmf_LiveKernelDump.h": "Dmf/Framework/Modules.Core/Dmf_LiveKernelDump.h",
    "DmfLiveKernelDump.c": "Dmf/Framework/DmfLiveKernelDump.c",
    "DmfModuleCollection.c": "Dmf/Framework/DmfModuleCollection.c",
    "DmfIncludeInternal.h": "Dmf/Framework/DmfIncludeInternal.h",
    "DmfGeneric.c": "Dmf/Framework/DmfGeneric.c",
    "DmfHelpers.c": "Dmf/Framework/DmfHelpers.c",
    "DmfContainer.c": "Dmf/Framework/DmfContainer.c",
    "DmfDeviceInit.c": "Dmf/Framework/DmfDeviceInit.c",
    "DmfIncludes_KERNEL_MODE.h": "Dmf/Framework/DmfIncludes_KERNEL_MODE.h",
    "Dmf_IoctlHandler.c": "Dmf/Modules.Library/Dmf_IoctlHandler.c",
    "Dmf_RingBuffer.c": "Dmf/Modules.Library/Dmf_RingBuffer.c",
    "Dmf_CrashDump.c": "Dmf/Modules.Library/Dmf_CrashDump.c",
    "DmfKFramework.vcxproj": "Dmf/Solution/DmfKFramework/DmfKFramework.vcxproj",
}

KMDF_FILES = frozenset(
    {"fxwaitlockapi.cpp", "fxwaitlock.hpp", "fxverifier.h", "globals.cpp", "handleapi.cpp", "fxobject.hpp"}
)

_FACT_LINE = re.compile(r"^- \*\*(F\d{2})\*\*\s*(.*)$")
_TABLE_ROW = re.compile(r"^\|\s*(F\d{2})\s*\|(.*)$")
_LEGEND = re.compile(r"`([\w.]+\.(?:c|h|cpp|hpp))`\s*=\s*`([^`]+)`")
_SOURCE_REF = re.compile(
    r"(?<![\w/])([A-Za-z_][\w]*\.(?:c|h|cpp|hpp|vcxproj)):(\d+(?:-\d+)?(?:,\s*\d+(?:-\d+)?)*)"
)


@dataclass(frozen=True)
class SourceRef:
    """`file:first-last` in DMF (or KMDF) as a fact cites it."""

    file: str
    """The path inside its repository (DMF paths at bfac434)."""
    first: int
    last: int
    repository: str = DMF_REPOSITORY
    cited_as: str = ""
    """How DMF_FACTS.md wrote it (`LKD.c:240`)."""

    def label(self) -> str:
        lines = str(self.first) if self.first == self.last else f"{self.first}-{self.last}"
        return f"{self.file}:{lines}"

    def url(self) -> str | None:
        """A permalink for DMF lines; None for KMDF, whose commit DMF_FACTS.md does not pin."""
        if self.repository != DMF_REPOSITORY:
            return None
        return f"https://github.com/{DMF_REPOSITORY}/blob/{DMF_COMMIT}/{self.file}#L{self.first}-L{self.last}"


@dataclass(frozen=True)
class Fact:
    """One fact: its id and its text as DMF_FACTS.md writes it (the empty text for a fallback id)."""

    id: str
    text: str = ""

    @property
    def is_defect(self) -> bool:
        return "defect" in self.text.lower()


@dataclass(frozen=True)
class FactBook:
    """Every fact, in id order, and where they came from (a path, or the built-in id list)."""

    facts: dict[str, Fact]
    source: str
    legend: dict[str, str]

    def text(self, fact_id: str) -> str:
        fact = self.facts.get(fact_id)
        return fact.text if fact else ""

    def source_refs(self, fact_id: str) -> list[SourceRef]:
        return parse_source_refs(self.text(fact_id), self.legend)


def shared_dir() -> Path:
    """`../shared` beside the checkout, as CI lays it out; the LKDH_SHARED variable overrides it."""
    return Path(os.environ.get("LKDH_SHARED", Path(__file__).resolve().parents[2].parent / "shared"))


def default_facts_path() -> Path:
    """`../shared/reference/DMF_FACTS.md` (the reference the project ships with)."""
    return shared_dir() / "reference" / "DMF_FACTS.md"


def load_fact_book(path: Path | None = None) -> FactBook:
    """The facts from `path` (default: `default_facts_path()`), or the built-in ids when it is absent.

    An explicit `path` that does not exist is an error (OSError): the caller asked for that file.
    """
    if path is None:
        path = default_facts_path()
        if not path.is_file():
            return FactBook({fact_id: Fact(fact_id) for fact_id in FACT_IDS}, "built-in id list", {})
    return parse_fact_book(path.read_text(encoding="utf-8"), str(path))


def parse_fact_book(text: str, source: str) -> FactBook:
    """Facts are list items `- **F13** ...` (continued by indented lines) and IRQL table rows `| F28 |`."""
    facts: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        item = _FACT_LINE.match(line)
        row = _TABLE_ROW.match(line)
        if item:
            current = facts.setdefault(item.group(1), [])
            current.append(item.group(2))
        elif row:
            facts.setdefault(row.group(1), []).append(row.group(2).strip(" |").replace(" | ", "; "))
            current = None
        elif current is not None and line.startswith("  ") and line.strip():
            current.append(line.strip())
        else:
            current = None
    legend = {short: full for short, full in _LEGEND.findall(text)}
    ordered = sorted(facts, key=lambda fact_id: int(fact_id[1:]))
    return FactBook({fact_id: Fact(fact_id, " ".join(facts[fact_id])) for fact_id in ordered}, source, legend)


def parse_source_refs(text: str, legend: dict[str, str] | None = None) -> list[SourceRef]:
    """Every `file:lines` in `text`, one per line range, with short names resolved (`LKD.c`)."""
    legend = legend or {}
    refs: list[SourceRef] = []
    for match in _SOURCE_REF.finditer(text):
        name, ranges = match.group(1), match.group(2)
        file, repository = _resolve(name, legend)
        for part in re.split(r",\s*", ranges):
            first, _, last = part.partition("-")
            ref = SourceRef(file, int(first), int(last or first), repository, f"{name}:{part}")
            if ref not in refs:
                refs.append(ref)
    return refs


def _resolve(name: str, legend: dict[str, str]) -> tuple[str, str]:
    if name in KMDF_FILES:
        return name, KMDF_REPOSITORY
    full = legend.get(name, name)
    base = full.rsplit("/", 1)[-1]
    if base in SOURCE_PATHS:
        return SOURCE_PATHS[base], DMF_REPOSITORY
    return full, DMF_REPOSITORY

"""Dump expectations on kernel memory dumps (DumpType 1, 5, 6: a full live dump, MEMORY.DMP), where
memory is held by page, not in triage data blocks: every range is looked up by virtual address
through the dump's own x64 page tables (``MemoryDump.read_virtual``), as a debugger reads it.

What each expectation means there:

- ``contains``: every byte of the range is mapped by the page tables to a page the dump holds, and
  holds the expected bytes. When the walk stops, the mismatch names the address and the level
  and entry where it stopped (``PageNotInDump``: PML4E/PDPTE/PDE/PTE with the entry's physical
  address and value and what Windows keeps there, or the page frame the dump lacks);
- ``excludes``: no page of the range is in the dump (unmapped, not present, or left out). A kernel
  memory dump holds all the memory the kernel uses ("A Kernel Memory Dump contains all the memory
  in use by the kernel at the time of the crash", windows-driver-docs debugger/
  kernel-memory-dump.md), so a buffer that is still allocated is in it whether or not the module
  stored it: ``excludes`` proves the module's choice only in a triage dump;
- ``block_count``: a triage-dump expectation; on a memory dump it is a mismatch that says so.

Secondary data and the header's code and parameters are read the same way as in a triage dump.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.dump import AddressNotInDump, KernelDump
from harness.dump import layout as L
from harness.verify.mismatch import Mismatch, YamlPath

MEMORY_DUMP_TYPES = frozenset({L.DUMP_TYPE_FULL, L.DUMP_TYPE_BITMAP_FULL, L.DUMP_TYPE_BITMAP_KERNEL})
SHOWN_BYTES = 16
SHOWN_PAGES = 4


def is_memory_dump(dump: KernelDump) -> bool:
    """Whether the dump holds memory by page (and is read by virtual address through page tables)."""
    return dump.header.dump_type in MEMORY_DUMP_TYPES


@dataclass(frozen=True)
class PageReading:
    """What reading one expected range by virtual address gave: the bytes, or why not."""

    data: bytes | None
    error: AddressNotInDump | None


def read_range(dump: KernelDump, address: int, length: int, want: bytes | None) -> PageReading:
    """The whole range must be readable; the bytes compared are ``len(want)`` from its start (one
    read: `lkdh check` refuses `bytes` longer than their range)."""
    size = max(length, len(want) if want is not None else 0, 1)
    try:
        data = dump.read_virtual(address, size)
    except AddressNotInDump as error:
        return PageReading(None, error)
    return PageReading(data[: len(want)] if want is not None else b"", None)


@dataclass(frozen=True)
class PagePresence:
    """Which pages of a range a memory dump holds: how many of how many, the first few located."""

    present: int
    pages: int
    shown: list[tuple[int, int]]
    """(VA, physical address) of the first SHOWN_PAGES present pages."""


def mapped_pages(dump: KernelDump, address: int, length: int) -> PagePresence:
    """The pages of [address, address + length) the dump holds. Presence is tested for every page
    at once with the batch walk (``try_read_u64`` at each page's start), so a range of many pages
    costs no Python loop; only the pages shown are translated one by one."""
    first, last = address >> L.PAGE_SHIFT, (address + max(length, 1) - 1) >> L.PAGE_SHIFT
    starts = np.arange(first, last + 1, dtype=np.uint64) << np.uint64(L.PAGE_SHIFT)
    _, faults = dump.try_read_u64(starts)  # type: ignore[attr-defined]
    held = starts[faults == 0]
    shown = [max(int(va), address) for va in held[:SHOWN_PAGES]]
    located = [(va, dump.translate(va)) for va in shown]  # type: ignore[attr-defined]
    return PagePresence(len(held), len(starts), located)


def check_contains(
    dump: KernelDump, label: str, address: int, length: int, want: bytes | None, path: YamlPath
) -> list[Mismatch]:
    span = f"{label} (0x{address:X}+0x{length:X})"
    reading = read_range(dump, address, length, want)
    if reading.error is not None:
        return [
            Mismatch(
                path,
                f"the dump does not hold {span}",
                "every page of the range mapped by the dump's page tables and present in the dump",
                str(reading.error),
            )
        ]
    if want is None or reading.data == want:
        return []
    got = reading.data or b""
    first = next(i for i, (a, b) in enumerate(zip(got, want, strict=True)) if a != b)
    return [
        Mismatch(
            path,
            f"the dump holds {span} but its bytes differ from offset +0x{first:X}",
            _hex(want[first : first + SHOWN_BYTES]),
            _hex(got[first : first + SHOWN_BYTES]),
        )
    ]


def check_excludes(dump: KernelDump, label: str, address: int, length: int, path: YamlPath) -> list[Mismatch]:
    found = mapped_pages(dump, address, length)
    if not found.present:
        return []
    shown = ", ".join(f"VA 0x{va:X} -> physical 0x{pa:X}" for va, pa in found.shown)
    return [
        Mismatch(
            path,
            f"the dump contains {label} (0x{address:X}+0x{length:X}), which it must not",
            "no page of the range in the dump (a kernel memory dump holds every page the kernel uses)",
            f"{found.present} of {found.pages} page(s) in the dump: {shown}",
        )
    ]


def check_block_count(dump: KernelDump, path: YamlPath) -> list[Mismatch]:
    return [
        Mismatch(
            path,
            "block_count is a triage-dump expectation: this kernel memory dump holds pages, not data blocks",
            "a triage dump (DumpType 4) with TRIAGE_DATA_BLOCKs",
            f"DumpType {dump.header.dump_type} ({dump.header.dump_type_name})",
        )
    ]


def _hex(data: bytes) -> str:
    return data.hex(" ").upper() if data else "(empty)"

"""Finding DMF data by virtual address in a kernel memory dump (DumpType 1, 5, 6), where there are
no triage data blocks to search: the collection is reached from P2 itself and the modules from
the collection's pointers, every read through ``read_virtual`` (the page walk).

P2 is the collection's WDFMEMORY handle (F32): ``wdf_object_address`` turns it into the address
of KMDF's memory object, and the buffer follows that object's header. How far is KMDF's business
(the simulator puts it 0x70 bytes on, [INF]), so the DMF_MODULE_COLLECTION is looked for as in a
triage dump: the first 8-byte-aligned u64 equal to P2 (its ModuleCollectionHandleMemory field)
within ``COLLECTION_WINDOW`` bytes after the object.

Modules below the top level are found, as in a triage dump, by DMF_OBJECT's signature (the child
list's offset is in the undecoded part of DMF_OBJECT): here in the pages of the 2 MiB of virtual
memory around the collection and each top-level object, a bounded scan that reads at most 512
pages per region and ``MAX_REGIONS`` regions, never the whole dump.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import numpy as np

from . import dmf_layout as D
from .errors import AddressNotInDump
from .records import DumpHeader64

COLLECTION_WINDOW = 0x200
"""Bytes after the WDFMEMORY object searched for the collection's first field (== P2)."""
SCAN_REGION = 0x20_0000
"""The 2 MiB of virtual memory scanned for DMF_OBJECT signatures around each known structure."""
PAGE = 0x1000
MAX_REGIONS = 16
"""At most this many 2 MiB regions are scanned (8 MiB of page reads at worst, whatever a hostile
collection's handle array says)."""


class VirtualFace(Protocol):
    """What the decoder needs from a memory dump."""

    header: DumpHeader64

    def read_virtual(self, address: int, size: int) -> bytes: ...


def find_collection(dump: VirtualFace, p2: int) -> tuple[int | None, str]:
    """The collection's address, or None with the reason (the page walk's evidence included)."""
    start = D.wdf_object_address(p2)
    wanted = p2.to_bytes(8, "little")
    stopped = ""
    for position in range(start, start + COLLECTION_WINDOW, 8):
        try:
            if dump.read_virtual(position, 8) == wanted:
                return position, ""
        except AddressNotInDump as error:
            stopped = f"; {error}"
            break
    reason = (
        f"no u64 equal to P2 (0x{p2:x}) in the 0x{COLLECTION_WINDOW:x} bytes after its WDFMEMORY "
        f"object at 0x{start:x}: no DMF_MODULE_COLLECTION there (P2 is not a DMF collection handle, "
        f"or the memory is not in the dump){stopped}"
    )
    return None, reason


def _pages(dump: VirtualFace, regions: set[int]) -> Iterator[tuple[int, bytes]]:
    """(VA, bytes) of every page of the given 2 MiB regions that the dump holds."""
    for region in sorted(regions):
        for page in range(region, region + SCAN_REGION, PAGE):
            try:
                yield page, dump.read_virtual(page, PAGE)
            except AddressNotInDump:
                continue


def scan_dmf_objects(dump: VirtualFace, near: list[int]) -> list[int]:
    """Addresses of DMF_OBJECTs (by Signature at its offset) in the 2 MiB regions around ``near``."""
    regions = set(sorted({address & ~(SCAN_REGION - 1) for address in near if address})[:MAX_REGIONS])
    signature_at = D.DMF_OBJECT_HEAD.Signature.offset
    found = []
    for page, data in _pages(dump, regions):
        words = np.frombuffer(data, dtype="<u8")
        for index in np.flatnonzero(words == D.DMF_OBJECT_SIGNATURE).tolist():
            address = page + index * 8 - signature_at
            if address >= page or _readable(dump, address):
                found.append(address)
    return sorted(set(found))


def _readable(dump: VirtualFace, address: int) -> bool:
    try:
        dump.read_virtual(address, D.DMF_OBJECT_HEAD_SIZE)
    except AddressNotInDump:
        return False
    return True

"""Finding the data block that holds a kernel virtual range.

A triage dump's data blocks are in insertion order, not address order, and nothing forbids two
inserted buffers from overlapping or repeating (DMF_FACTS.md F11: duplicates are separate entries).
So the index sorts block starts for ``bisect`` and keeps, for each sorted position, the largest end
seen so far: a backward scan from the bisect point can stop as soon as no earlier block reaches the
range, which keeps lookups logarithmic for the usual disjoint blocks and correct for overlapping ones.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Sequence

from .errors import AddressNotInDump
from .records import DataBlock


class BlockIndex:
    """Address lookup over a list of DataBlocks (kept in file order; "first" means first in the file)."""

    def __init__(self, blocks: Sequence[DataBlock]) -> None:
        self._blocks = list(blocks)
        # Flat arrays, not lists of ints: a triage dump holds thousands of blocks, and the index
        # should cost ~20 bytes per block on top of the DataBlocks themselves.
        order = sorted(
            range(len(self._blocks)), key=lambda i: self._blocks[i].address
        )  # stable: ties in file order
        self._order = array("L", order)
        self._starts = array("Q", (self._blocks[i].address for i in order))
        self._max_end = array("Q")
        running = 0
        for i in order:
            running = max(running, self._blocks[i].end)
            self._max_end.append(min(running, (1 << 64) - 1))

    def containing(self, address: int, size: int = 1) -> DataBlock | None:
        """The first block (in file order) that wholly contains [address, address + size), or None."""
        end = address + max(size, 1)
        best: int | None = None
        pos = bisect.bisect_right(self._starts, address) - 1
        while pos >= 0 and self._max_end[pos] >= end:
            index = self._order[pos]
            if self._blocks[index].end >= end and (best is None or index < best):
                best = index
            pos -= 1
        return None if best is None else self._blocks[best]

    def nearest(self, address: int) -> list[DataBlock]:
        """The blocks starting just below and just above ``address``: evidence for AddressNotInDump."""
        pos = bisect.bisect_right(self._starts, address)
        around = [self._order[p] for p in (pos - 1, pos) if 0 <= p < len(self._order)]
        return [self._blocks[i] for i in around]

    def require(self, address: int, size: int) -> DataBlock:
        """Like ``containing`` but raises AddressNotInDump naming the nearest blocks."""
        block = self.containing(address, size)
        if block is None:
            near = [(b.address, b.size) for b in self.nearest(address)]
            raise AddressNotInDump(address, size, near)
        return block

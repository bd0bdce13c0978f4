"""The module's list of stored buffers: a 256-entry ring that silently evicts the oldest (F10-F12)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

RING_CAPACITY = 256
"""F10: the child DMF_RingBuffer holds 256 items."""

RING_ITEM_SIZE = 13
"""F10: packed {PVOID Address; ULONG Size; BOOLEAN Valid} on x64."""


@dataclass
class StoredBuffer:
    """One ring item. `valid` is cleared by Remove; the slot stays until overwritten (F12)."""

    address: int
    size: int
    valid: bool = True


@dataclass
class RingOfStoredBuffers:
    """DMF_RingBuffer in "delete oldest if full" mode, as DataBufferSourceAdd/Remove use it."""

    capacity: int = RING_CAPACITY
    _items: deque[StoredBuffer] = field(default_factory=deque)
    evictions: int = 0

    def add(self, address: int, size: int) -> None:
        """Append; when full, the oldest item is overwritten without any error (F10).

        No check of NULL, zero size or duplicates (F11): each Add is its own entry.
        """
        if len(self._items) == self.capacity:
            self._items.popleft()
            self.evictions += 1
        self._items.append(StoredBuffer(address, size))

    def invalidate(self, address: int, size: int) -> int:
        """Invalidate every valid item matching exactly (address, size); return how many (F12)."""
        matched = 0
        for item in self._items:
            if item.valid and item.address == address and item.size == size:
                item.valid = False
                matched += 1
        return matched

    def matches(self, address: int, size: int) -> int:
        """How many valid items match (address, size) exactly."""
        return sum(1 for item in self._items if item.valid and item.address == address and item.size == size)

    def valid_items(self) -> list[StoredBuffer]:
        """Valid items, oldest first: the order Create inserts them in (F15)."""
        return [item for item in self._items if item.valid]

    def __len__(self) -> int:
        return len(self._items)

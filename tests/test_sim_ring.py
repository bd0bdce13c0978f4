"""The stored-buffer ring reproduces DMF_RingBuffer as DataBufferSourceAdd/Remove use it."""

from __future__ import annotations

from harness.target.sim.ring import RING_CAPACITY, RingOfStoredBuffers


def test_f10_ring_holds_256_and_silently_evicts_oldest() -> None:
    """F10: 256 items, "delete oldest if full"; Add never fails."""
    ring = RingOfStoredBuffers()
    for index in range(RING_CAPACITY + 3):
        ring.add(0x1000 * (index + 1), 8)
    assert RING_CAPACITY == 256
    assert len(ring) == 256
    assert ring.evictions == 3
    addresses = [item.address for item in ring.valid_items()]
    assert addresses[0] == 0x4000  # entries 1-3 are gone, oldest survivor first
    assert addresses[-1] == 0x1000 * (RING_CAPACITY + 3)


def test_f11_duplicates_are_separate_entries() -> None:
    """F11: no duplicate check; each Add is its own entry."""
    ring = RingOfStoredBuffers()
    ring.add(0xFFFF_9A00_0000_1000, 16)
    ring.add(0xFFFF_9A00_0000_1000, 16)
    assert ring.matches(0xFFFF_9A00_0000_1000, 16) == 2


def test_f12_remove_invalidates_every_exact_match_only() -> None:
    """F12: exact (address, size) match, all duplicates invalidated, wrong size is a no-op."""
    ring = RingOfStoredBuffers()
    ring.add(0xA000, 16)
    ring.add(0xA000, 16)
    ring.add(0xA000, 32)
    assert ring.invalidate(0xA000, 8) == 0
    assert ring.invalidate(0xA000, 16) == 2
    assert [(i.address, i.size) for i in ring.valid_items()] == [(0xA000, 32)]
    assert len(ring) == 3  # invalidated entries keep their slot until overwritten

"""Kernel virtual memory of the simulated machine: pool allocations at kernel-like addresses.

Addresses look like the real pool's (canonical kernel half, 16-byte aligned, a pool header before
each block) and depend on the boot, so a reboot moves every allocation, as it does on Windows.
Reading an address no allocation covers is a page fault: the caller decides whether that is an
error status or a bugcheck.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from harness.target.ops import repeat_to

POOL_HEADER_SIZE = 0x10
POOL_ALIGNMENT = 0x10

USER_MODE = "UserMode"
"""Not a pool: the calling application's own memory, for what an IOCTL caller passes by pointer."""

# Region bases per pool type; the boot number picks a different slice of each (KASLR-like).
_POOL_REGIONS = {
    "NonPagedPoolNx": 0xFFFF_9A00_0000_0000,
    "NonPagedPool": 0xFFFF_9B00_0000_0000,
    "PagedPool": 0xFFFF_C000_0000_0000,
    USER_MODE: 0x0000_0212_0000_0000,
}

KERNEL_SPACE_START = 0xFFFF_8000_0000_0000
"""The canonical kernel half of the x64 address space; user addresses are below 0x0000_8000_0000_0000."""


def is_kernel_address(address: int) -> bool:
    """Whether `address` is in kernel space (what ProbeForRead refuses from a user caller)."""
    return address >= KERNEL_SPACE_START


class PageFault(Exception):
    """An access to a kernel address no allocation covers (a real machine would bugcheck 0x50)."""

    def __init__(self, address: int, size: int) -> None:
        super().__init__(f"no allocation covers 0x{address:016X}+0x{size:X}")
        self.address = address
        self.size = size


@dataclass
class Allocation:
    """One pool block: its address, bytes and pool type."""

    address: int
    data: bytearray
    pool: str
    tag: str = "Lkdh"
    freed: bool = False

    @property
    def end(self) -> int:
        return self.address + len(self.data)


@dataclass
class KernelMemory:
    """The allocations of one boot, searchable by address."""

    boot_number: int
    seed: int = 0
    _allocations: list[Allocation] = field(default_factory=list)
    _starts: list[int] = field(default_factory=list)
    _next: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        slide = ((self.seed * 0x9E37_79B9 + self.boot_number * 0x1F3D) % 0x7FF) << 28
        self._next = {pool: base + slide for pool, base in _POOL_REGIONS.items()}

    def allocate(
        self, size: int, pool: str = "NonPagedPoolNx", fill: bytes = b"\0", tag: str = "Lkdh"
    ) -> int:
        """Allocate `size` bytes filled with `fill` (repeated); return the kernel address."""
        if pool not in self._next:
            raise ValueError(f"unknown pool type {pool!r}")
        address = self._next[pool] + POOL_HEADER_SIZE
        self._next[pool] = _align_up(address + size, POOL_ALIGNMENT)
        data = bytearray(repeat_to(fill, size))
        index = bisect.bisect(self._starts, address)
        self._starts.insert(index, address)
        self._allocations.insert(index, Allocation(address, data, pool, tag))
        return address

    def free(self, address: int, *, special_pool: bool = False) -> None:
        """Free an allocation (F45). Normal pool: the block is only marked freed, its page stays
        mapped and its stale bytes readable, as freed pool usually is. Driver Verifier's special
        pool: the page is unmapped at free, so any later read of it faults."""
        allocation = self.allocation_at(address)
        allocation.freed = True
        if special_pool:
            index = bisect.bisect_left(self._starts, allocation.address)
            del self._starts[index]
            del self._allocations[index]

    def allocation_at(self, address: int, size: int = 1) -> Allocation:
        """The allocation wholly containing [address, address+size); PageFault otherwise."""
        index = bisect.bisect_right(self._starts, address) - 1
        if index >= 0:
            allocation = self._allocations[index]
            if address + size <= allocation.end:
                return allocation
        raise PageFault(address, size)

    def read(self, address: int, size: int) -> bytes:
        """Copy `size` bytes from kernel memory (PageFault when unmapped)."""
        allocation = self.allocation_at(address, max(size, 1))
        start = address - allocation.address
        return bytes(allocation.data[start : start + size])

    def kernel_allocations(self) -> tuple[Allocation, ...]:
        """Every mapped kernel-mode allocation, in address order: freed normal pool included (its
        page stays mapped, F45), unmapped special pool and the caller's user memory left out."""
        return tuple(a for a in self._allocations if a.pool != USER_MODE)

    def write(self, address: int, data: bytes) -> None:
        """Overwrite bytes in place, as a driver updating its own structure does."""
        allocation = self.allocation_at(address, max(len(data), 1))
        start = address - allocation.address
        allocation.data[start : start + len(data)] = data


def _align_up(value: int, alignment: int) -> int:
    return (value + alignment - 1) & ~(alignment - 1)

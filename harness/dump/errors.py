"""Errors of the dump reader: types that carry the evidence, so a failure says what was wrong where."""

from __future__ import annotations

from pathlib import Path


class DumpFormatError(Exception):
    """A dump file does not have the layout of DUMP_FORMAT.md.

    ``field`` names the on-disk field whose value is wrong (``TRIAGE_DUMP64.SizeOfDump``), ``offset``
    is that field's file offset (None when the problem is the file as a whole), and ``reason`` says
    what the value is and why it cannot be right, with the numbers that prove it.
    """

    def __init__(self, path: str | Path, field: str, offset: int | None, reason: str) -> None:
        self.path = Path(path)
        self.field = field
        self.offset = offset
        self.reason = reason
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f" (file offset 0x{self.offset:x})" if self.offset is not None else ""
        return f"{self.path.name}: {self.field}{where}: {self.reason}"

    def __reduce__(self):  # keep it picklable for pytest-xdist despite the keyword-rich __init__
        return (type(self), (self.path, self.field, self.offset, self.reason))


class AddressNotInDump(LookupError):
    """A kernel virtual range that no data block of the dump wholly contains.

    ``nearest`` holds the blocks on either side of the address (as ``(address, size)`` pairs), so the
    message shows how far off the request was: typically a buffer that was never inserted, or a
    read running past the end of one that was.
    """

    def __init__(self, address: int, size: int, nearest: list[tuple[int, int]]) -> None:
        self.address = address
        self.size = size
        self.nearest = nearest
        super().__init__(str(self))

    def __str__(self) -> str:
        near = ", ".join(f"[0x{a:x}, 0x{a + s:x})" for a, s in self.nearest) or "none (no data blocks)"
        return (
            f"[0x{self.address:x}, 0x{self.address + self.size:x}) (0x{self.size:x} bytes) is not inside "
            f"any data block; nearest blocks: {near}"
        )

    def __reduce__(self):
        return (type(self), (self.address, self.size, self.nearest))


class PageNotInDump(AddressNotInDump):
    """A virtual or physical range of a kernel memory dump (DumpType 1, 5, 6) that cannot be read.

    A subclass of AddressNotInDump so a caller that checks "is this buffer in the dump" handles
    triage and memory dumps alike. ``level`` says where the walk stopped: ``PML4E``, ``PDPTE``,
    ``PDE`` or ``PTE`` (that paging entry is not present, or is a transition / prototype entry),
    ``page`` (the walk ended on a page frame the dump does not hold), ``physical`` (a physical read
    of a frame the dump does not hold) or ``address`` (a non-canonical virtual address).
    ``entry_address`` is the physical address of the paging entry and ``entry`` its 64-bit value,
    so the message reads like WinDbg's ``!pte``; ``reason`` is the verdict in words.
    """

    def __init__(
        self,
        address: int,
        size: int,
        level: str,
        reason: str,
        entry_address: int | None = None,
        entry: int | None = None,
    ) -> None:
        self.level = level
        self.reason = reason
        self.entry_address = entry_address
        self.entry = entry
        super().__init__(address, size, [])

    def __str__(self) -> str:
        where = f"[0x{self.address:x}, 0x{self.address + self.size:x}) (0x{self.size:x} bytes)"
        found = ""
        if self.entry is not None and self.entry_address is not None:
            found = f" (entry at physical 0x{self.entry_address:x} = 0x{self.entry:016x})"
        return f"{where} is not in the dump: {self.level}{found}: {self.reason}"

    def __reduce__(self):
        args = (self.address, self.size, self.level, self.reason, self.entry_address, self.entry)
        return (type(self), args)

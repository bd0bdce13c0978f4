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

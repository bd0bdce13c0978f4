"""Checking and decoding the triage part of a DumpType-4 dump (TRIAGE_DUMP64 and what it points at).

Every rule here is one line of DUMP_FORMAT.md ("Triage dump"); each failure names the TRIAGE_DUMP64
field whose value is wrong and that field's file offset, so a corrupt dump is diagnosed from the
message alone. Checks run on open: a KernelDump that exists is one whose tables can be walked.
"""

from __future__ import annotations

from pathlib import Path

from . import layout as L
from .errors import DumpFormatError
from .records import DataBlock, Driver, TriageDump64
from .secondary import ReadAt


def _fail(path: Path, field: str, reason: str) -> DumpFormatError:
    return DumpFormatError(path, f"TRIAGE_DUMP64.{field}", L.triage_field_offset(field), reason)


def check_validity(path: Path, read_at: ReadAt, triage: TriageDump64, file_size: int) -> None:
    """SizeOfDump fits the file, ValidOffset == SizeOfDump - 4, and "TRGD" is there."""
    minimum = L.TRIAGE_DUMP64_OFFSET + L.TRIAGE_DUMP64_SIZE + len(L.TRIAGE_VALID)
    if triage.size_of_dump > file_size:
        raise _fail(
            path,
            "SizeOfDump",
            f"0x{triage.size_of_dump:x} is past end of file (size 0x{file_size:x})",
        )
    if triage.size_of_dump < minimum:
        raise _fail(
            path, "SizeOfDump", f"0x{triage.size_of_dump:x} is smaller than header + TRIAGE_DUMP64 + TRGD"
        )
    if triage.valid_offset != triage.size_of_dump - 4:
        raise _fail(
            path,
            "ValidOffset",
            f"0x{triage.valid_offset:x} is not SizeOfDump - 4 (0x{triage.size_of_dump - 4:x})",
        )
    found = read_at(triage.valid_offset, 4)
    if found != L.TRIAGE_VALID:
        raise _fail(
            path, "ValidOffset", f"expected {L.TRIAGE_VALID!r} at 0x{triage.valid_offset:x}, found {found!r}"
        )


def _check_range(path: Path, field: str, start: int, length: int, what: str, limit: int) -> None:
    if start + length > limit:
        raise _fail(
            path,
            field,
            f"{what} [0x{start:x}+0x{length:x}] runs past SizeOfDump (0x{limit:x})",
        )


def read_data_blocks(path: Path, read_at: ReadAt, triage: TriageDump64, file_size: int) -> list[DataBlock]:
    """The data-block table, in file order, each block checked to lie inside SizeOfDump."""
    count = triage.data_blocks_count
    if count == 0:
        return []
    table_size = count * L.TRIAGE_DATA_BLOCK_SIZE
    _check_range(
        path,
        "DataBlocksCount",
        triage.data_blocks_offset,
        table_size,
        f"table of {count} data blocks",
        triage.size_of_dump,
    )
    table = (L.TRIAGE_DATA_BLOCK * count).from_buffer_copy(read_at(triage.data_blocks_offset, table_size))
    blocks = []
    for index, entry in enumerate(table):
        address, offset, size = entry.Address, entry.Offset, entry.Size
        if offset + size > triage.size_of_dump:
            limit = (
                f"end of file (size 0x{file_size:x})"
                if offset + size > file_size
                else f"SizeOfDump (0x{triage.size_of_dump:x})"
            )
            entry = triage.data_blocks_offset + index * L.TRIAGE_DATA_BLOCK_SIZE
            raise _fail(
                path,
                "DataBlocksOffset",
                f"data block {index} (table entry at 0x{entry:x}, VA 0x{address:x}) "
                f"[0x{offset:x}+0x{size:x}] runs past {limit}",
            )
        blocks.append(DataBlock(address=address, offset=offset, size=size))
    return blocks


def check_driver_list(path: Path, triage: TriageDump64) -> None:
    """The driver list and the string pool both lie inside SizeOfDump."""
    if triage.driver_count:
        _check_range(
            path,
            "DriverCount",
            triage.driver_list_offset,
            triage.driver_count * L.DUMP_DRIVER_ENTRY64_SIZE,
            f"driver list of {triage.driver_count} entries",
            triage.size_of_dump,
        )
    if triage.string_pool_size:
        _check_range(
            path,
            "StringPoolSize",
            triage.string_pool_offset,
            triage.string_pool_size,
            "string pool",
            triage.size_of_dump,
        )


def read_drivers(path: Path, read_at: ReadAt, triage: TriageDump64) -> list[Driver]:
    """Decode the driver list; each name is a DUMP_STRING in the string pool."""
    if not triage.driver_count:
        return []
    table = read_at(triage.driver_list_offset, triage.driver_count * L.DUMP_DRIVER_ENTRY64_SIZE)
    drivers = []
    for index in range(triage.driver_count):
        entry = L.DUMP_DRIVER_ENTRY64.from_buffer_copy(table, index * L.DUMP_DRIVER_ENTRY64_SIZE)
        name = _read_dump_string(path, read_at, triage, index, entry.DriverNameOffset)
        drivers.append(Driver(name=name, base=entry.LdrEntry.DllBase, size=entry.LdrEntry.SizeOfImage))
    return drivers


def _read_dump_string(path: Path, read_at: ReadAt, triage: TriageDump64, index: int, offset: int) -> str:
    pool_end = triage.string_pool_offset + triage.string_pool_size
    entry_offset = triage.driver_list_offset + index * L.DUMP_DRIVER_ENTRY64_SIZE
    if not triage.string_pool_offset <= offset <= pool_end - 4:
        raise DumpFormatError(
            path,
            f"DUMP_DRIVER_ENTRY64[{index}].DriverNameOffset",
            entry_offset,
            f"0x{offset:x} is outside the string pool [0x{triage.string_pool_offset:x}, 0x{pool_end:x})",
        )
    length = int.from_bytes(read_at(offset, 4), "little")
    if offset + 4 + 2 * length > pool_end:
        raise DumpFormatError(
            path,
            f"DUMP_STRING.Length (driver {index})",
            offset,
            f"{length} UTF-16 characters at 0x{offset + 4:x} run past the string pool end 0x{pool_end:x}",
        )
    return read_at(offset + 4, 2 * length).decode("utf-16-le", errors="replace")

"""Windows dump files: read kernel dumps (triage; bitmap and full memory dumps by page) and
user-mode minidumps; write triage live dumps and kernel memory dumps for the simulator. Knows
nothing of scenarios or machines. Layouts: /work/shared/reference/DUMP_FORMAT.md, stated once in
``layout``."""

from .describe import describe, summary
from .errors import AddressNotInDump, DumpFormatError, PageNotInDump
from .memory import MemoryDump
from .memory_writer import MemoryDumpSpec, write_memory_dump
from .reader import KernelDump, open_dump
from .records import Blob, DataBlock, Driver, DumpHeader64, TriageDump64
from .usermode import UserModeMinidump
from .writer import TriageDumpSpec, write_triage_dump

__all__ = [
    "AddressNotInDump",
    "Blob",
    "DataBlock",
    "Driver",
    "DumpFormatError",
    "DumpHeader64",
    "KernelDump",
    "MemoryDump",
    "MemoryDumpSpec",
    "PageNotInDump",
    "TriageDump64",
    "TriageDumpSpec",
    "UserModeMinidump",
    "describe",
    "open_dump",
    "summary",
    "write_memory_dump",
    "write_triage_dump",
]

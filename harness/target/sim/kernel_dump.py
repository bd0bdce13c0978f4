"""The simulated machine's kernel memory dumps: what Windows writes when the machine is set up for
a kernel memory dump (CrashControl CrashDumpEnabled = 2) and bugchecks, or when a live dump is
taken in its full (kernel memory) form.

"A Kernel Memory Dump contains all the memory in use by the kernel at the time of the crash ... it
will not include unallocated memory, or any memory allocated to user-mode applications"; it is
written to %SystemRoot%\\MEMORY.DMP, and a second bugcheck overwrites it (windows-driver-docs,
debugger/kernel-memory-dump.md). The minidump in %SystemRoot%\\Minidump is written as well.

So the dump maps every kernel allocation of the boot at its simulated virtual address: the stored
buffers, the DMF framework data (collection, module handles, DMF_OBJECTs, configs, names,
contexts), client structures and freed normal pool (its page stays mapped, F45), and the current
thread's kernel stack from Rsp up (the bytes the minidump's call stack holds, so a debugger can walk
it from the CONTEXT in the header); freed special
pool (unmapped) and the IOCTL caller's user-mode memory are absent. The simulator packs allocations
16 bytes apart, so a freed special-pool page that a live allocation shares stays in the dump (with
zeros where the freed bytes were); Windows' special pool gives each allocation its own page.
NonPagedPoolNx is mapped with 2 MiB pages, as Windows maps nonpaged pool on machines with enough
memory [INF]; the other pools and the kernel stack with 4 KiB pages. The file layout and the page tables are
`harness.dump.memory_writer`'s.

Bugcheck dumps are DumpType 5 ("SDMP" bitmap): what Windows 10 (the simulated build 19041) writes
for a kernel memory dump, and what kdmp-parser calls BMPDump; full live dumps are DumpType 6
(LiveKernelBitmapDump) with the LiveDumpGeneratedDump attribute.
"""

from __future__ import annotations

from pathlib import Path

from harness.dump import TriageDumpSpec
from harness.dump import layout as L
from harness.dump.memory_writer import MemoryDumpSpec, write_memory_dump
from harness.target.sim.memory import KernelMemory

MEMORY_DUMP_NAME = "MEMORY.DMP"
"""%SystemRoot%\\MEMORY.DMP: DumpFile's default (CrashControl)."""

LARGE_PAGE_POOL = "NonPagedPoolNx"
CRASH_DUMP_KINDS = ("triage", "kernel")
"""`crash_dump` settings: "triage" writes the minidump only (CrashDumpEnabled = 3, small memory
dump); "kernel" writes MEMORY.DMP as well (CrashDumpEnabled = 2)."""
LIVE_DUMP_KINDS = ("triage", "kernel")
"""`live_dump` settings: "triage" (what LkmdTelCreateReport writes, F01) or "kernel" (the full
live dump: kernel memory, DumpType 6)."""


def kernel_ranges(memory: KernelMemory) -> list[tuple[int, bytes]]:
    """(VA, bytes) of every mapped kernel allocation."""
    return [(a.address, bytes(a.data)) for a in memory.kernel_allocations() if a.data]


def large_page_ranges(memory: KernelMemory) -> list[tuple[int, int]]:
    """The VA extent of the pool Windows maps with large pages."""
    pool = [a for a in memory.kernel_allocations() if a.pool == LARGE_PAGE_POOL]
    return [(min(a.address for a in pool), max(a.end for a in pool))] if pool else []


def write_kernel_dump(path: Path, header: TriageDumpSpec, memory: KernelMemory, *, live: bool) -> Path:
    """Write this boot's kernel memory as a bitmap dump at ``path``: DumpType 6 for a full live
    dump, 5 for a bugcheck's MEMORY.DMP. ``header`` carries the bugcheck, time, thread context and
    secondary data as the triage writer takes them."""
    stack = [(header.thread.rsp, header.thread.stack)] if header.thread is not None else []
    spec = MemoryDumpSpec(
        header=header,
        memory=kernel_ranges(memory) + stack,
        large_page_ranges=large_page_ranges(memory),
        dump_type=L.DUMP_TYPE_BITMAP_KERNEL if live else L.DUMP_TYPE_BITMAP_FULL,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_memory_dump(path, spec)

"""Regression tests for hostile dumps: each case is one way a reader could hang, allocate by an
untrusted count, or raise something undocumented, with the documented error it must give instead.

User-mode minidumps: the ``minidump`` package, given calc.dmp with its module count set to
0xFFFFFFFF, was still looping after 3 s (it reads zeros past the stream, four billion times), and
given a module-name length of 0x7FFFFFF0 it allocated 2 GiB (both measured on this machine with the
package alone); harness/dump/minidump_guard.py stops both before the package runs.
"""

from __future__ import annotations

import struct
import tracemalloc
from pathlib import Path

import pytest
from memory_dump_gen import Plan, generate

from harness.dump import DumpFormatError, PageNotInDump, UserModeMinidump, open_dump

MODULE_LIST = 0x7F0  # calc.dmp: ModuleListStream at 0x7F0 (directory entry 1, at 0x20 + 12)


def _calc(fixture_dumps: Path, tmp_path: Path, *patches: tuple[int, str, int]) -> Path:
    data = bytearray((fixture_dumps / "calc.dmp").read_bytes())
    for offset, fmt, value in patches:
        struct.pack_into(fmt, data, offset, value)
    path = tmp_path / "calc.dmp"
    path.write_bytes(data)
    return path


@pytest.mark.needs_shared
@pytest.mark.parametrize(
    ("offset", "fmt", "value", "field", "at"),
    [
        (MODULE_LIST, "<I", 0xFFFF_FFFF, "ModuleListStream.NumberOf*", MODULE_LIST),
        (0x6F0, "<I", 0x0100_0000, "ThreadListStream.NumberOf*", 0x6F0),
        (0x4318, "<I", 0x10_0000, "MemoryListStream.NumberOf*", 0x4318),
        (0x8, "<I", 0x1000_0000, "MINIDUMP_HEADER.NumberOfStreams", 0x8),
        (0x20 + 12 + 4, "<I", 0xFFFF_0000, "MINIDUMP_DIRECTORY[1].Location", 0x20 + 12 + 4),
    ],
)
def test_minidump_counts_and_sizes_are_checked_before_the_package_trusts_them(
    fixture_dumps: Path, tmp_path: Path, offset: int, fmt: str, value: int, field: str, at: int
) -> None:
    path = _calc(fixture_dumps, tmp_path, (offset, fmt, value))
    with pytest.raises(DumpFormatError) as info:
        open_dump(path)
    assert (info.value.field, info.value.offset) == (field, at)


@pytest.mark.needs_shared
def test_a_huge_string_length_cannot_size_a_buffer(fixture_dumps: Path, tmp_path: Path) -> None:
    name_rva = struct.unpack_from("<I", (fixture_dumps / "calc.dmp").read_bytes(), MODULE_LIST + 4 + 20)[0]
    path = _calc(fixture_dumps, tmp_path, (name_rva, "<I", 0x7FFF_FFF0))
    tracemalloc.start()
    try:
        with open_dump(path) as dump:
            assert isinstance(dump, UserModeMinidump) and dump.module_count == 28
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, f"{peak >> 20} MiB"  # the package alone allocated 2 GiB here


@pytest.mark.needs_shared
def test_package_failures_become_format_errors(fixture_dumps: Path, tmp_path: Path) -> None:
    """An unknown ProcessorArchitecture makes the package raise ValueError: DumpFormatError instead."""
    path = _calc(fixture_dumps, tmp_path, (0xBC, "<H", 0x1234))  # SystemInfoStream at 0xBC
    with pytest.raises(DumpFormatError) as info:
        open_dump(path)
    assert info.value.field == "MINIDUMP" and info.value.offset is None
    assert "could not parse it: ValueError: 4660 is not a valid PROCESSOR_ARCHITECTURE" in info.value.reason


def _handle_stream_dump(tmp_path: Path, chain: list[int | None]) -> Path:
    """A minimal MDMP with one HandleDataStream: one MINIDUMP_HANDLE_DESCRIPTOR_2 whose object
    information list is ``chain`` (entry n: the index of node n's successor, None = the end)."""
    header = struct.pack("<4sHHIIIIQ", b"MDMP", 0xA793, 0, 1, 32, 0, 0, 0)
    stream_at, nodes_at = 44, 44 + 16 + 40
    descriptor = struct.pack("<QIIIIIIII", 0x4, 0, 0, 0, 0, 1, 1, nodes_at if chain else 0, 0)
    stream = struct.pack("<IIII", 16, 40, 1, 0) + descriptor
    nodes = b"".join(struct.pack("<III", 0 if n is None else nodes_at + 12 * n, 0, 0) for n in chain)
    directory = struct.pack("<III", 12, len(stream), stream_at)
    path = tmp_path / "handles.dmp"
    path.write_bytes(header + directory + stream + nodes)
    return path


def test_a_looping_handle_object_list_is_reported_not_followed(tmp_path: Path) -> None:
    """Malformed (the list returns to itself); minidump 0.0.24 reads only the first node, so this
    guards against a version that follows the list rather than a hang seen today."""
    path = _handle_stream_dump(tmp_path, [1, 0])  # node 0 -> node 1 -> node 0 -> ...
    with pytest.raises(DumpFormatError) as info:
        open_dump(path)
    assert "ObjectInfoRva chain" in info.value.field and "a loop" in info.value.reason


def test_a_handle_object_list_that_ends_is_read(tmp_path: Path) -> None:
    path = _handle_stream_dump(tmp_path, [1, 2, None])
    with open_dump(path) as dump:
        assert len(dump.minidump.handles.handles) == 1


def test_page_table_loops_end(tmp_path: Path) -> None:
    """A PDE pointing back at its own page directory (PS clear), and a PDPTE at the PML4: the walk
    still takes four steps and ends, reading the tables as the next level (as the CPU would)."""
    plan = Plan(described_pages=0x800, present=[(0, 0x800)], small_pages=8, fill_all=False)
    g = generate(tmp_path / "loop.dmp", plan)
    va = g.small[0][0]
    with open_dump(g.path) as dump:
        pdpt = int.from_bytes(dump.read_physical(g.dtb + ((va >> 39) & 0x1FF) * 8, 8), "little") & ~0xFFF
        pd = int.from_bytes(dump.read_physical(pdpt + ((va >> 30) & 0x1FF) * 8, 8), "little") & ~0xFFF
    raw = bytearray(g.path.read_bytes())
    pd_entry = g.first_page + pd + ((va >> 21) & 0x1FF) * 8  # all frames present: offset = first + pa
    struct.pack_into("<Q", raw, pd_entry, pd | 0x3)
    g.path.write_bytes(raw)
    with open_dump(g.path) as dump:
        try:
            physical = dump.translate(va)
        except PageNotInDump as error:
            assert error.level in ("PTE", "page")
        else:
            assert 0 <= physical < 1 << 52
        _, faults = dump.try_read_u64([va, va + 8])
        assert faults.shape == (2,)

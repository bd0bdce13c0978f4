"""Regression tests for hostile dumps: each case is one way a reader could hang, allocate by an
untrusted count, or raise something undocumented, with the documented error it must give instead.

User-mode minidumps: the ``minidump`` package, given calc.dmp with its module count set to
0xFFFFFFFF, was still looping after 3 s (it reads zeros past the stream, four billion times), and
given a module-name length of 0x7FFFFFF0 it allocated 2 GiB (both measured on this machine with the
package alone); harness/dump/minidump_guard.py stops both before the package runs.
"""

from __future__ import annotations

import io
import struct
import tracemalloc
from pathlib import Path

import pytest
from memory_dump_gen import Plan, generate

from harness.dump import DumpFormatError, PageNotInDump, UserModeMinidump, open_dump
from harness.dump.minidump_guard import ClampedFile

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


# --- MINIDUMP_HANDLE_DATA_STREAM, field by field (minidump_guard._check_handles) -------------------
# Layout (MSDN "MINIDUMP_HANDLE_DATA_STREAM", "MINIDUMP_HANDLE_DESCRIPTOR_2"): a 16-byte header
# {SizeOfHeader, SizeOfDescriptor, NumberOfDescriptors, Reserved}, then descriptors of 32 bytes
# (MINIDUMP_HANDLE_DESCRIPTOR) or 40 (..._2, whose ObjectInfoRva is at +32); each object-information
# node is {NextInfoRva, InfoType, SizeOfInfo}. The stream starts at 44 (header 32 + one directory entry).
HANDLE_STREAM_AT = 44


def _handles_dump(
    tmp_path: Path,
    *,
    descriptor_size: int = 40,
    claimed: int | None = None,
    object_info: list[int] | None = None,
    nodes: list[int] | None = None,
    stream_size: int | None = None,
) -> tuple[Path, int]:
    """An MDMP whose only stream is a HandleDataStream: one descriptor per ``object_info`` entry
    (its ObjectInfoRva), NumberOfDescriptors = ``claimed`` (default: as many as there are), then
    the object-information nodes, node n's NextInfoRva = ``nodes[n]``. Returns the path and where
    the nodes start."""
    object_info = [0] if object_info is None else object_info
    count = len(object_info) if claimed is None else claimed
    descriptors = b""
    for rva in object_info:
        descriptor = struct.pack("<QIIIIII", 0x4, 0, 0, 0, 0, 1, 1)
        if descriptor_size == 40:
            descriptor += struct.pack("<II", rva, 0)
        descriptors += descriptor
    stream = struct.pack("<IIII", 16, descriptor_size, count, 0) + descriptors
    nodes_at = HANDLE_STREAM_AT + len(stream)
    node_bytes = b"".join(struct.pack("<III", nxt, 0, 0) for nxt in nodes or [])
    size = len(stream) if stream_size is None else stream_size
    header = struct.pack("<4sHHIIIIQ", b"MDMP", 0xA793, 0, 1, 32, 0, 0, 0)
    directory = struct.pack("<III", HANDLE_DATA_STREAM, size, HANDLE_STREAM_AT)
    path = tmp_path / "handles.dmp"
    path.write_bytes(header + directory + stream + node_bytes)
    return path, nodes_at


HANDLE_DATA_STREAM = 12


def _refusal(path: Path) -> DumpFormatError:
    with pytest.raises(DumpFormatError) as info:
        open_dump(path)
    assert info.value.path == path
    return info.value


def test_more_handle_descriptors_than_the_stream_holds_are_refused(tmp_path: Path) -> None:
    path, _ = _handles_dump(tmp_path, claimed=2)  # one 40-byte descriptor, two claimed
    error = _refusal(path)
    assert (error.field, error.offset) == ("MINIDUMP_HANDLE_DATA_STREAM.NumberOfDescriptors", 44 + 8)
    assert error.reason == "2 handle descriptors of 0x28 bytes do not fit the stream's 0x38 bytes"


def test_a_handle_count_with_the_top_bit_set_is_a_huge_count_not_a_negative_one(tmp_path: Path) -> None:
    path, _ = _handles_dump(tmp_path, claimed=0x8000_0000)
    error = _refusal(path)
    assert error.offset == 44 + 8
    assert error.reason.startswith("2147483648 handle descriptors of 0x28 bytes")


def test_32_byte_handle_descriptors_are_counted_at_32_bytes(tmp_path: Path) -> None:
    """SizeOfDescriptor 32 is the original MINIDUMP_HANDLE_DESCRIPTOR (no ObjectInfoRva): one fits
    a 48-byte stream exactly, two do not."""
    path, _ = _handles_dump(tmp_path, descriptor_size=32)
    with open_dump(path) as dump:
        assert len(dump.minidump.handles.handles) == 1
    path, _ = _handles_dump(tmp_path, descriptor_size=32, claimed=2)
    error = _refusal(path)
    assert error.reason == "2 handle descriptors of 0x20 bytes do not fit the stream's 0x30 bytes"


def test_a_handle_stream_of_just_its_header_is_checked_too(tmp_path: Path) -> None:
    """A 16-byte stream holds the header and no descriptor: a count of 1 does not fit it."""
    path, _ = _handles_dump(tmp_path, stream_size=16)
    error = _refusal(path)
    assert error.reason == "1 handle descriptors of 0x28 bytes do not fit the stream's 0x10 bytes"


def test_a_handle_object_loop_names_the_node_that_closes_it(tmp_path: Path) -> None:
    """Node 0 -> node 1 -> node 0: the error is at node 1's NextInfoRva, naming node 0."""
    nodes_at = HANDLE_STREAM_AT + 16 + 40
    path, _ = _handles_dump(tmp_path, object_info=[nodes_at], nodes=[nodes_at + 12, nodes_at])
    error = _refusal(path)
    assert (error.field, error.offset) == (
        "MINIDUMP_HANDLE_DESCRIPTOR_2[0].ObjectInfoRva chain",
        nodes_at + 12,
    )
    assert error.reason == f"the chain returns to 0x{nodes_at:x}: a loop"


def test_the_second_descriptors_object_list_is_walked_from_its_own_field(tmp_path: Path) -> None:
    """Descriptor 1's ObjectInfoRva (at 44 + 16 + 40 + 32) points past the file."""
    path, _ = _handles_dump(tmp_path, object_info=[0, 0x9000])
    size = path.stat().st_size
    error = _refusal(path)
    assert (error.field, error.offset) == (
        "MINIDUMP_HANDLE_DESCRIPTOR_2[1].ObjectInfoRva chain",
        44 + 16 + 72,
    )
    assert error.reason == f"object information at 0x9000 runs past end of file (size 0x{size:x})"


@pytest.mark.parametrize("rva", [0xFFFF_FFF0, 0x8000_0000])
def test_an_object_information_rva_with_the_top_bit_set_is_past_the_file(tmp_path: Path, rva: int) -> None:
    path, _ = _handles_dump(tmp_path, object_info=[rva])
    error = _refusal(path)
    assert error.offset == 44 + 16 + 32
    assert error.reason.startswith(f"object information at 0x{rva:x} runs past end of file")


def test_a_next_object_rva_past_the_file_is_reported_at_the_node(tmp_path: Path) -> None:
    nodes_at = HANDLE_STREAM_AT + 16 + 40
    path, _ = _handles_dump(tmp_path, object_info=[nodes_at], nodes=[0xFFFF_FFF0])
    error = _refusal(path)
    assert (error.field, error.offset) == ("MINIDUMP_HANDLE_DESCRIPTOR_2[0].ObjectInfoRva chain", nodes_at)
    assert error.reason.startswith("object information at 0xfffffff0 runs past end of file")


def test_an_object_node_that_starts_inside_the_file_but_ends_past_it_is_refused(tmp_path: Path) -> None:
    """The node is 12 bytes: one starting 8 bytes before end of file runs 4 bytes past it."""
    path, _ = _handles_dump(tmp_path)
    size = path.stat().st_size
    path, _ = _handles_dump(tmp_path, object_info=[size - 8])
    error = _refusal(path)
    assert error.reason == f"object information at 0x{size - 8:x} runs past end of file (size 0x{size:x})"


# --- list streams and the header (minidump_guard.check_minidump / _check_list) ---------------------
def _minidump(tmp_path: Path, streams: list[tuple[int, bytes]], tail: bytes = b"") -> Path:
    """MINIDUMP_HEADER, a directory of ``streams`` (StreamType, bytes) laid out after it, ``tail``."""
    directory_at, data_at = 32, 32 + 12 * len(streams)
    directory, body = b"", b""
    for stream_type, payload in streams:
        directory += struct.pack("<III", stream_type, len(payload), data_at + len(body))
        body += payload
    header = struct.pack("<4sHHIIIIQ", b"MDMP", 0xA793, 0, len(streams), directory_at, 0, 0, 0)
    path = tmp_path / "list.dmp"
    path.write_bytes(header + directory + body + tail)
    return path


UNLOADED_MODULE_LIST = 14  # {SizeOfHeader, SizeOfEntry, NumberOfEntries} then 24-byte entries
THREAD_LIST = 3  # {NumberOfThreads} then 48-byte MINIDUMP_THREADs


def test_a_count_after_a_header_is_read_and_reported_at_its_own_offset(tmp_path: Path) -> None:
    """UnloadedModuleListStream keeps its count at +8: one entry more than the stream holds."""
    stream = struct.pack("<III", 12, 24, 2) + bytes(24)
    path = _minidump(tmp_path, [(UNLOADED_MODULE_LIST, stream)])
    error = _refusal(path)
    assert (error.field, error.offset) == ("UnloadedModuleListStream.NumberOf*", 44 + 8)
    assert (
        error.reason == "2 entries of 0x18 bytes after a 0xc-byte header do not fit the stream's 0x24 bytes"
    )
    path = _minidump(tmp_path, [(UNLOADED_MODULE_LIST, struct.pack("<III", 12, 24, 1) + bytes(24))])
    with open_dump(path):
        pass  # exactly one entry fits


def test_one_thread_more_than_the_stream_holds_is_refused(tmp_path: Path) -> None:
    path = _minidump(tmp_path, [(THREAD_LIST, struct.pack("<I", 2) + bytes(48))])
    error = _refusal(path)
    assert (error.field, error.offset) == ("ThreadListStream.NumberOf*", 44)
    assert (
        error.reason == "2 entries of 0x30 bytes after a 0x4-byte header do not fit the stream's 0x34 bytes"
    )


def test_a_stream_of_just_its_count_is_checked(tmp_path: Path) -> None:
    """A 4-byte ThreadListStream holds the count and no thread: a count of 1 does not fit."""
    error = _refusal(_minidump(tmp_path, [(THREAD_LIST, struct.pack("<I", 1))]))
    assert error.reason == "1 entries of 0x30 bytes after a 0x4-byte header do not fit the stream's 0x4 bytes"


@pytest.mark.parametrize(
    ("stream_type", "payload"),
    [(UNLOADED_MODULE_LIST, struct.pack("<II", 12, 24)), (THREAD_LIST, b"")],
    ids=["unloaded-8-bytes", "threads-empty"],
)
def test_a_stream_too_short_for_its_count_has_no_entries(
    tmp_path: Path, stream_type: int, payload: bytes
) -> None:
    """The count is read only from the stream's own bytes: what follows the stream (here a huge
    count at the place the count would be) belongs to something else and is not trusted as one."""
    tail = struct.pack("<I", 0xFFFF_FFFF) * 2 + bytes(64)
    with open_dump(_minidump(tmp_path, [(stream_type, payload)], tail)) as dump:
        assert dump.thread_count == 0


def test_a_file_shorter_than_the_minidump_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "short.dmp"
    path.write_bytes(b"MDMP" + bytes(12))
    error = _refusal(path)
    assert (error.field, error.offset) == ("MINIDUMP_HEADER", 0)
    assert error.reason == "file is 0x10 bytes, shorter than the 0x20-byte MINIDUMP_HEADER"


def test_a_stream_count_with_the_top_bit_set_is_huge(tmp_path: Path) -> None:
    path = _minidump(tmp_path, [])
    raw = bytearray(path.read_bytes())
    struct.pack_into("<I", raw, 8, 0x8000_0000)
    path.write_bytes(raw)
    error = _refusal(path)
    assert (error.field, error.offset) == ("MINIDUMP_HEADER.NumberOfStreams", 8)
    assert error.reason == "2147483648 stream directory entries at 0x20 run past end of file (size 0x20)"


def test_one_directory_entry_more_than_the_file_holds_is_refused(tmp_path: Path) -> None:
    path = _minidump(tmp_path, [(THREAD_LIST, struct.pack("<I", 0))])  # 48 bytes: header, 1 entry, stream
    raw = bytearray(path.read_bytes())
    struct.pack_into("<I", raw, 8, 2)
    path.write_bytes(raw)
    error = _refusal(path)
    assert (error.field, error.offset) == ("MINIDUMP_HEADER.NumberOfStreams", 8)
    assert error.reason == "2 stream directory entries at 0x20 run past end of file (size 0x30)"


def test_a_stream_running_past_the_file_names_its_directory_entry(tmp_path: Path) -> None:
    path = _minidump(tmp_path, [(THREAD_LIST, struct.pack("<I", 0)), (THREAD_LIST, struct.pack("<I", 0))])
    raw = bytearray(path.read_bytes())
    struct.pack_into("<I", raw, 32 + 12 + 4, 5)  # entry 1's DataSize: 5 bytes at 0x3c in a 0x40-byte file
    path.write_bytes(raw)
    error = _refusal(path)
    assert (error.field, error.offset) == ("MINIDUMP_DIRECTORY[1].Location", 32 + 12 + 4)
    assert error.reason == "stream type 3 [0x3c+0x5] runs past end of file (size 0x40)"


def test_the_clamped_file_never_reads_past_the_size_it_was_given(tmp_path: Path) -> None:
    """ClampedFile is what the ``minidump`` package reads through: whatever size it asks for, no
    read returns (or buffers) more than is left before the size given, here 10 of 100 bytes."""
    path = tmp_path / "hundred.bin"
    path.write_bytes(bytes(range(100)))
    with path.open("rb") as raw:
        clamped = ClampedFile(raw, 10)
        assert clamped.read(4) == bytes(range(4))
        assert clamped.read(0) == b""
        assert clamped.read(100) == bytes(range(4, 10))  # asked for 100, 6 were left
        assert clamped.read(1) == b""  # at the limit
        assert clamped.seek(2) == 2 and clamped.read(-1) == bytes(range(2, 10))
        assert clamped.seek(3) == 3 and clamped.read(None) == bytes(range(3, 10))
        assert clamped.seek(50) == 50 and clamped.read(5) == b"" and clamped.read() == b""
        assert clamped.seek(-4, io.SEEK_END) == 96 and clamped.tell() == 96  # whence is passed on
        assert clamped.readable() and clamped.seekable()

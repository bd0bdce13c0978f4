"""Malformed dumps are refused with a DumpFormatError that names the wrong field, its offset, and why.

Each corruption is applied to a copy (in tmp_path) of a real fixture and of a writer-produced dump,
so the checks are proven on Windows's own layout, not only on ours. Offsets are found with plain
``struct`` here, independently of the reader.
"""

from __future__ import annotations

import random
import shutil
import struct
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.dump import (
    AddressNotInDump,
    DumpFormatError,
    KernelDump,
    TriageDumpSpec,
    UserModeMinidump,
    open_dump,
    write_triage_dump,
)


def u32(raw: bytearray, offset: int) -> int:
    return struct.unpack_from("<I", raw, offset)[0]


def put32(raw: bytearray, offset: int, value: int) -> None:
    struct.pack_into("<I", raw, offset, value)


def truncated_header(raw: bytearray) -> tuple[bytes, str, int | None, str]:
    return bytes(raw[:0x1000]), "DUMP_HEADER64", 0, "shorter than the 0x2000-byte header"


def wrong_valid_dump(raw: bytearray):
    raw[4:8] = b"DU32"
    return bytes(raw), "DUMP_HEADER64.ValidDump", 4, "found b'PAGEDU32'"


def thirty_two_bit(raw: bytearray):
    raw[4:8] = b"DUMP"
    return bytes(raw), "DUMP_HEADER64.ValidDump", 4, "32-bit kernel dumps"


def truncated_triage(raw: bytearray):
    return bytes(raw[:0x2040]), "TRIAGE_DUMP64", 0x2000, "too short for TRIAGE_DUMP64"


def missing_trgd(raw: bytearray):
    valid = u32(raw, 0x2008)
    raw[valid : valid + 4] = b"GDRT"
    return bytes(raw), "TRIAGE_DUMP64.ValidOffset", 0x2008, "expected b'TRGD'"


def valid_offset_moved(raw: bytearray):
    put32(raw, 0x2008, u32(raw, 0x2008) - 8)
    return bytes(raw), "TRIAGE_DUMP64.ValidOffset", 0x2008, "is not SizeOfDump - 4"


def size_of_dump_past_eof(raw: bytearray):
    put32(raw, 0x2004, len(raw) + 0x1000)
    put32(raw, 0x2008, len(raw) + 0x1000 - 4)
    return bytes(raw), "TRIAGE_DUMP64.SizeOfDump", 0x2004, f"past end of file (size 0x{len(raw):x})"


def block_table_too_long(raw: bytearray):
    put32(raw, 0x207C, 0x0100_0000)
    return bytes(raw), "TRIAGE_DUMP64.DataBlocksCount", 0x207C, "table of 16777216 data blocks"


def block_past_eof(raw: bytearray):
    entry = u32(raw, 0x2078) + 3 * 16
    put32(raw, entry + 12, len(raw))
    return bytes(raw), "TRIAGE_DUMP64.DataBlocksOffset", 0x2078, f"data block 3 (table entry at 0x{entry:x}"


def block_past_size_of_dump(raw: bytearray):
    entry = u32(raw, 0x2078) + 3 * 16
    put32(raw, entry + 8, u32(raw, 0x2004) - 2)
    put32(raw, entry + 12, 8)
    return bytes(raw), "TRIAGE_DUMP64.DataBlocksOffset", 0x2078, "runs past SizeOfDump"


def driver_list_too_long(raw: bytearray):
    put32(raw, 0x2034, 0x10_0000)
    return bytes(raw), "TRIAGE_DUMP64.DriverCount", 0x2034, "driver list of 1048576 entries"


def blob_past_eof(raw: bytearray):
    first_blob = u32(raw, 0x2004) + 0x10
    put32(raw, first_blob + 0x14, len(raw))
    return bytes(raw), "DUMP_BLOB_HEADER.DataSize", first_blob + 0x14, "runs past end of file"


def blob_header_past_eof(raw: bytearray):
    first_blob = u32(raw, 0x2004) + 0x10
    put32(raw, first_blob, len(raw))  # HeaderSize: the header alone would end past the file
    return (
        bytes(raw),
        "DUMP_BLOB_HEADER.HeaderSize",
        first_blob,
        f"[0x{first_blob:x}+0x{len(raw):x}] runs past end of file",
    )


def blob_padding_past_eof(raw: bytearray):
    first_blob = u32(raw, 0x2004) + 0x10
    put32(raw, first_blob + 0x1C, len(raw))  # PostPad
    return (
        bytes(raw),
        "DUMP_BLOB_HEADER.PostPad",
        first_blob + 0x1C,
        f"past end of file (size 0x{len(raw):x})",
    )


def empty_file(raw: bytearray):
    return b"", "DUMP_HEADER64.Signature", 0, "file is empty"


def random_bytes(raw: bytearray):
    noise = random.Random(4).randbytes(4096)
    return noise, "DUMP_HEADER64.Signature", 0, noise[:8].hex()


CORRUPTIONS: list[Callable] = [
    truncated_header,
    wrong_valid_dump,
    thirty_two_bit,
    truncated_triage,
    missing_trgd,
    valid_offset_moved,
    size_of_dump_past_eof,
    block_table_too_long,
    block_past_eof,
    block_past_size_of_dump,
    driver_list_too_long,
    blob_past_eof,
    blob_header_past_eof,
    blob_padding_past_eof,
    empty_file,
    random_bytes,
]


def simulated_dump(folder: Path) -> Path:
    spec = TriageDumpSpec(
        0x161,
        (1, 0xFFFFC00000000000, 0, 0),
        data_blocks=[(0xFFFFC00000001000 + 0x1000 * i, bytes([i]) * 40) for i in range(6)],
        secondary_data=[(uuid.UUID(int=5), b"secondary bytes")],
    )
    return write_triage_dump(folder / "sim.dmp", spec)


@pytest.fixture(params=["real", "sim"])
def base_dump(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A pristine dump to corrupt: a copy of triage_x64.dmp, or one from the writer."""
    if request.param == "sim":
        return simulated_dump(tmp_path)
    request.applymarker(pytest.mark.needs_shared)
    fixture_dumps: Path = request.getfixturevalue("fixture_dumps")
    return Path(shutil.copyfile(fixture_dumps / "triage_x64.dmp", tmp_path / "triage_x64.dmp"))


@pytest.mark.parametrize("corrupt", CORRUPTIONS, ids=[c.__name__ for c in CORRUPTIONS])
@pytest.mark.parametrize("opener", [KernelDump, open_dump], ids=["KernelDump", "open_dump"])
def test_corruption_is_reported(base_dump: Path, corrupt: Callable, opener: Callable) -> None:
    with KernelDump(base_dump):
        pass  # the pristine copy opens: the corruption alone causes the error
    data, field, offset, words = corrupt(bytearray(base_dump.read_bytes()))
    base_dump.write_bytes(data)
    with pytest.raises(DumpFormatError) as info:
        opener(base_dump)
    error = info.value
    assert (error.field, error.offset) == (field, offset)
    assert words in error.reason
    assert str(error).startswith(f"{base_dump.name}: {field} (file offset 0x{offset:x}): ")
    assert error.path == base_dump


@pytest.mark.needs_shared
def test_message_of_a_block_past_end_of_file(tmp_path: Path, fixture_dumps: Path) -> None:
    """The whole message, for the record of what an engineer reads."""
    copy = Path(shutil.copyfile(fixture_dumps / "triage_x64.dmp", tmp_path / "triage.dmp"))
    raw = bytearray(copy.read_bytes())
    put32(raw, 0x19438 + 3 * 16 + 12, 0x110000)  # block 3 (at 0x2bb14) now claims 0x110000 bytes
    copy.write_bytes(raw)
    with pytest.raises(DumpFormatError) as info:
        KernelDump(copy)
    assert str(info.value) == (
        "triage.dmp: TRIAGE_DUMP64.DataBlocksOffset (file offset 0x2078): data block 3 "
        "(table entry at 0x19468, VA 0xffff850429892120) [0x2bb14+0x110000] runs past SizeOfDump (0x13a28c)"
    )


def test_bad_driver_name_offset_is_reported_on_use(tmp_path: Path) -> None:
    path = simulated_dump(tmp_path)
    raw = bytearray(path.read_bytes())
    driver_list = u32(raw, 0x2030)
    put32(raw, driver_list + 0x90, 0x10)  # driver 1's name now points into the header
    path.write_bytes(raw)
    with KernelDump(path) as dump, pytest.raises(DumpFormatError) as info:
        _ = dump.drivers
    assert info.value.field == "DUMP_DRIVER_ENTRY64[1].DriverNameOffset"
    assert info.value.offset == driver_list + 0x90
    assert "outside the string pool" in info.value.reason


def test_errors_survive_pickling() -> None:
    """pytest-xdist ships exceptions between processes."""
    import pickle

    error = DumpFormatError(Path("a.dmp"), "TRIAGE_DUMP64.SizeOfDump", 0x2004, "too big")
    again = pickle.loads(pickle.dumps(error))
    assert (again.path, again.field, again.offset, again.reason) == (
        error.path,
        error.field,
        0x2004,
        "too big",
    )
    assert str(again) == "a.dmp: TRIAGE_DUMP64.SizeOfDump (file offset 0x2004): too big"


def test_error_text_without_an_offset_and_in_args() -> None:
    """A problem of the file as a whole has no offset and says so by omission; the message is also
    the exception's ``args`` (what ``repr`` and logging show)."""
    error = DumpFormatError(Path("/x/a.dmp"), "MINIDUMP", None, "the minidump package could not parse it")
    assert str(error) == "a.dmp: MINIDUMP: the minidump package could not parse it"
    assert error.args == (str(error),)
    assert repr(error) == f"DumpFormatError({str(error)!r})"


def test_an_empty_user_mode_minidump_is_refused_by_its_size(tmp_path: Path) -> None:
    """UserModeMinidump opened directly on an empty file (open_dump sends it nowhere: no "MDMP")."""
    path = tmp_path / "empty.dmp"
    path.write_bytes(b"")
    with pytest.raises(DumpFormatError) as info:
        UserModeMinidump(path)
    assert (info.value.path, info.value.field, info.value.offset) == (path, "MINIDUMP_HEADER", 0)
    assert info.value.reason == "file is 0x0 bytes, shorter than the 0x20-byte MINIDUMP_HEADER"


def test_a_read_in_a_dump_without_blocks_says_there_are_none() -> None:
    error = AddressNotInDump(0xFFFF_C000_0000_1000, 0x10, [])
    assert str(error) == (
        "[0xffffc00000001000, 0xffffc00000001010) (0x10 bytes) is not inside any data block; "
        "nearest blocks: none (no data blocks)"
    )


@pytest.mark.parametrize(
    ("content", "field", "offset", "reason"),
    [
        (b"", "DUMP_HEADER64.Signature", 0, "file is empty (0 bytes)"),
        (
            b"PAGEDUMP" + bytes(0x2000),
            "DUMP_HEADER64.ValidDump",
            4,
            "32-bit kernel dumps ('PAGEDUMP', DUMP_HEADER32) are not supported yet",
        ),
    ],
    ids=["empty", "32-bit"],
)
def test_signature_refusals_word_for_word(
    tmp_path: Path, content: bytes, field: str, offset: int, reason: str
) -> None:
    path = tmp_path / "x.dmp"
    path.write_bytes(content)
    for opener in (KernelDump, open_dump):
        with pytest.raises(DumpFormatError) as info:
            opener(path)
        assert (info.value.field, info.value.offset, info.value.reason) == (field, offset, reason)


def test_address_not_in_dump_survives_pickling() -> None:
    import pickle

    error = AddressNotInDump(0x1000, 8, [(0x800, 0x10)])
    again = pickle.loads(pickle.dumps(error))
    assert (again.address, again.size, again.nearest) == (0x1000, 8, [(0x800, 0x10)])
    assert str(again) == str(error)


def test_an_open_dump_says_what_it_is(tmp_path: Path) -> None:
    path = simulated_dump(tmp_path)
    with KernelDump(path) as dump:
        assert repr(dump) == f"KernelDump({str(path)!r}, triage, 6 blocks)"

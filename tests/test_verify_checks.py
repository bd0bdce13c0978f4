"""harness.verify function by function: every failure branch with its exact Mismatch (YAML path,
message, expected, found), every boundary, and the passing case beside it.

The dumps are real triage files written with harness.dump's writer and read back by the reader;
the scenario models are built as the loader builds them (pydantic validation of plain data).
Mutation testing (MUTATION.md) found which of these the scenario-level tests left unchecked.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from harness.dump import KernelDump, TriageDumpSpec, write_triage_dump
from harness.scenario.model import DumpExpect, Expect, SecondaryDataExpect
from harness.target.ops import CollectedDump, Crash, OpResult
from harness.verify import (
    BufferView,
    DumpContext,
    Mismatch,
    check_crash_dump,
    check_dump,
    check_dump_count,
    check_outcome,
    check_value,
    describe_crash,
)
from harness.verify.dump_contents import resolve
from harness.verify.known_defect import covers

GUID = uuid.UUID("3c1e7a52-93f4-4d4c-9b1a-6b2f0f6d7e11")
A = 0xFFFF9A0000001000
B = 0xFFFF9A0000002000
COLLECTION = 0xFFFFB00012345678
A_BYTES = bytes(range(32))
B_BYTES = b"B" * 16


def context(**changes: object) -> DumpContext:
    values: dict[str, object] = {
        "buffers": {"a": BufferView("a", A, A_BYTES), "b": BufferView("b", B, B_BYTES)},
        "collection_handle": COLLECTION,
        "secondary_data_guid": GUID,
        "create_bugcheck_code": 0x1A2,
    }
    values.update(changes)
    return DumpContext(**values)  # type: ignore[arg-type]


def dump_file(tmp_path: Path, name: str = "live.dmp", **changes: object) -> Path:
    spec: dict[str, object] = {
        "bugcheck_code": 0x1A2,
        "bugcheck_parameters": (7, COLLECTION, 0, 0),
        "data_blocks": [(A, A_BYTES[:16])],
        "secondary_data": [(GUID, b"telemetry")],
    }
    spec.update(changes)
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / name
    write_triage_dump(path, TriageDumpSpec(**spec))  # type: ignore[arg-type]
    return path


def check(
    tmp_path: Path, expect: dict | None, ctx: DumpContext | None = None, **dump: object
) -> list[Mismatch]:
    model = None if expect is None else DumpExpect.model_validate(expect)
    with KernelDump(dump_file(tmp_path, **dump)) as opened:
        return check_dump(model, opened, ctx or context())


# -- the kind and the code ----------------------------------------------------------------------


def test_a_dump_that_is_not_live_is_named(tmp_path: Path) -> None:
    assert check(tmp_path, None, live=False) == [
        Mismatch(
            ("expect", "dump"),
            "live.dmp is not a live triage dump",
            "DumpType 4 with the LiveDumpGeneratedDump attribute",
            "DumpType 4, Attributes None",
        )
    ]


def test_the_code_defaults_to_the_creates_and_an_explicit_one_wins(tmp_path: Path) -> None:
    assert check(tmp_path, None) == []
    assert check(tmp_path, {}, context(create_bugcheck_code=0x1A3)) == [
        Mismatch(("expect", "dump", "bugcheck_code"), "the dump's BugCheckCode differs", "0x1A3", "0x1A2")
    ]
    assert check(tmp_path, {"bugcheck_code": 0x1A2}, context(create_bugcheck_code=0x1A3)) == []
    assert check(tmp_path, {"bugcheck_code": 0x1A4}) == [
        Mismatch(("expect", "dump", "bugcheck_code"), "the dump's BugCheckCode differs", "0x1A4", "0x1A2")
    ]
    assert check(tmp_path, None, context(create_bugcheck_code=None)) == []  # short raw IOCTL bytes


def test_every_mismatch_of_a_dump_is_reported_not_only_the_last(tmp_path: Path) -> None:
    expect = {
        "bugcheck_code": 0x1A4,
        "parameters": [8],
        "contains": ["b"],
        "excludes": ["a"],
        "secondary_data": [{"absent": True}],
    }
    paths = [m.path for m in check(tmp_path, expect)]
    assert paths == [
        ("expect", "dump", "bugcheck_code"),
        ("expect", "dump", "parameters", 0),
        ("expect", "dump", "contains", 0),
        ("expect", "dump", "excludes", 0),
        ("expect", "dump", "secondary_data", 0),
    ]


# -- parameters ---------------------------------------------------------------------------------


def test_parameters_numbers_collection_and_any(tmp_path: Path) -> None:
    assert check(tmp_path, {"parameters": [7, "collection", 0, "any"]}) == []
    assert check(tmp_path, {"parameters": ["any", 0, 0, 1]}) == [
        Mismatch(
            ("expect", "dump", "parameters", 1), "BugCheckParameter2 differs", "0x0", f"0x{COLLECTION:X}"
        ),
        Mismatch(("expect", "dump", "parameters", 3), "BugCheckParameter4 differs", "0x1", "0x0"),
    ]
    assert check(tmp_path, {"parameters": [7, "collection"]}, context(collection_handle=5)) == [
        Mismatch(
            ("expect", "dump", "parameters", 1),
            "BugCheckParameter2 differs",
            "0x5 (the DmfCollection handle)",
            f"0x{COLLECTION:X}",
        )
    ]


# -- contains / excludes ------------------------------------------------------------------------


def test_resolve_names_a_slice_its_range_and_bytes() -> None:
    from harness.scenario.model import BufferSlice

    ctx = context()
    whole = resolve(BufferSlice.model_validate("a"), ctx)
    assert (whole.label, whole.address, whole.length, whole.data) == ("a", A, 32, A_BYTES)
    tail = resolve(BufferSlice.model_validate({"buffer": "a", "offset": 8}), ctx)
    assert (tail.label, tail.address, tail.length, tail.data) == ("a[8:end]", A + 8, 24, A_BYTES[8:])
    piece = resolve(BufferSlice.model_validate({"buffer": "a", "offset": 4, "length": 2}), ctx)
    assert (piece.address, piece.length, piece.data) == (A + 4, 2, A_BYTES[4:6])
    raw = resolve(BufferSlice.model_validate({"address": A, "offset": 3, "length": 5}), ctx)
    assert (raw.label, raw.address, raw.length, raw.data) == (f"0x{A:X}[3:+5]", A + 3, 5, None)


def test_contains_by_name_slice_raw_address_and_explicit_bytes(tmp_path: Path) -> None:
    ok = [
        {"buffer": "a", "length": 16},
        {"buffer": "a", "offset": 8, "length": 8},
        {"address": A + 2, "length": 4},
        {"address": A, "length": 16, "bytes": A_BYTES[:16].hex()},
        {"buffer": "a", "length": 16, "bytes": "00 01 02"},
    ]
    assert check(tmp_path, {"contains": ok}) == []


def test_contains_failures_name_the_range_and_the_evidence(tmp_path: Path) -> None:
    found = check(
        tmp_path,
        {
            "contains": [
                "a",  # 32 bytes; the dump holds 16
                {"address": A + 12, "length": 8},
                {"buffer": "a", "length": 16, "bytes": "00 01 FF"},
                {"address": A + 1, "length": 4, "bytes": "01 02 03 05"},
            ]
        },
        data_blocks=[(A, A_BYTES[:16]), (B, B_BYTES), (A + 0x100, b"x" * 8)],
    )
    nearest = f"no block covers it; 3 blocks, nearest: 0x{A:X}+0x10, 0x{A + 0x100:X}+0x8, 0x{B:X}+0x10"
    assert found == [
        Mismatch(
            ("expect", "dump", "contains", 0),
            f"the dump does not contain a (0x{A:X}+0x20)",
            "a data block covering the range",
            nearest,
        ),
        Mismatch(
            ("expect", "dump", "contains", 1),
            f"the dump does not contain 0x{A + 12:X}[0:+8] (0x{A + 12:X}+0x8)",
            "a data block covering the range",
            nearest,
        ),
        Mismatch(
            ("expect", "dump", "contains", 2),
            f"the dump holds a[0:+16] (0x{A:X}+0x10) but its bytes differ from offset +0x2",
            "FF",
            "02",
        ),
        Mismatch(
            ("expect", "dump", "contains", 3),
            f"the dump holds 0x{A + 1:X}[0:+4] (0x{A + 1:X}+0x4) but its bytes differ from offset +0x3",
            "05",
            "04",
        ),
    ]


def test_a_dump_without_blocks_says_so(tmp_path: Path) -> None:
    (mismatch,) = check(tmp_path, {"contains": ["b"]}, data_blocks=[])
    assert mismatch.found == "the dump has no data blocks at all"


def test_bytes_differences_show_sixteen_bytes_from_the_first(tmp_path: Path) -> None:
    data = bytes(range(40))
    ctx = context(buffers={"a": BufferView("a", A, data)})
    (mismatch,) = check(tmp_path, {"contains": ["a"]}, ctx, data_blocks=[(A, data[:3] + b"\xee" + data[4:])])
    assert mismatch.message.endswith("differ from offset +0x3")
    assert mismatch.expected == data[3:19].hex(" ").upper()
    assert mismatch.found == ("EE" + data[4:19].hex(" ")).upper().replace("EE", "EE ", 1).strip()


def test_excludes_counts_and_lists_at_most_four_overlapping_blocks(tmp_path: Path) -> None:
    blocks = [(A + 8 * i, bytes(8)) for i in range(5)]
    (mismatch,) = check(tmp_path, {"excludes": [{"address": A + 4, "length": 32}]}, data_blocks=blocks)
    assert mismatch == Mismatch(
        ("expect", "dump", "excludes", 0),
        f"the dump contains 0x{A + 4:X}[0:+32] (0x{A + 4:X}+0x20), which it must not",
        "no data block overlapping the range",
        f"5 overlapping block(s): 0x{A:X}+0x8, 0x{A + 8:X}+0x8, 0x{A + 16:X}+0x8, 0x{A + 24:X}+0x8",
    )


@pytest.mark.parametrize(
    ("start", "length", "overlaps"),
    [
        (A - 8, 8, False),
        (A - 8, 9, True),
        (A - 1, 1, False),
        (A - 1, 0, False),
        (A + 15, 1, True),
        (A + 16, 4, False),
        (A + 16, 0, False),
    ],
)
def test_excludes_overlap_boundaries(tmp_path: Path, start: int, length: int, overlaps: bool) -> None:
    """The block is [A, A+16): a range ending at A or starting at A+16 only touches it."""
    found = check(tmp_path, {"excludes": [{"address": start, "length": length}]})
    assert bool(found) is overlaps


def test_a_buffer_from_before_a_reboot_cannot_be_looked_for(tmp_path: Path) -> None:
    ctx = context(buffers={})
    expected = Mismatch(
        ("expect", "dump", "contains", 0),
        "buffer a does not exist on this boot (it was allocated before a reboot)",
        "a buffer allocated since the last reboot",
        "no address for it on this boot",
    )
    assert check(tmp_path, {"contains": ["a"]}, ctx) == [expected]
    (excluded,) = check(tmp_path, {"excludes": ["a"]}, ctx)
    assert excluded.path == ("expect", "dump", "excludes", 0) and excluded.message == expected.message
    (blob,) = check(tmp_path, {"secondary_data": [{"buffer": "a"}]}, ctx)
    assert blob.path == ("expect", "dump", "secondary_data", 0) and blob.found == expected.found


# -- secondary data and block counts ------------------------------------------------------------


def secondary(
    tmp_path: Path, item: dict, blobs: list | None = None, ctx: DumpContext | None = None
) -> list[Mismatch]:
    SecondaryDataExpect.model_validate(item)
    return check(
        tmp_path,
        {"secondary_data": [item]},
        ctx,
        secondary_data=blobs if blobs is not None else [(GUID, b"telemetry")],
    )


def test_secondary_data_found_by_guid_content_and_size(tmp_path: Path) -> None:
    assert secondary(tmp_path, {"hex": b"telemetry".hex(), "size": 9}) == []
    assert secondary(tmp_path, {"guid": str(GUID)}) == []
    other = uuid.UUID(int=5)
    assert secondary(tmp_path, {"guid": str(other), "absent": True}) == []
    ctx = context(buffers={"t": BufferView("t", A, b"telemetry")})
    assert secondary(tmp_path, {"buffer": "t"}, ctx=ctx) == []
    assert secondary(tmp_path, {"buffer": {"buffer": "t", "length": 4}}, ctx=ctx) == [
        Mismatch(
            ("expect", "dump", "secondary_data", 0),
            f"secondary data {GUID} differs "
            "(first difference at byte 4 of 4 expected / 9 found; bytes from 0)",
            "74 65 6C 65",
            "74 65 6C 65 6D 65 74 72 79",
        )
    ]


def test_secondary_data_failures(tmp_path: Path) -> None:
    path = ("expect", "dump", "secondary_data", 0)
    listed = f"{GUID} (9 bytes)"
    assert secondary(tmp_path, {"absent": True}) == [
        Mismatch(path, f"secondary data {GUID} is present", "no blob with that GUID", listed)
    ]
    assert secondary(tmp_path, {"size": 9}, blobs=[]) == [
        Mismatch(path, f"expected exactly one secondary-data blob {GUID}", "1 blob", "0; blobs: none")
    ]
    assert secondary(tmp_path, {"size": 8}) == [
        Mismatch((*path, "size"), f"secondary data {GUID} has another size", "8", "9")
    ]
    assert secondary(tmp_path, {"size": 9, "hex": b"telemetrx".hex()}) == [
        Mismatch(
            path,
            f"secondary data {GUID} differs "
            "(first difference at byte 8 of 9 expected / 9 found; bytes from 0)",
            "74 65 6C 65 6D 65 74 72 78",
            "74 65 6C 65 6D 65 74 72 79",
        )
    ]


@pytest.mark.parametrize(
    ("want", "ok", "text"),
    [
        (1, True, ""),
        (2, False, "2"),
        ({"min": 1}, True, ""),
        ({"min": 2}, False, "between 2 and any"),
        ({"min": 0, "max": 1}, True, ""),
        ({"min": 0, "max": 0}, False, "between 0 and 0"),
    ],
)
def test_block_count_exact_and_ranges(tmp_path: Path, want: object, ok: bool, text: str) -> None:
    found = check(tmp_path, {"block_count": want})
    if ok:
        assert found == []
    else:
        assert found == [
            Mismatch(
                ("expect", "dump", "block_count"), "the dump holds another number of data blocks", text, "1"
            )
        ]


# -- status, crash, dump count, value -----------------------------------------------------------

CRASH = Crash(0xD1, (0x28, 2, 1, 0xFFFFF80281201A2C), "F13: a write through NULL")


def test_status_defaults_to_success_and_names_both(tmp_path: Path) -> None:
    assert check_outcome(Expect(), OpResult(0)) == []
    assert check_outcome(Expect.model_validate("STATUS_ACCESS_DENIED"), OpResult(0xC0000022)) == []
    assert check_outcome(Expect(), OpResult(0xC0000035, detail="one report per minute")) == [
        Mismatch(
            ("expect", "status"),
            "the operation returned a different status (one report per minute)",
            "STATUS_SUCCESS (0x00000000)",
            "STATUS_OBJECT_NAME_COLLISION (0xC0000035)",
        )
    ]
    assert check_outcome(Expect(), OpResult(0, crash=CRASH)) == [
        Mismatch(("expect",), "the machine bugchecked unexpectedly", "no bugcheck", describe_crash(CRASH))
    ]


def test_a_status_without_detail_says_nothing_more() -> None:
    assert check_outcome(Expect(), OpResult(0xC000000D)) == [
        Mismatch(
            ("expect", "status"),
            "the operation returned a different status",
            "STATUS_SUCCESS (0x00000000)",
            "STATUS_INVALID_PARAMETER (0xC000000D)",
        )
    ]


def test_expected_crashes(tmp_path: Path) -> None:
    expect = Expect.model_validate({"bugcheck": [0xC4, 0xD1]})
    assert check_outcome(expect, OpResult(0, crash=CRASH)) == []
    assert check_outcome(Expect.model_validate({"bugcheck": [0xC4, 0xA]}), OpResult(0, crash=CRASH)) == [
        Mismatch(
            ("expect", "bugcheck"),
            "the machine bugchecked with another code",
            "0xC4 or 0xA",
            describe_crash(CRASH),
        )
    ]
    assert check_outcome(expect, OpResult(0xC000000D)) == [
        Mismatch(
            ("expect", "bugcheck"),
            "the machine was expected to bugcheck but kept running",
            "bugcheck 0xC4 or 0xD1",
            "no crash; status STATUS_INVALID_PARAMETER (0xC000000D)",
        )
    ]


def test_describe_crash_with_and_without_its_dump(tmp_path: Path) -> None:
    text = "bugcheck 0xD1 (0x28, 0x2, 0x1, 0xFFFFF80281201A2C): F13: a write through NULL"
    assert describe_crash(CRASH) == text
    with_dump = Crash(
        *CRASH[:3] if False else (CRASH.bugcheck_code, CRASH.parameters, CRASH.reason), tmp_path / "m.dmp"
    )
    assert describe_crash(with_dump) == text + " [crash dump: m.dmp]"


def test_dump_count_follows_the_status() -> None:
    assert check_dump_count(Expect(), 1) == []
    assert check_dump_count(Expect.model_validate("STATUS_INVALID_PARAMETER"), 0) == []
    assert check_dump_count(Expect.model_validate({"dump_written": False}), 0) == []
    assert check_dump_count(Expect(), 0) == [
        Mismatch(
            ("expect", "dump_written"), "the number of new live dumps in LiveKernelReports is wrong", "1", "0"
        )
    ]
    assert check_dump_count(Expect.model_validate({"dump_written": False}), 2) == [
        Mismatch(
            ("expect", "dump_written"), "the number of new live dumps in LiveKernelReports is wrong", "0", "2"
        )
    ]


@pytest.mark.parametrize(
    ("want", "value", "mismatch"),
    [
        (None, 5, None),
        (5, 5, None),
        (5, 6, Mismatch(("expect", "value"), "the query returned a different value", "5", "6")),
        ({"min": 5}, 5, None),
        ({"min": 5}, 4, Mismatch(("expect", "value"), "the value is out of range", "5..", "4")),
        ({"min": 1, "max": 5}, 5, None),
        ({"min": 1, "max": 5}, 6, Mismatch(("expect", "value"), "the value is out of range", "1..5", "6")),
        (5, None, Mismatch(("expect", "value"), "the target returned no value for the query")),
    ],
)
def test_query_values(want: object, value: int | None, mismatch: Mismatch | None) -> None:
    expect = Expect.model_validate({} if want is None else {"value": want})
    assert check_value(expect, value) == ([] if mismatch is None else [mismatch])


def crash_dump(tmp_path: Path, code: int = 0xD1, parameters: tuple = CRASH.parameters) -> list[CollectedDump]:
    path = dump_file(tmp_path, "crash.dmp", bugcheck_code=code, bugcheck_parameters=parameters, live=False)
    return [CollectedDump(path, "crash", "0" * 64)]


def test_a_crash_dump_must_exist_be_readable_and_agree(tmp_path: Path) -> None:
    expect = Expect.model_validate({"bugcheck": [0xD1]})
    assert check_crash_dump(expect, CRASH, []) == [
        Mismatch(
            ("expect", "bugcheck"),
            "the machine bugchecked but no crash dump was collected",
            "a Minidump file",
        )
    ]
    junk = tmp_path / "junk.dmp"
    junk.write_bytes(b"PAGE" * 100)
    (malformed,) = check_crash_dump(expect, CRASH, [CollectedDump(junk, "crash", "0" * 64)])
    assert malformed.path == ("expect", "bugcheck") and malformed.message.startswith(
        "the crash dump is malformed: "
    )
    assert check_crash_dump(expect, CRASH, crash_dump(tmp_path)) == []
    (disagrees,) = check_crash_dump(expect, CRASH, crash_dump(tmp_path / "x", parameters=(0x28, 2, 0, 0)))
    assert disagrees == Mismatch(
        ("expect", "bugcheck"),
        "the crash dump disagrees with the bugcheck the target reported",
        "0xD1 (0x28, 0x2, 0x1, 0xFFFFF80281201A2C)",
        "0xD1 (0x28, 0x2, 0x0, 0x0)",
    )


def test_bugcheck_parameters_of_the_crash_dump(tmp_path: Path) -> None:
    dumps = crash_dump(tmp_path)
    assert (
        check_crash_dump(
            Expect.model_validate({"bugcheck": [0xD1], "bugcheck_parameters": [0x28, "any", 1]}), CRASH, dumps
        )
        == []
    )
    found = check_crash_dump(
        Expect.model_validate({"bugcheck": [0xD1], "bugcheck_parameters": ["any", 3, 1, 0]}), CRASH, dumps
    )
    assert [(m.path, m.message, m.expected) for m in found] == [
        (("expect", "bugcheck_parameters", 1), "P2 of the crash dump differs (crash.dmp)", "0x3"),
        (("expect", "bugcheck_parameters", 3), "P4 of the crash dump differs (crash.dmp)", "0x0"),
    ]
    assert found[0].found.startswith("0x2\ncrash.dmp: kernel-mode dump")
    assert found[1].found.startswith("0xFFFFF80281201A2C\n")


def test_an_unexpected_crash_carries_its_dumps_summary(tmp_path: Path) -> None:
    (only,) = check_crash_dump(Expect(), CRASH, crash_dump(tmp_path))
    assert (only.path, only.message, only.expected) == (
        ("expect",),
        "crash dump of the unexpected bugcheck",
        "no bugcheck",
    )
    assert (
        only.found.startswith("crash.dmp: kernel-mode dump") and "DRIVER_IRQL_NOT_LESS_OR_EQUAL" in only.found
    )
    assert check_crash_dump(Expect(), CRASH, []) == [
        Mismatch(("expect",), "the machine bugchecked but no crash dump was collected", "a Minidump file")
    ]


def test_mismatch_renders_its_diff_only_when_it_has_one() -> None:
    assert Mismatch(("expect",), "plain").render() == "plain"
    assert Mismatch(("expect",), "m", "e", "").render() == "m\n    expected: e\n    found:    "
    assert Mismatch(("expect",), "m", "", "f").render() == "m\n    expected: \n    found:    f"


def test_covers_needs_every_segment() -> None:
    assert covers("expect.dump", ("expect", "dump", "contains", 0))
    assert not covers("expect.status", ("expect", "dump"))
    assert not covers("expect.dump.contains.1", ("expect", "dump", "contains", 0))


# -- evidence details the first mutation runs left unchecked --------------------------------------


def test_a_one_byte_range_at_a_blocks_end_is_contained(tmp_path: Path) -> None:
    assert check(tmp_path, {"contains": [{"address": A + 15, "length": 1}]}) == []
    (outside,) = check(tmp_path, {"contains": [{"address": A + 16, "length": 1}]})
    assert outside.message == f"the dump does not contain 0x{A + 16:X}[0:+1] (0x{A + 16:X}+0x1)"


def test_the_nearest_blocks_are_the_three_closest_by_distance(tmp_path: Path) -> None:
    target = A + 0x4000
    blocks = [
        (target - 0x2000, b"w" * 8),
        (target - 0x100, b"x" * 8),
        (target + 0x10, b"y" * 8),
        (target + 0x1000, b"z" * 8),
    ]
    (mismatch,) = check(tmp_path, {"contains": [{"address": target, "length": 8}]}, data_blocks=blocks)
    assert mismatch.found == (
        f"no block covers it; 4 blocks, nearest: 0x{target + 0x10:X}+0x8, 0x{target - 0x100:X}+0x8, "
        f"0x{target + 0x1000:X}+0x8"
    )


def test_blobs_of_other_guids_are_listed_with_their_sizes(tmp_path: Path) -> None:
    other = uuid.UUID(int=7)
    (mismatch,) = secondary(tmp_path, {"size": 1}, blobs=[(other, b"abc"), (uuid.UUID(int=8), b"de")])
    assert mismatch.found == f"0; blobs: {other} (3 bytes), {uuid.UUID(int=8)} (2 bytes)"


def test_a_blob_longer_than_expected_shows_where_the_expected_bytes_end(tmp_path: Path) -> None:
    (mismatch,) = secondary(tmp_path, {"hex": b"telemetr".hex()})
    assert mismatch.message.endswith("(first difference at byte 8 of 8 expected / 9 found; bytes from 0)")
    (beyond,) = secondary(
        tmp_path, {"hex": (b"0123456789abcdef").hex()}, blobs=[(GUID, b"0123456789abcdefXYZ")]
    )
    assert beyond.message.endswith("(first difference at byte 16 of 16 expected / 19 found; bytes from 16)")
    assert (beyond.expected, beyond.found) == ("(empty)", "58 59 5A")


def test_an_unset_code_or_parameter_reads_as_page_fill(tmp_path: Path) -> None:
    page = 0x45474150  # "PAGE": the header's fill where Windows wrote nothing
    (code,) = check(tmp_path, None, bugcheck_code=page)
    assert code.found == "unset (PAGE fill)"
    (parameter,) = check(tmp_path, {"parameters": [7]}, bugcheck_parameters=(0x4547415045474150, 0, 0, 0))
    assert parameter.found == "unset (PAGE fill)"

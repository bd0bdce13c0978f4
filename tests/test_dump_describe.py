"""summary() and describe(): the one description used by ``lkdh inspect`` and report attachments."""

from __future__ import annotations

import json
import struct
import uuid
from pathlib import Path

import pytest

from harness.dump import TriageDumpSpec, describe, open_dump, summary, write_triage_dump
from harness.dump.bugcheck_names import BUGCHECK_NAMES, bugcheck_name

GUID = uuid.UUID("0f81ec00-9e56-48e6-b899-eb3bbeede741")


@pytest.fixture
def sim_dump(tmp_path: Path) -> Path:
    spec = TriageDumpSpec(
        0xD1,
        (0x10, 2, 0, 0xFFFFF80281201234),
        data_blocks=[(0xFFFFC00000001000 + 0x100 * i, bytes(range(i, i + 24))) for i in range(30)],
        secondary_data=[(GUID, b"hello")],
        comment="sim",
    )
    return write_triage_dump(tmp_path / "sim.dmp", spec)


def test_summary_is_json_and_deterministic(sim_dump: Path) -> None:
    with open_dump(sim_dump) as dump:
        first = json.dumps(summary(dump))
    with open_dump(sim_dump) as dump:
        again = summary(dump)
    assert json.dumps(again) == first
    assert list(again) == sorted(again)
    assert {"file", "kind", "header", "triage", "data_blocks", "secondary_data", "drivers"} <= set(again)
    assert again["kind"] == "kernel" and again["file"] == "sim.dmp"
    header = again["header"]
    assert header["bugcheck_code"] == 0xD1 and header["bugcheck_name"] == "DRIVER_IRQL_NOT_LESS_OR_EQUAL"
    assert header["bugcheck_parameters"] == [0x10, 2, 0, 0xFFFFF80281201234]
    assert header["secondary_data_state"] is None and header["is_live_dump"] is True
    assert again["triage"]["data_blocks_count"] == 30
    assert again["data_blocks"][0] == {
        "address": 0xFFFFC00000001000,
        "offset": again["data_blocks"][0]["offset"],
        "size": 24,
    }
    assert again["secondary_data"] == [
        {"guid": str(GUID), "offset": again["secondary_data"][0]["offset"], "size": 5}
    ]
    assert again["drivers"][0]["name"].endswith("ntoskrnl.exe")


def test_describe_text(sim_dump: Path) -> None:
    with open_dump(sim_dump) as dump:
        text = describe(dump, max_rows=5)
    assert "0xd1 DRIVER_IRQL_NOT_LESS_OR_EQUAL" in text
    assert "dump type              4 (triage)" in text
    assert "live dump              yes" in text
    assert "secondary_data_state   unset (PAGE)" in text
    assert "Data blocks: 30" in text and "... 25 more" in text
    assert "00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f" in text  # first bytes of block 0
    assert f"{{{GUID}}}  size      0x5" in text
    assert "comment                'sim'" in text
    assert "DataBlocksCount        0x1e" in text


@pytest.mark.needs_shared
def test_describe_real_fixture(fixture_dumps: Path) -> None:
    with open_dump(fixture_dumps / "triage_x64.dmp") as dump:
        text = describe(dump)
        data = summary(dump)
    assert "0x1000007e SYSTEM_THREAD_EXCEPTION_NOT_HANDLED_M" in text
    assert "Secondary data: 20 blobs, chain ends at 0x160ab4 (end of file)" in text
    assert "Drivers: 151" in text and "\\SystemRoot\\system32\\ntoskrnl.exe" in text
    assert len(data["data_blocks"]) == 0x727 and len(data["drivers"]) == 151
    json.dumps(data)


@pytest.mark.needs_shared
def test_describe_user_mode(fixture_dumps: Path) -> None:
    with open_dump(fixture_dumps / "calc.dmp") as dump:
        text = describe(dump)
        data = summary(dump)
    assert "MDMP" in text and "AMD64" in text and "calc.exe" in text and "0x80000003" in text
    assert data["kind"] == "user" and data["header"] is None and data["triage"] is None
    assert data["minidump"]["architecture"] == "AMD64" and len(data["minidump"]["modules"]) == 28
    json.dumps(data)


def test_bugcheck_names_cover_the_brief() -> None:
    for code in (0x0A, 0xD1, 0xC4, 0x10D, 0x7E, 0x1000007E, 0x3B, 0x161, 0x1C8, 0xE2):
        assert code in BUGCHECK_NAMES
    assert bugcheck_name(0x161) == "LIVE_SYSTEM_DUMP"
    assert bugcheck_name(0x12345) is None and bugcheck_name(None) is None


def test_bugcheck_names_are_the_full_reference() -> None:
    """Issue 9 item 7: every code of Microsoft's Bug Check Code Reference, not ten: the codes this
    harness meets (0x1 APC_INDEX_MISMATCH from F38, 0x10D from F42) and the reference's far ends."""
    assert len(BUGCHECK_NAMES) >= 379
    assert bugcheck_name(0x1) == "APC_INDEX_MISMATCH" and bugcheck_name(0x50) == "PAGE_FAULT_IN_NONPAGED_AREA"
    assert bugcheck_name(0xDF) == "IMPERSONATING_WORKER_THREAD"
    assert bugcheck_name(0xDEADDEAD) == "MANUALLY_INITIATED_CRASH1"


TOP_KEYS = [
    "blob_chain_end",
    "data_blocks",
    "debugger",
    "drivers",
    "file",
    "file_size",
    "header",
    "kind",
    "memory",
    "secondary_data",
    "triage",
]


@pytest.mark.needs_shared
def test_user_mode_summary_has_every_kernel_key_empty(fixture_dumps: Path) -> None:
    """One schema for both kinds: a JSON consumer reads ``data_blocks`` of a user-mode dump as an
    empty list and ``header`` / ``memory`` as null, never a missing key or an empty string."""
    path = fixture_dumps / "calc.dmp"
    with open_dump(path) as dump:
        data = summary(dump)
    assert list(data) == sorted([*TOP_KEYS, "minidump"])
    assert {k: v for k, v in data.items() if k != "minidump"} == {
        "blob_chain_end": None,
        "data_blocks": [],
        "debugger": None,
        "drivers": [],
        "file": "calc.dmp",
        "file_size": path.stat().st_size,
        "header": None,
        "kind": "user",
        "memory": None,
        "secondary_data": [],
        "triage": None,
    }
    assert list(data["minidump"]) == ["architecture", "exception_code", "modules", "threads"]
    assert (data["minidump"]["threads"], data["minidump"]["exception_code"]) == (5, 0x80000003)


@pytest.mark.needs_shared
def test_the_minidump_package_object_names_its_file(fixture_dumps: Path) -> None:
    """``dump.minidump`` is handed to callers who need more than the summary: it says which file."""
    path = fixture_dumps / "calc.dmp"
    with open_dump(path) as dump:
        assert dump.minidump.filename == str(path)


def test_kernel_summary_keys_and_header_names(sim_dump: Path) -> None:
    with open_dump(sim_dump) as dump:
        data = summary(dump)
        debugger_present = dump.debugger is not None
    assert list(data) == TOP_KEYS
    assert data["file_size"] == sim_dump.stat().st_size
    assert data["blob_chain_end"] == sim_dump.stat().st_size  # the chain runs to end of file
    assert data["memory"] is None  # a triage dump holds no pages
    assert (data["debugger"] is not None) == debugger_present
    header = data["header"]
    assert (header["dump_type_name"], header["machine"], header["is_live_dump"]) == ("triage", "x64", True)
    assert list(header) == sorted(header)
    assert data["drivers"] and all(list(d) == ["base", "name", "size"] for d in data["drivers"])
    assert all(isinstance(d["base"], int) and d["size"] > 0 for d in data["drivers"])


@pytest.mark.needs_shared
def test_describe_user_mode_rows_exactly(fixture_dumps: Path) -> None:
    with open_dump(fixture_dumps / "calc.dmp") as dump:
        lines = describe(dump, max_rows=2).splitlines()
        all_rows = describe(dump, max_rows=28).splitlines()
        one_left = describe(dump, max_rows=27).splitlines()
    assert lines == [
        "calc.dmp: user-mode dump, 0x8f74 bytes (MDMP)",
        "  architecture           AMD64",
        "  threads                5",
        "  exception code         0x80000003",
        "Modules: 28",
        "  C:\\Windows\\System32\\calc.exe",
        "  C:\\Windows\\System32\\ntdll.dll",
        "  ... 26 more",
    ]
    assert len(all_rows) == 5 + 28 and not all_rows[-1].startswith("  ...")  # exactly max_rows: no tail
    assert one_left[-1] == "  ... 1 more"


def test_describe_a_minidump_without_exception_or_modules(tmp_path: Path) -> None:
    path = tmp_path / "bare.dmp"
    path.write_bytes(struct.pack("<4sHHIIIIQ", b"MDMP", 0xA793, 0, 0, 32, 0, 0, 0))  # no streams
    with open_dump(path) as dump:
        assert describe(dump).splitlines()[1:] == [
            "  architecture           None",
            "  threads                0",
            "  exception code         none",
            "Modules: 0",
        ]

"""driver/include/lkdh_control.h and harness/target/windows/protocol.py describe the same bytes.

A real compiler is the judge: C source generated from the Python layouts asserts every struct size,
every member's offset and size, every IOCTL code and constant with `_Static_assert`, and
x86_64-w64-mingw32-gcc must compile it cleanly (-Wall -Werror -std=c11). A deliberately wrong
expectation must fail to compile, so the check cannot pass vacuously. With a host C compiler, a
generated program also fills each struct member by member and prints its bytes, which must equal
what the Python side packs (byte order, GUID byte order, member meaning). The pure-Python half of
the protocol (reply checks, version mismatch, the 37-byte IOCTL input) is tested at the end.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from required_tools import require_tool

from harness.target import lkd_ioctl
from harness.target.irql import Irql
from harness.target.sim.livekerneldump import (
    TEST_DRIVER_DEVICE_INTERFACE_GUID,
    TEST_DRIVER_SECONDARY_DATA_GUID,
)
from harness.target.windows import lkdctl as L
from harness.target.windows import module_config as MC
from harness.target.windows import protocol as P

REPO = Path(__file__).resolve().parents[1]
INCLUDE = REPO / "driver" / "include"
LKDCTL_SOURCE = REPO / "driver" / "lkdctl" / "lkdctl.c"
MINGW = "x86_64-w64-mingw32-gcc"

POOL_MACROS = {
    "NonPagedPoolNx": "LKDH_POOL_NON_PAGED_NX",
    "PagedPool": "LKDH_POOL_PAGED",
    "NonPagedPool": "LKDH_POOL_NON_PAGED_EXECUTE",
}


@pytest.fixture(scope="module")
def mingw() -> str:
    return require_tool(MINGW, install="Debian: apt-get install gcc-mingw-w64-x86-64")


def expected_constants() -> dict[str, int]:
    """Every numeric macro of the header the Python side also states, with the Python value."""
    constants = {
        "LKDH_PROTOCOL_VERSION": P.PROTOCOL_VERSION,
        "LKDH_REQUEST_MAGIC": P.REQUEST_MAGIC,
        "LKDH_REPLY_MAGIC": P.REPLY_MAGIC,
        "LKDH_FILE_ANY_ACCESS": P.FILE_ANY_ACCESS,
        "LKDH_FILE_WRITE_ACCESS": P.FILE_WRITE_ACCESS,
        "LKDH_IOCTL_LIVEKERNELDUMP_CREATE": lkd_ioctl.IOCTL_LIVEKERNELDUMP_CREATE,
        "LKDH_BUFFER_SLOT": P.BufferKind.SLOT,
        "LKDH_BUFFER_RAW": P.BufferKind.RAW,
        "LKDH_MAX_SLOTS": P.MAX_SLOTS,
        "LKDH_MAX_ALLOCATION_SIZE": P.MAX_ALLOCATION_SIZE,
        "LKDH_MAX_PATTERN_LENGTH": P.MAX_PATTERN_LENGTH,
        "LKDH_MAX_CLIENT_STRUCTURES": P.MAX_CLIENT_STRUCTURES,
        "LKDH_INFO_REPLY_MAX_SIZE": P.INFO_REPLY_MAX_SIZE,
        "LKDH_INFO_FLAG_VERIFIER": P.INFO_FLAG_VERIFIER,
        "LKDH_INFO_FLAG_LIVE_DUMP_SUPPORTED": P.INFO_FLAG_LIVE_DUMP_SUPPORTED,
        "LKDH_INFO_FLAG_MODULE_PRESENT": P.INFO_FLAG_MODULE_PRESENT,
        "LKDH_INFO_REPLY_V1_SIZE": P.INFO_REPLY_V1_SIZE,
        "LKDH_REPORT_TYPE_MAX_CHARS": P.REPORT_TYPE_MAX_CHARS,
        "LKDH_GUID_TEXT_CHARS": P.GUID_TEXT_CHARS,
        "LKDH_CONFIG_REPORT_TYPE": P.CONFIG_REPORT_TYPE,
        "LKDH_CONFIG_GUID_DEVICE_INTERFACE": P.CONFIG_GUID_DEVICE_INTERFACE,
        "LKDH_CONFIG_GUID_SECONDARY_DATA": P.CONFIG_GUID_SECONDARY_DATA,
        "LKDH_CONFIG_INCLUDE_DMF_DATA": P.CONFIG_INCLUDE_DMF_DATA,
    }
    for operation in P.Operation:
        constants[f"LKDH_OP_{operation.name}"] = int(operation)
        constants[f"IOCTL_LKDH_{operation.name}"] = operation.ioctl
    for irql in Irql:
        constants[f"LKDH_IRQL_{irql.name.removesuffix('_LEVEL')}"] = int(irql)
    for pool, macro in POOL_MACROS.items():
        constants[macro] = P.POOL_TYPES[pool]
    for kind, code in L.LKDCTL_EXIT_CODES.items():
        constants[f"LKDCTL_EXIT_{kind.upper()}"] = code
    return {name: int(value) for name, value in constants.items()}


def static_asserts(layouts=P.LAYOUTS, constants: dict[str, int] | None = None) -> str:
    """C11 source asserting the Python layouts and constants against lkdh_control.h."""
    lines = ["#include <stddef.h>", '#include "lkdh_control.h"', ""]
    for layout in layouts:
        name = layout.c_name
        lines.append(f'_Static_assert(sizeof({name}) == {layout.size}, "{name} size {layout.size}");')
        for member, offset, size in layout.members():
            where = f"{name}.{member}"
            lines.append(
                f'_Static_assert(offsetof({name}, {member}) == {offset}, "{where} offset {offset}");'
            )
            lines.append(f'_Static_assert(sizeof((({name}*)0)->{member}) == {size}, "{where} size {size}");')
    for macro, value in (expected_constants() if constants is None else constants).items():
        lines.append(f'_Static_assert({macro} == {value}u, "{macro} == {value:#x}");')
    if (
        constants is None
    ):  # the driver's UNICODE value names: as long as the Python names (mingw: 2-byte WCHAR)
        for macro, text in registry_names().items():
            wide = macro.removesuffix("_TEXT")
            size = 2 * (len(text) + 1)
            lines.append(f'_Static_assert(sizeof({wide}) == {size}, "{wide} is L\\"{text}\\"");')
    return "\n".join(lines) + "\n"


def registry_names() -> dict[str, str]:
    """Every LKDH_REG_*_TEXT macro with the value name the harness writes (module_config.py)."""
    names = {parameter.name: parameter.name for parameter in MC.PARAMETERS}
    return {
        "LKDH_REG_REPORT_TYPE_TEXT": names["ReportType"],
        "LKDH_REG_GUID_DEVICE_INTERFACE_TEXT": names["GuidDeviceInterface"],
        "LKDH_REG_GUID_SECONDARY_DATA_TEXT": names["GuidSecondaryData"],
        "LKDH_REG_INCLUDE_DMF_DATA_TEXT": names["IncludeDmfDataInBugCheckTriageDump"],
    }


def compile_c(compiler: str, source: str, folder: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    path = folder / "check.c"
    path.write_text(source)
    command = [compiler, "-std=c11", "-Wall", "-Wextra", "-Werror", f"-I{INCLUDE}", *extra, str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_python_layouts_match_the_c_header(mingw: str, tmp_path: Path) -> None:
    source = static_asserts()
    assert source.count("_Static_assert") > 200  # every member of every layout, not a handful
    result = compile_c(mingw, source, tmp_path, "-c", "-o", str(tmp_path / "check.o"))
    assert result.returncode == 0, result.stderr


def test_a_wrong_offset_fails_to_compile(mingw: str, tmp_path: Path) -> None:
    """Two same-sized fields swapped in Python keep every size right; only the offsets catch it."""
    fields = dict(P.ALLOC_REQUEST.fields)
    swapped = P.Layout(
        "LKDH_ALLOC_REQUEST",
        [
            ("Header", fields["Header"]),
            ("SlotId", "I"),
            ("Size", "I"),
            ("PoolType", "I"),
            ("PatternLength", "I"),
        ],
    )
    result = compile_c(mingw, static_asserts([swapped], {}), tmp_path, "-c", "-o", str(tmp_path / "x.o"))
    assert result.returncode != 0
    assert "LKDH_ALLOC_REQUEST.Size offset 16" in result.stderr


def test_a_wrong_ioctl_code_fails_to_compile(mingw: str, tmp_path: Path) -> None:
    constants = {"IOCTL_LKDH_ALLOC": P.Operation.ALLOC.ioctl ^ 0x4000}  # FILE_ANY_ACCESS instead of WRITE
    result = compile_c(mingw, static_asserts((), constants), tmp_path, "-c", "-o", str(tmp_path / "x.o"))
    assert result.returncode != 0
    assert "IOCTL_LKDH_ALLOC" in result.stderr


def test_the_header_compiles_in_c11_and_pre_c11_modes(mingw: str, tmp_path: Path) -> None:
    """C99 takes the header's negative-array fallback (MSVC C before /std:c11): it must hold too."""
    (tmp_path / "h.c").write_text('#include "lkdh_control.h"\nint lkdh_unused;\n')
    for language in (["-x", "c", "-std=c11"], ["-x", "c", "-std=c99"]):
        command = [mingw, *language, "-Wall", "-Wextra", "-Wpedantic", "-Werror", f"-I{INCLUDE}", "-c"]
        command += [str(tmp_path / "h.c"), "-o", str(tmp_path / "h.o")]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, (language, result.stderr)


def test_lkdctl_builds_warning_free(mingw: str, tmp_path: Path) -> None:
    exe = tmp_path / "lkdctl.exe"
    strict = ["-Wall", "-Wextra", "-Wpedantic", "-Wconversion", "-Wshadow", "-Werror"]  # near MSVC /W4 /WX
    command = [mingw, "-std=c11", *strict, "-municode", f"-I{INCLUDE}"]
    devnode = LKDCTL_SOURCE.with_name("devnode.c")
    command += ["-o", str(exe), str(LKDCTL_SOURCE), str(devnode), "-lsetupapi", "-lnewdev"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    image = exe.read_bytes()
    pe_offset = struct.unpack_from("<I", image, 0x3C)[0]
    assert image[:2] == b"MZ" and image[pe_offset : pe_offset + 4] == b"PE\0\0"
    assert struct.unpack_from("<H", image, pe_offset + 4)[0] == 0x8664  # x64, as the F24 layout assumes


def test_the_test_driver_serves_every_operation() -> None:
    """The driver cannot be built here; at least its IOCTL table and dispatch name every operation."""
    control = (REPO / "driver" / "LkdhTestDriver" / "Control.c").read_text()
    for operation in P.Operation:
        assert f"{{ (LONG)IOCTL_LKDH_{operation.name}, " in control, operation.name
        assert f"LKDH_OP_{operation.name}" in control, operation.name


# --- round trip through a host C compiler ----------------------------------------------------


def member_values(layout: P.Layout) -> tuple[dict, list[str]]:
    """Distinct bytes for every leaf member: the Python values and the C statements that set them."""
    statements: list[str] = []

    def fill(current: P.Layout, prefix: str, base: int) -> dict:
        values: dict = {}
        offset = base
        for name, kind in current.fields:
            if isinstance(kind, P.Layout):
                values[name] = fill(kind, f"{prefix}{name}.", offset)
                offset += kind.size
                continue
            size = struct.calcsize("<" + kind)
            raw = bytes((offset + index) * 37 % 251 + 1 for index in range(size))
            if kind.endswith("s"):
                values[name] = raw
                literal = "".join(f"\\x{byte:02x}" for byte in raw)
                statements.append(f'memcpy(value.{prefix}{name}, "{literal}", {size});')
            else:
                values[name] = int.from_bytes(raw, "little")
                statements.append(f"value.{prefix}{name} = 0x{values[name]:x}u;")
            offset += size
        return values

    return fill(layout, "", 0), statements


GUID_MACROS = {
    "LKDH_CONTROL_INTERFACE_GUID_INIT": P.CONTROL_INTERFACE_GUID,
    "LKDH_MODULE_INTERFACE_GUID_INIT": P.MODULE_INTERFACE_GUID,
    "LKDH_SECONDARY_DATA_GUID_INIT": P.SECONDARY_DATA_GUID,
}


def test_guids_are_the_ones_the_simulated_driver_uses() -> None:
    assert P.MODULE_INTERFACE_GUID == TEST_DRIVER_DEVICE_INTERFACE_GUID
    assert P.SECONDARY_DATA_GUID == TEST_DRIVER_SECONDARY_DATA_GUID


def round_trip_program() -> tuple[str, list[bytes]]:
    """A C program printing each filled struct and each GUID as hex lines; the expected lines."""
    lines = [
        "#include <stdio.h>",
        "#include <string.h>",
        '#include "lkdh_control.h"',
        "typedef struct { uint32_t Data1; uint16_t Data2; uint16_t Data3; uint8_t Data4[8]; } GUID_SHAPE;",
        "static void dump(const void *p, size_t n) {",
        '  for (size_t i = 0; i < n; i++) printf("%02x", ((const unsigned char *)p)[i]);',
        '  printf("\\n");',
        "}",
        "int main(void) {",
    ]
    expected: list[bytes] = []
    for layout in P.LAYOUTS:
        values, statements = member_values(layout)
        lines += ["  {", f"    {layout.c_name} value;", "    memset(&value, 0, sizeof value);"]
        lines += [f"    {statement}" for statement in statements]
        lines += ["    dump(&value, sizeof value);", "  }"]
        expected.append(layout.pack(values))
    for macro, guid in GUID_MACROS.items():
        lines += ["  {", f"    GUID_SHAPE guid = {macro};", "    dump(&guid, sizeof guid);", "  }"]
        expected.append(guid.bytes_le)
    texts = [
        "LKDH_REG_REPORT_TYPE_TEXT",
        "LKDH_REG_GUID_DEVICE_INTERFACE_TEXT",
        "LKDH_REG_GUID_SECONDARY_DATA_TEXT",
        "LKDH_REG_INCLUDE_DMF_DATA_TEXT",
        "LKDH_DEFAULT_REPORT_TYPE_TEXT",
    ]
    lines += [f'  printf("%s\\n", {text});' for text in texts]
    lines += [
        '  printf("%s\\n%s\\n", LKDH_CONTROL_INTERFACE_GUID_TEXT, LKDH_MODULE_INTERFACE_GUID_TEXT);',
        "  return 0;",
        "}",
    ]
    return "\n".join(lines) + "\n", expected


def test_c_and_python_produce_the_same_bytes(tmp_path: Path) -> None:
    compiler = shutil.which("cc") or require_tool("gcc", install="Debian: apt-get install gcc")
    source, expected = round_trip_program()
    build = compile_c(compiler, source, tmp_path, "-o", str(tmp_path / "round_trip"))
    assert build.returncode == 0, build.stderr
    run = subprocess.run(
        [str(tmp_path / "round_trip")], capture_output=True, text=True, timeout=60, check=True
    )
    *byte_lines, report_type, interface, secondary, include, default, control_text, module_text = (
        run.stdout.splitlines()
    )
    assert [bytes.fromhex(line) for line in byte_lines] == expected
    # The registry value names the harness writes are the header's, character for character.
    assert (report_type, interface, secondary, include) == MC.PARAMETER_NAMES
    assert list(registry_names().values()) == list(MC.PARAMETER_NAMES)
    assert default == P.DEFAULT_REPORT_TYPE
    assert (control_text, module_text) == (
        str(P.CONTROL_INTERFACE_GUID),
        str(TEST_DRIVER_DEVICE_INTERFACE_GUID),
    )


# --- the Python side of the protocol ----------------------------------------------------------


def driver_reply(operation: P.Operation, dmf_status: int, value: int, **header: int) -> bytes:
    """A reply as the driver writes it (LKDH_REPLY), with header fields overridable."""
    fields = {
        "Magic": P.REPLY_MAGIC,
        "Version": P.PROTOCOL_VERSION,
        "Operation": int(operation),
        "TotalSize": P.REPLY.size,
    }
    fields.update(header)
    return P.REPLY.pack({"Header": fields, "DmfStatus": dmf_status, "Value": value})


def test_requests_carry_header_operation_and_exact_size() -> None:
    slot = P.BufferSlice.in_slot(7, 0x40, offset=8)
    requests = {
        P.pack_alloc(3, 0x100, b"\xaa\x55", "PagedPool"): P.ALLOC_REQUEST.size + 2,
        P.pack_free(3): P.FREE_REQUEST.size,
        P.pack_store(slot, Irql.DISPATCH_LEVEL): P.BUFFER_REQUEST.size,
        P.pack_remove(slot): P.BUFFER_REQUEST.size,
        P.pack_create(0x1A2, client_structures=[slot, slot]): P.CREATE_REQUEST.size + 2 * P.BUFFER_SLICE.size,
        P.pack_store_collection(0xFFFF_8000_0000_1234): P.STORE_COLLECTION_REQUEST.size,
        P.pack_query_dmf_data_size(): P.HEADER.size,
        P.pack_info(): P.HEADER.size,
    }
    for request, size in requests.items():
        header = P.HEADER.unpack(request.data)
        assert header == {
            "Magic": P.REQUEST_MAGIC,
            "Version": P.PROTOCOL_VERSION,
            "Operation": int(request.operation),
            "TotalSize": size,
        }
        assert len(request.data) == size
        assert request.ioctl == request.operation.ioctl
    assert P.pack_info().reply_size == P.INFO_REPLY_MAX_SIZE  # room for a newer driver's INFO


def test_create_request_fields_land_where_the_driver_reads_them() -> None:
    secondary = P.BufferSlice.at_address(0, 10)  # NULL buffer with a size: F03's INVALID_PARAMETER case
    request = P.pack_create(0x1A2, 0x55, 2, [P.BufferSlice.in_slot(1, 16, 4)], secondary, Irql.APC_LEVEL)
    values = P.CREATE_REQUEST.unpack(request.data)
    assert values["ExcludeDmfData"] == 2  # the raw byte, not a bool (F17)
    assert (values["BugCheckCode"], values["BugCheckParameter"], values["Irql"]) == (0x1A2, 0x55, 1)
    assert values["HasSecondaryData"] == 1 and values["SecondaryData"]["Kind"] == P.BufferKind.RAW
    assert values["SecondaryData"]["Length"] == 10 and values["SecondaryData"]["Address"] == 0
    entry = P.BUFFER_SLICE.unpack(request.data, P.CREATE_REQUEST.size)
    assert (entry["Kind"], entry["SlotId"], entry["Offset"], entry["Length"]) == (0, 1, 4, 16)


def test_pack_rejects_values_the_wire_cannot_carry() -> None:
    with pytest.raises(ValueError, match="slot id 1024"):
        P.pack_free(1024)
    with pytest.raises(ValueError, match="unknown pool"):
        P.pack_alloc(0, 16, b"", "PagedPoolCacheAligned")
    with pytest.raises(ValueError, match=r"LKDH_CREATE_REQUEST\.ExcludeDmfData = 256"):
        P.pack_create(1, exclude_dmf_data=256)
    with pytest.raises(ValueError, match=r"LKDH_BUFFER_SLICE\.Length"):
        P.pack_store(P.BufferSlice.in_slot(0, 1 << 32))
    with pytest.raises(ValueError, match=r"LKDH_INFO_REPLY\.DmfCommit: 41 bytes do not fit 40s"):
        P.INFO_REPLY.pack({**P.INFO_REPLY.unpack(bytes(P.INFO_REPLY.size)), "DmfCommit": b"x" * 41})


def test_reply_is_checked_before_it_is_believed() -> None:
    op = P.Operation.STORE
    assert P.unpack_reply(op, driver_reply(op, 0, 0xFFFF_9A00_0000_0010)) == P.ControlReply(
        0, 0xFFFF_9A00_0000_0010
    )
    echoed_request = P.pack_store_collection(5).data  # METHOD_BUFFERED: same size, request magic
    with pytest.raises(P.ProtocolError, match="not LKDR"):
        P.unpack_reply(P.Operation.STORE_COLLECTION, echoed_request)
    with pytest.raises(P.ProtocolMismatch, match="protocol version 3, the harness 2"):
        P.unpack_reply(op, driver_reply(op, 0, 0, Version=3))
    with pytest.raises(P.ProtocolError, match="operation 0x903"):
        P.unpack_reply(op, driver_reply(op, 0, 0, Operation=int(P.Operation.REMOVE)))
    with pytest.raises(P.ProtocolError, match="23 bytes"):
        P.unpack_reply(op, driver_reply(op, 0, 0)[:-1])


def test_completion_status_is_not_the_dmf_status() -> None:
    op = P.Operation.CREATE
    ok = L.LkdctlReply(0, P.REPLY.size, driver_reply(op, 0xC0000035, 0))
    assert P.control_reply(op, ok).dmf_status == 0xC0000035  # F06 collision: DMF's answer, IOCTL fine
    with pytest.raises(P.ProtocolMismatch):
        P.control_reply(op, L.LkdctlReply(P.STATUS_REVISION_MISMATCH, 0, b""))
    with pytest.raises(P.ControlIoctlFailed, match="0xC0000225 \\(the slot holds no allocation\\)"):
        P.control_reply(op, L.LkdctlReply(0xC0000225, 0, b""))


def info_bytes(version: int, appended: bytes = b"") -> bytes:
    report_type = "LkdhTestDri".encode("utf-16-le").ljust(32, b"\0")
    layout = P.INFO_REPLY_V1 if version < 2 else P.INFO_REPLY
    config = {
        "ConfigFromRegistry": P.CONFIG_REPORT_TYPE | P.CONFIG_INCLUDE_DMF_DATA,
        "ConfigRejected": P.CONFIG_GUID_SECONDARY_DATA,
        "ConfigKeyStatus": 0,
        "IncludeDmfDataInBugCheckTriageDump": 1,
        "ConfigReserved": b"",
        "RequestedReportType": "LkdhTestDriver".encode("utf-16-le"),
    }
    return (
        layout.pack(
            {
                **(config if version >= 2 else {}),
                "Header": {
                    "Magic": P.REPLY_MAGIC,
                    "Version": version,
                    "Operation": int(P.Operation.INFO),
                    "TotalSize": layout.size + len(appended),
                },
                "DmfStatus": 0,
                "DmfCollection": 0xFFFF_E001_2345_6780,
                "LiveKernelDumpModule": 0xFFFF_E001_2345_0000,
                "GuidSecondaryData": TEST_DRIVER_SECONDARY_DATA_GUID.bytes_le,
                "GuidDeviceInterface": TEST_DRIVER_DEVICE_INTERFACE_GUID.bytes_le,
                "ReportType": report_type,
                "DriverVersion": struct.pack("<4H", 1, 2, 3, 4),
                "Flags": P.INFO_FLAG_VERIFIER | P.INFO_FLAG_MODULE_PRESENT,
                "Reserved": 0,
                "DmfCommit": b"bfac434fd3497259095a1f8d70ed734493228091",
            }
        )
        + appended
    )


def test_info_reply_is_readable_from_a_newer_driver() -> None:
    """INFO only grows at its end, so the harness can read and name a newer driver's version."""
    info = P.info_reply(L.LkdctlReply(0, P.INFO_REPLY.size + 8, info_bytes(3, b"\x01" * 8)))
    assert info.protocol_version == 3
    assert info.report_type == "LkdhTestDri"
    assert info.secondary_data_guid == TEST_DRIVER_SECONDARY_DATA_GUID
    assert info.device_interface_guid == TEST_DRIVER_DEVICE_INTERFACE_GUID
    assert (info.verifier, info.module_present, info.live_dump_supported) == (True, True, False)
    assert info.driver_version == (1, 2, 3, 4) and info.dmf_commit.startswith("bfac434")
    assert info.dmf_collection == 0xFFFF_E001_2345_6780
    assert info.config == P.ConfigReport(
        from_registry=P.CONFIG_REPORT_TYPE | P.CONFIG_INCLUDE_DMF_DATA,
        rejected=P.CONFIG_GUID_SECONDARY_DATA,
        key_status=0,
        include_dmf_data_in_bugcheck_dump=True,
        requested_report_type="LkdhTestDriver",
    )


def test_a_protocol_1_driver_s_shorter_info_is_read_without_its_configuration() -> None:
    """A driver built before protocol 2 answers 152 bytes; the harness still reads its version."""
    data = info_bytes(1)
    assert len(data) == P.INFO_REPLY_V1_SIZE == P.INFO_REPLY.offset("ConfigFromRegistry")
    info = P.info_reply(L.LkdctlReply(0, len(data), data))
    assert (info.protocol_version, info.config, info.report_type) == (1, None, "LkdhTestDri")
    with pytest.raises(P.ProtocolError, match="reply claims 200 bytes, carries 152"):
        P.unpack_info_reply(info_bytes(2)[: P.INFO_REPLY_V1_SIZE])  # a protocol-2 reply cut short


def test_livekerneldump_create_input_sizes_for_f25() -> None:
    fields = (0x1A2, 0xDEAD, 2, 3, 0x1000, 4, 0x2000)
    packed = P.pack_livekerneldump_create(*fields)
    assert packed == lkd_ioctl.LiveKernelDumpCreateInput(*fields).pack()
    assert len(packed) == 37 and packed[12] == 2  # ExcludeDmfData @12 keeps the raw byte (F17, F24)
    assert P.pack_livekerneldump_create(*fields, length=36) == packed[:36]  # BUFFER_TOO_SMALL case
    assert P.pack_livekerneldump_create(*fields, length=40, fill=0xCC) == packed + b"\xcc" * 3
    assert P.pack_livekerneldump_create(1, length=0) == b""


def test_user_memory_layout_points_at_the_array_and_the_secondary_data() -> None:
    call = L.livekerneldump_create_in_user_memory(0x1A2, 7, 0, [(0xFFFF_9A00_0000_0010, 16)], b"SECONDARY")
    assert call.user_data == struct.pack("<QI", 0xFFFF_9A00_0000_0010, 16) + b"SECONDARY"
    assert call.pointers == (L.UserPointer(17, 0), L.UserPointer(29, 12))  # F24 offsets of the pointers
    fields = lkd_ioctl.LiveKernelDumpCreateInput.unpack(call.input)
    assert (fields.number_of_client_structures, fields.size_of_secondary_data) == (1, 9)
    kernel = L.livekerneldump_create_in_user_memory(1, secondary_data=(0xFFFF_9A00_0000_0100, 32))
    assert kernel.pointers == () and kernel.user_data == b""  # a kernel buffer is passed as is (F27)
    assert (
        lkd_ioctl.LiveKernelDumpCreateInput.unpack(kernel.input).secondary_data_buffer
        == 0xFFFF_9A00_0000_0100
    )

"""The control protocol between the harness and LkdhTestDriver: request and reply layouts.

`driver/include/lkdh_control.h` is the source of truth; every layout here is stated once, as a
`Layout` of named fields whose offsets tests/test_driver_header.py compiles against the header with
mingw-w64. Requests travel as bytes to `lkdctl.exe` on the machine (on stdin, never on the command
line), lkdctl sends one IOCTL and prints one JSON line, and the reply bytes come back in it; lkdctl's
command line and output live in lkdctl.py.

Two statuses per operation (see the header): the IOCTL's completion status (did the driver carry
the request out?) and `DmfStatus` (what the DMF method returned, which scenarios check). A
completion status of STATUS_REVISION_MISMATCH means driver and harness speak different protocol
versions; `InfoReply.protocol_version` names the driver's, readable from any driver build, so a
target sends INFO first (`pack_info`, `info_reply`) and compares versions before anything else.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from harness.target.base import TargetError
from harness.target.irql import Irql
from harness.target.lkd_ioctl import (
    CLIENT_STRUCTURE_FORMAT,
    FILE_DEVICE_UNKNOWN,
    INPUT_FORMAT,
    METHOD_BUFFERED,
    ctl_code,
)

if TYPE_CHECKING:  # lkdctl.py imports this module; the reply type is only an annotation here
    from harness.target.windows.lkdctl import LkdctlReply

PROTOCOL_VERSION = 2
"""2: INFO also reports the module configuration the driver read from its registry parameters."""
REQUEST_MAGIC = int.from_bytes(b"LKDQ", "little")
REPLY_MAGIC = int.from_bytes(b"LKDR", "little")
CONTROL_INTERFACE_GUID = uuid.UUID("6b1f5a0e-8c1d-4c35-9a57-4c4b44480003")
MODULE_INTERFACE_GUID = uuid.UUID("6b1f5a0e-8c1d-4c35-9a57-4c4b44480002")
"""The module's own interface (GuidDeviceInterface): IOCTL_LIVEKERNELDUMP_CREATE goes here (F23)."""
SECONDARY_DATA_GUID = uuid.UUID("6b1f5a0e-8c1d-4c35-9a57-4c4b44480001")

FILE_ANY_ACCESS = 0
FILE_WRITE_ACCESS = 2

MAX_SLOTS = 1024
MAX_ALLOCATION_SIZE = 16 * 1024 * 1024
MAX_PATTERN_LENGTH = 65536
MAX_CLIENT_STRUCTURES = 4096
INFO_REPLY_MAX_SIZE = 4096
"""The output size offered for INFO, so a newer driver's longer INFO reply still fits."""
INFO_REPLY_V1_SIZE = 152
"""Protocol 1's INFO reply: the prefix every later INFO reply keeps."""

REPORT_TYPE_MAX_CHARS = 15
"""lkmdtel's limit, 16 WCHARs with the NUL (F05); the driver refuses a longer registry ReportType."""
DEFAULT_REPORT_TYPE = "LkdhTestDriver"
GUID_TEXT_CHARS = 38
CONFIG_REPORT_TYPE = 0x1
CONFIG_GUID_DEVICE_INTERFACE = 0x2
CONFIG_GUID_SECONDARY_DATA = 0x4
CONFIG_INCLUDE_DMF_DATA = 0x8
"""LKDH_CONFIG_*: one bit per registry value in INFO's ConfigFromRegistry / ConfigRejected."""

INFO_FLAG_VERIFIER = 0x1
INFO_FLAG_LIVE_DUMP_SUPPORTED = 0x2
INFO_FLAG_MODULE_PRESENT = 0x4

STATUS_REVISION_MISMATCH = 0xC0000059
CONTROL_STATUS_MEANINGS: dict[int, str] = {
    0xC0000059: "protocol version or magic differs between harness and driver",
    0xC0000004: "request size does not match its layout",
    0xC0000023: "input or output buffer shorter than the layout",
    0xC000000D: "a request field is out of range",
    0xC0000225: "the slot holds no allocation",
    0xC000072A: "the slot is already in use",
    0xC000009A: "the driver could not allocate pool",
    0xC0000184: "the LiveKernelDump feature module is missing",
    0xC0000022: "the handle is not an elevated administrator's, or not opened for writing",
}
"""Completion statuses of the control IOCTLs (lkdh_control.h), for messages."""


class Layout:
    """One packed little-endian structure: named fields, each a `struct` code or a nested Layout.

    The same object packs, unpacks, and lists (C member path, offset, size) for the compiler check.
    """

    def __init__(self, c_name: str, fields: Sequence[tuple[str, str | Layout]]) -> None:
        self.c_name = c_name
        self.fields = tuple(fields)
        self.size = sum(_field_size(kind) for _, kind in self.fields)

    @classmethod
    def from_format(cls, c_name: str, names: Sequence[str], struct_format: str) -> Layout:
        """A layout from a one-code-per-field `struct` format (such as lkd_ioctl.INPUT_FORMAT)."""
        codes = struct_format.lstrip("<")
        if len(codes) != len(names):
            raise ValueError(f"{c_name}: {len(names)} names for format {struct_format!r}")
        return cls(c_name, list(zip(names, codes, strict=True)))

    def offset(self, path: str) -> int:
        """Byte offset of a member: 'Header.Magic' for nested ones."""
        for member, offset, _ in self.members():
            if member == path:
                return offset
        raise KeyError(f"{self.c_name} has no member {path!r}")

    def members(self, prefix: str = "", base: int = 0) -> list[tuple[str, int, int]]:
        """(member path, offset, size) for every field, nested fields included, in order."""
        found, offset = [], base
        for name, kind in self.fields:
            path = f"{prefix}{name}"
            found.append((path, offset, _field_size(kind)))
            if isinstance(kind, Layout):
                found.extend(kind.members(f"{path}.", offset))
            offset += _field_size(kind)
        return found

    def pack(self, values: Mapping[str, Any]) -> bytes:
        """Bytes for `values` (a nested mapping for nested layouts); ValueError names the field."""
        missing = [name for name, _ in self.fields if name not in values]
        if missing:
            raise ValueError(f"{self.c_name}: no value for {', '.join(missing)}")
        parts = []
        for name, kind in self.fields:
            value = values[name]
            if isinstance(kind, Layout):
                parts.append(kind.pack(value))
                continue
            if kind.endswith("s") and len(value) > _field_size(kind):
                raise ValueError(f"{self.c_name}.{name}: {len(value)} bytes do not fit {kind}")
            try:
                parts.append(struct.pack("<" + kind, value))
            except struct.error as error:
                raise ValueError(f"{self.c_name}.{name} = {value!r}: {error}") from None
        return b"".join(parts)

    def unpack(self, data: bytes, offset: int = 0) -> dict[str, Any]:
        """Field values from `data` at `offset` (a nested dict for nested layouts)."""
        if len(data) - offset < self.size:
            raise ValueError(f"{self.c_name} needs {self.size} bytes, got {len(data) - offset}")
        values: dict[str, Any] = {}
        for name, kind in self.fields:
            if isinstance(kind, Layout):
                values[name] = kind.unpack(data, offset)
            else:
                (values[name],) = struct.unpack_from("<" + kind, data, offset)
            offset += _field_size(kind)
        return values


def _field_size(kind: str | Layout) -> int:
    return kind.size if isinstance(kind, Layout) else struct.calcsize("<" + kind)


HEADER = Layout("LKDH_HEADER", [("Magic", "I"), ("Version", "H"), ("Operation", "H"), ("TotalSize", "I")])
BUFFER_SLICE = Layout(
    "LKDH_BUFFER_SLICE",
    [("Kind", "I"), ("SlotId", "I"), ("Address", "Q"), ("Offset", "Q"), ("Length", "I"), ("Reserved", "I")],
)
ALLOC_REQUEST = Layout(
    "LKDH_ALLOC_REQUEST",
    [("Header", HEADER), ("SlotId", "I"), ("PoolType", "I"), ("Size", "I"), ("PatternLength", "I")],
)
FREE_REQUEST = Layout("LKDH_FREE_REQUEST", [("Header", HEADER), ("SlotId", "I")])
BUFFER_REQUEST = Layout("LKDH_BUFFER_REQUEST", [("Header", HEADER), ("Irql", "I"), ("Buffer", BUFFER_SLICE)])
CREATE_REQUEST = Layout(
    "LKDH_CREATE_REQUEST",
    [
        ("Header", HEADER),
        ("BugCheckCode", "I"),
        ("BugCheckParameter", "Q"),
        ("ExcludeDmfData", "B"),
        ("Reserved", "3s"),
        ("Irql", "I"),
        ("NumberOfClientStructures", "I"),
        ("HasSecondaryData", "I"),
        ("SecondaryData", BUFFER_SLICE),
    ],
)
HEADER_ONLY = Layout("LKDH_HEADER", [("Header", HEADER)])
"""QUERY_DMF_DATA_SIZE and INFO send a bare header (LKDH_HEADER itself in C)."""
STORE_COLLECTION_REQUEST = Layout(
    "LKDH_STORE_COLLECTION_REQUEST", [("Header", HEADER), ("Irql", "I"), ("Value", "Q")]
)
REPLY = Layout("LKDH_REPLY", [("Header", HEADER), ("DmfStatus", "I"), ("Value", "Q")])
INFO_REPLY = Layout(
    "LKDH_INFO_REPLY",
    [
        ("Header", HEADER),
        ("DmfStatus", "I"),
        ("DmfCollection", "Q"),
        ("LiveKernelDumpModule", "Q"),
        ("GuidSecondaryData", "16s"),
        ("GuidDeviceInterface", "16s"),
        ("ReportType", "32s"),
        ("DriverVersion", "8s"),
        ("Flags", "I"),
        ("Reserved", "I"),
        ("DmfCommit", "40s"),
        ("ConfigFromRegistry", "I"),
        ("ConfigRejected", "I"),
        ("ConfigKeyStatus", "I"),
        ("IncludeDmfDataInBugCheckTriageDump", "B"),
        ("ConfigReserved", "3s"),
        ("RequestedReportType", "32s"),
    ],
)
LIVEKERNELDUMP_CREATE_INPUT = Layout.from_format(
    "LKDH_LIVEKERNELDUMP_CREATE_INPUT",
    [
        "BugCheckCode",
        "BugCheckParameter",
        "ExcludeDmfData",
        "NumberOfClientStructures",
        "ArrayOfClientStructures",
        "SizeOfSecondaryData",
        "SecondaryDataBuffer",
    ],
    INPUT_FORMAT,
)
LIVEKERNELDUMP_CLIENT_STRUCTURE = Layout.from_format(
    "LKDH_LIVEKERNELDUMP_CLIENT_STRUCTURE", ["Address", "Size"], CLIENT_STRUCTURE_FORMAT
)

LAYOUTS = (
    HEADER,
    BUFFER_SLICE,
    ALLOC_REQUEST,
    FREE_REQUEST,
    BUFFER_REQUEST,
    CREATE_REQUEST,
    STORE_COLLECTION_REQUEST,
    REPLY,
    INFO_REPLY,
    LIVEKERNELDUMP_CREATE_INPUT,
    LIVEKERNELDUMP_CLIENT_STRUCTURE,
)
"""Every layout, for the compiler check."""


class Operation(IntEnum):
    """The control operations; the value is the IOCTL function code (LKDH_OP_* in the header)."""

    ALLOC = 0x900
    FREE = 0x901
    STORE = 0x902
    REMOVE = 0x903
    CREATE = 0x904
    STORE_COLLECTION = 0x905
    QUERY_DMF_DATA_SIZE = 0x906
    INFO = 0x907

    @property
    def needs_write_access(self) -> bool:
        """Operations that change kernel state need a handle opened for writing."""
        return self not in (Operation.QUERY_DMF_DATA_SIZE, Operation.INFO)

    @property
    def ioctl(self) -> int:
        access = FILE_WRITE_ACCESS if self.needs_write_access else FILE_ANY_ACCESS
        return ctl_code(FILE_DEVICE_UNKNOWN, int(self), METHOD_BUFFERED, access)

    @property
    def reply_size(self) -> int:
        """The output buffer lkdctl offers: INFO's is generous so any driver version can answer."""
        return INFO_REPLY_MAX_SIZE if self is Operation.INFO else REPLY.size


class BufferKind(IntEnum):
    SLOT = 0
    RAW = 1


POOL_TYPES: dict[str, int] = {"NonPagedPoolNx": 0, "PagedPool": 1, "NonPagedPool": 2}
"""ops.Alloc.pool names → LKDH_POOL_* (NonPagedPool is the executable non-paged pool)."""


@dataclass(frozen=True)
class BufferSlice:
    """LKDH_BUFFER_SLICE: a slot's allocation or a raw kernel address, plus offset and length."""

    kind: BufferKind
    length: int
    slot_id: int = 0
    address: int = 0
    offset: int = 0

    @classmethod
    def in_slot(cls, slot_id: int, length: int, offset: int = 0) -> BufferSlice:
        return cls(BufferKind.SLOT, length, slot_id=slot_id, offset=offset)

    @classmethod
    def at_address(cls, address: int, length: int, offset: int = 0) -> BufferSlice:
        """A raw address the driver passes on unchecked (NULL, stale, another driver's memory)."""
        return cls(BufferKind.RAW, length, address=address, offset=offset)

    def fields(self) -> dict[str, int]:
        return {
            "Kind": int(self.kind),
            "SlotId": self.slot_id,
            "Address": self.address,
            "Offset": self.offset,
            "Length": self.length,
            "Reserved": 0,
        }


@dataclass(frozen=True)
class ControlRequest:
    """Packed request bytes and what lkdctl needs to send them."""

    operation: Operation
    data: bytes

    @property
    def ioctl(self) -> int:
        return self.operation.ioctl

    @property
    def reply_size(self) -> int:
        return self.operation.reply_size


def _request(
    operation: Operation, layout: Layout, fields: dict[str, Any], tail: bytes = b""
) -> ControlRequest:
    header = {
        "Magic": REQUEST_MAGIC,
        "Version": PROTOCOL_VERSION,
        "Operation": int(operation),
        "TotalSize": layout.size + len(tail),
    }
    return ControlRequest(operation, layout.pack({"Header": header, **fields}) + tail)


def pack_alloc(slot_id: int, size: int, pattern: bytes, pool: str = "NonPagedPoolNx") -> ControlRequest:
    """ALLOC: `size` bytes of `pool` filled with `pattern` repeated, remembered in `slot_id`."""
    _check_slot(slot_id)
    if not 1 <= size <= MAX_ALLOCATION_SIZE:
        raise ValueError(f"allocation size {size} is outside 1..{MAX_ALLOCATION_SIZE}")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ValueError(f"pattern of {len(pattern)} bytes exceeds {MAX_PATTERN_LENGTH}")
    if pool not in POOL_TYPES:
        raise ValueError(f"unknown pool {pool!r}; expected one of {', '.join(POOL_TYPES)}")
    fields = {"SlotId": slot_id, "PoolType": POOL_TYPES[pool], "Size": size, "PatternLength": len(pattern)}
    return _request(Operation.ALLOC, ALLOC_REQUEST, fields, bytes(pattern))


def pack_free(slot_id: int) -> ControlRequest:
    _check_slot(slot_id)
    return _request(Operation.FREE, FREE_REQUEST, {"SlotId": slot_id})


def pack_store(buffer: BufferSlice, irql: Irql = Irql.PASSIVE_LEVEL) -> ControlRequest:
    """STORE: DMF_LiveKernelDump_DataBufferSourceAdd at `irql`."""
    return _request(Operation.STORE, BUFFER_REQUEST, {"Irql": int(irql), "Buffer": buffer.fields()})


def pack_remove(buffer: BufferSlice, irql: Irql = Irql.PASSIVE_LEVEL) -> ControlRequest:
    """REMOVE: DMF_LiveKernelDump_DataBufferSourceRemove at `irql`."""
    return _request(Operation.REMOVE, BUFFER_REQUEST, {"Irql": int(irql), "Buffer": buffer.fields()})


def pack_create(
    bugcheck_code: int,
    parameter: int = 0,
    exclude_dmf_data: int = 0,
    client_structures: Sequence[BufferSlice] = (),
    secondary_data: BufferSlice | None = None,
    irql: Irql = Irql.PASSIVE_LEVEL,
) -> ControlRequest:
    """CREATE: LiveKernelMemoryDumpCreate; `exclude_dmf_data` is the raw BOOLEAN byte (F17)."""
    if len(client_structures) > MAX_CLIENT_STRUCTURES:
        raise ValueError(f"{len(client_structures)} client structures exceed {MAX_CLIENT_STRUCTURES}")
    fields = {
        "BugCheckCode": bugcheck_code,
        "BugCheckParameter": parameter,
        "ExcludeDmfData": exclude_dmf_data,
        "Reserved": b"",
        "Irql": int(irql),
        "NumberOfClientStructures": len(client_structures),
        "HasSecondaryData": int(secondary_data is not None),
        "SecondaryData": (secondary_data or BufferSlice.at_address(0, 0)).fields(),
    }
    tail = b"".join(BUFFER_SLICE.pack(structure.fields()) for structure in client_structures)
    return _request(Operation.CREATE, CREATE_REQUEST, fields, tail)


def pack_store_collection(value: int, irql: Irql = Irql.PASSIVE_LEVEL) -> ControlRequest:
    """STORE_COLLECTION: StoreDmfCollectionAsBugcheckParameter(value) at `irql` (F18)."""
    return _request(Operation.STORE_COLLECTION, STORE_COLLECTION_REQUEST, {"Irql": int(irql), "Value": value})


def pack_query_dmf_data_size() -> ControlRequest:
    return _request(Operation.QUERY_DMF_DATA_SIZE, HEADER_ONLY, {})


def pack_info() -> ControlRequest:
    return _request(Operation.INFO, HEADER_ONLY, {})


def _check_slot(slot_id: int) -> None:
    if not 0 <= slot_id < MAX_SLOTS:
        raise ValueError(f"slot id {slot_id} is outside 0..{MAX_SLOTS - 1}")


class ProtocolError(TargetError):
    """The driver's reply (or its completion status) is not what this protocol version allows."""

    def __init__(self, operation: Operation, reason: str) -> None:
        super().__init__(f"{operation.name}: {reason}")
        self.operation = operation
        self.reason = reason


class ProtocolMismatch(ProtocolError):
    """Driver and harness speak different protocol versions; rebuild or reinstall the driver."""

    def __init__(self, operation: Operation, driver_version: int | None) -> None:
        driver = "an unknown version" if driver_version is None else f"version {driver_version}"
        super().__init__(operation, f"the driver speaks protocol {driver}, the harness {PROTOCOL_VERSION}")
        self.driver_version = driver_version


class ControlIoctlFailed(TargetError):
    """The driver refused a control request (the IOCTL's own status, not DMF's)."""

    def __init__(self, operation: Operation, ntstatus: int) -> None:
        meaning = CONTROL_STATUS_MEANINGS.get(ntstatus, "unexpected completion status")
        super().__init__(f"{operation.name}: IOCTL completed with 0x{ntstatus:08X} ({meaning})")
        self.operation = operation
        self.ntstatus = ntstatus


@dataclass(frozen=True)
class ControlReply:
    """LKDH_REPLY: what the DMF method returned and the operation's value (address, size, value)."""

    dmf_status: int
    value: int


@dataclass(frozen=True)
class InfoReply:
    """LKDH_INFO_REPLY: what the loaded driver and its LiveKernelDump module report."""

    protocol_version: int
    dmf_status: int
    dmf_collection: int
    module_handle: int
    secondary_data_guid: uuid.UUID
    device_interface_guid: uuid.UUID
    report_type: str
    driver_version: tuple[int, int, int, int]
    flags: int
    dmf_commit: str
    config: ConfigReport | None = None
    """What the driver read from its registry parameters; None from a protocol-1 driver."""

    @property
    def verifier(self) -> bool:
        return bool(self.flags & INFO_FLAG_VERIFIER)

    @property
    def live_dump_supported(self) -> bool:
        return bool(self.flags & INFO_FLAG_LIVE_DUMP_SUPPORTED)

    @property
    def module_present(self) -> bool:
        return bool(self.flags & INFO_FLAG_MODULE_PRESENT)


@dataclass(frozen=True)
class ConfigReport:
    """INFO's protocol-2 fields: the module configuration as this device start read it (Config.c)."""

    from_registry: int
    """CONFIG_* bits of the values taken from the device's hardware key."""
    rejected: int
    """CONFIG_* bits of the values present but refused (the built-in default was used)."""
    key_status: int
    """NTSTATUS of WdfDeviceOpenRegistryKey(PLUGPLAY_REGKEY_DEVICE)."""
    include_dmf_data_in_bugcheck_dump: bool
    """As the module's own config holds it (F22)."""
    requested_report_type: str
    """What the driver handed DMF, before DMF keeps 11 characters of it (F05)."""


def _checked_header(operation: Operation, data: bytes, layout: Layout, exact_version: bool) -> dict[str, Any]:
    if len(data) < HEADER.size:
        raise ProtocolError(operation, f"reply of {len(data)} bytes is shorter than its header")
    header = HEADER.unpack(data)
    if header["Magic"] != REPLY_MAGIC:
        raise ProtocolError(operation, f"reply magic 0x{header['Magic']:08X} is not LKDR")
    if exact_version and header["Version"] != PROTOCOL_VERSION:
        raise ProtocolMismatch(operation, header["Version"])
    if header["Operation"] != int(operation):
        raise ProtocolError(operation, f"reply is for operation 0x{header['Operation']:X}")
    if header["TotalSize"] != len(data) or len(data) < layout.size:
        raise ProtocolError(operation, f"reply claims {header['TotalSize']} bytes, carries {len(data)}")
    return layout.unpack(data)


def unpack_reply(operation: Operation, data: bytes) -> ControlReply:
    """The reply to any operation but INFO; ProtocolError when it is not a valid LKDH_REPLY."""
    if len(data) != REPLY.size:
        raise ProtocolError(operation, f"reply is {len(data)} bytes; LKDH_REPLY is {REPLY.size}")
    values = _checked_header(operation, data, REPLY, exact_version=True)
    return ControlReply(values["DmfStatus"], values["Value"])


def unpack_info_reply(data: bytes) -> InfoReply:
    """The INFO reply of any driver build: its prefix is stable, so the version is always readable."""
    values = _checked_header(Operation.INFO, data, _info_layout(data), exact_version=False)
    report_type = _utf16_field(values["ReportType"])
    config = None
    if "ConfigFromRegistry" in values:
        config = ConfigReport(
            from_registry=values["ConfigFromRegistry"],
            rejected=values["ConfigRejected"],
            key_status=values["ConfigKeyStatus"],
            include_dmf_data_in_bugcheck_dump=bool(values["IncludeDmfDataInBugCheckTriageDump"]),
            requested_report_type=_utf16_field(values["RequestedReportType"]),
        )
    return InfoReply(
        protocol_version=values["Header"]["Version"],
        dmf_status=values["DmfStatus"],
        dmf_collection=values["DmfCollection"],
        module_handle=values["LiveKernelDumpModule"],
        secondary_data_guid=uuid.UUID(bytes_le=values["GuidSecondaryData"]),
        device_interface_guid=uuid.UUID(bytes_le=values["GuidDeviceInterface"]),
        report_type=report_type,
        driver_version=struct.unpack("<4H", values["DriverVersion"]),
        flags=values["Flags"],
        dmf_commit=values["DmfCommit"].split(b"\0", 1)[0].decode("ascii", "replace"),
        config=config,
    )


INFO_REPLY_V1 = Layout("LKDH_INFO_REPLY", INFO_REPLY.fields[:11])
"""Protocol 1's INFO reply (no configuration fields), as an older driver still answers."""


def _info_layout(data: bytes) -> Layout:
    """INFO's layout by the reply's own version: an older driver's shorter reply is still readable,
    so the harness can name its version (ProtocolMismatch) instead of failing on a size."""
    if len(data) >= HEADER.size and HEADER.unpack(data)["Version"] < 2 and len(data) < INFO_REPLY.size:
        return INFO_REPLY_V1
    return INFO_REPLY


def _utf16_field(raw: bytes) -> str:
    return raw.decode("utf-16-le", "replace").split("\0", 1)[0]


def control_reply(operation: Operation, reply: LkdctlReply) -> ControlReply:
    """Check lkdctl's result for a control IOCTL and unpack it: the completion status must be
    success (ProtocolMismatch / ControlIoctlFailed otherwise), then the bytes must be a valid reply."""
    _check_completion(operation, reply.ntstatus)
    return unpack_reply(operation, reply.output)


def info_reply(reply: LkdctlReply) -> InfoReply:
    """control_reply for INFO, whose reply has its own layout."""
    _check_completion(Operation.INFO, reply.ntstatus)
    return unpack_info_reply(reply.output)


def _check_completion(operation: Operation, ntstatus: int) -> None:
    if ntstatus == STATUS_REVISION_MISMATCH:
        raise ProtocolMismatch(operation, None)
    if ntstatus != 0:
        raise ControlIoctlFailed(operation, ntstatus)


# --- IOCTL_LIVEKERNELDUMP_CREATE (the module's own IOCTL, F23-F27) ------------------------------


def pack_livekerneldump_create(
    bugcheck_code: int,
    parameter: int = 0,
    exclude_dmf_data: int = 0,
    number_of_client_structures: int = 0,
    array_of_client_structures: int = 0,
    size_of_secondary_data: int = 0,
    secondary_data_buffer: int = 0,
    *,
    length: int | None = None,
    fill: int = 0,
) -> bytes:
    """The 37-byte x64 input (F24); `length` cuts it short or pads it with `fill` bytes (F25)."""
    packed = LIVEKERNELDUMP_CREATE_INPUT.pack(
        {
            "BugCheckCode": bugcheck_code,
            "BugCheckParameter": parameter,
            "ExcludeDmfData": exclude_dmf_data,
            "NumberOfClientStructures": number_of_client_structures,
            "ArrayOfClientStructures": array_of_client_structures,
            "SizeOfSecondaryData": size_of_secondary_data,
            "SecondaryDataBuffer": secondary_data_buffer,
        }
    )
    if length is None:
        return packed
    if length < 0:
        raise ValueError(f"length {length} is negative")
    return packed[:length] + bytes([fill]) * max(0, length - len(packed))

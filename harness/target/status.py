"""NTSTATUS values the module and the live-dump service return, by name (DMF_FACTS.md, "Status codes")."""

from __future__ import annotations

STATUS_CODES: dict[str, int] = {
    "STATUS_SUCCESS": 0x00000000,
    "STATUS_UNSUCCESSFUL": 0xC0000001,
    "STATUS_INVALID_PARAMETER": 0xC000000D,
    "STATUS_ACCESS_DENIED": 0xC0000022,
    "STATUS_BUFFER_TOO_SMALL": 0xC0000023,
    "STATUS_OBJECT_NAME_COLLISION": 0xC0000035,
    "STATUS_INSUFFICIENT_RESOURCES": 0xC000009A,
    "STATUS_NOT_SUPPORTED": 0xC00000BB,
    "STATUS_INVALID_DEVICE_REQUEST": 0xC0000010,
}

STATUS_NAMES: dict[int, str] = {value: name for name, value in STATUS_CODES.items()}

STATUS_SUCCESS = STATUS_CODES["STATUS_SUCCESS"]
STATUS_UNSUCCESSFUL = STATUS_CODES["STATUS_UNSUCCESSFUL"]
STATUS_INVALID_PARAMETER = STATUS_CODES["STATUS_INVALID_PARAMETER"]
STATUS_ACCESS_DENIED = STATUS_CODES["STATUS_ACCESS_DENIED"]
STATUS_BUFFER_TOO_SMALL = STATUS_CODES["STATUS_BUFFER_TOO_SMALL"]
STATUS_OBJECT_NAME_COLLISION = STATUS_CODES["STATUS_OBJECT_NAME_COLLISION"]
STATUS_INSUFFICIENT_RESOURCES = STATUS_CODES["STATUS_INSUFFICIENT_RESOURCES"]


def status_name(value: int) -> str:
    """'STATUS_X (0x...)' for a known code, the hex value alone otherwise."""
    name = STATUS_NAMES.get(value)
    return f"{name} (0x{value:08X})" if name else f"0x{value:08X}"


def is_success(value: int) -> bool:
    """NT_SUCCESS: severity bits 00 (success) or 01 (informational)."""
    return value < 0x80000000

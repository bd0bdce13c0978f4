"""lkdctl.exe's command line and output, and the user-memory inputs only lkdctl can deliver.

The harness never talks to a device itself: every IOCTL is one run of `lkdctl.exe` on the machine.
`lkdctl_call` builds its argv (fixed flags, no value from a scenario in it) and the stdin bytes that
carry the request; `parse_lkdctl_output` turns the one JSON line it prints into an `LkdctlReply`, or
an `LkdctlError` naming lkdctl's error kind (LKDCTL_EXIT_* in driver/include/lkdh_control.h).

IOCTL_LIVEKERNELDUMP_CREATE takes pointers into the caller's own memory (F23-F27); lkdctl copies
`UserMemoryInput.user_data` into its process and patches those addresses into the input
(`--pointer`), which is why that input is built here rather than in protocol.py, whose layouts
it packs.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.target.base import TargetError
from harness.target.windows.protocol import (
    LIVEKERNELDUMP_CLIENT_STRUCTURE,
    LIVEKERNELDUMP_CREATE_INPUT,
    ControlRequest,
    pack_livekerneldump_create,
)

LKDCTL_EXIT_CODES: dict[str, int] = {
    "ok": 0,
    "bad_arguments": 2,
    "no_device_interface": 4,
    "open_failed": 5,
    "input_unreadable": 6,
    "internal": 7,
    "device_install_failed": 8,
}
"""Error kind → exit code (LKDCTL_EXIT_* in lkdh_control.h)."""


# --- IOCTL_LIVEKERNELDUMP_CREATE in the caller's memory (F23-F27) -------------------------------


@dataclass(frozen=True)
class UserPointer:
    """lkdctl --pointer: write the address of user_data[user_data_offset] at input[input_offset]."""

    input_offset: int
    user_data_offset: int


@dataclass(frozen=True)
class UserMemoryInput:
    """An IOCTL input whose pointers lkdctl fills in with addresses of its copy of `user_data`."""

    input: bytes
    user_data: bytes = b""
    pointers: tuple[UserPointer, ...] = ()


def livekerneldump_create_in_user_memory(
    bugcheck_code: int,
    parameter: int = 0,
    exclude_dmf_data: int = 0,
    client_structures: Sequence[tuple[int, int]] = (),
    secondary_data: bytes | tuple[int, int] | None = None,
) -> UserMemoryInput:
    """The input an application would build: the LIVEKERNELDUMP_CLIENT_STRUCTURE array (each
    {Address, Size}) and secondary data bytes in its own memory, pointed at by the 37 bytes.

    `secondary_data` as (address, size) is passed as is (a kernel buffer; F27). The caller may edit
    `input` afterwards (a NULL array with a count) and drop the matching pointer.
    """
    array = b"".join(
        LIVEKERNELDUMP_CLIENT_STRUCTURE.pack({"Address": address, "Size": size})
        for address, size in client_structures
    )
    pointers = []
    if array:
        pointers.append(UserPointer(LIVEKERNELDUMP_CREATE_INPUT.offset("ArrayOfClientStructures"), 0))
    user_data = array
    secondary_address, secondary_size = 0, 0
    if isinstance(secondary_data, tuple):
        secondary_address, secondary_size = secondary_data
    elif secondary_data:
        secondary_size = len(secondary_data)
        pointers.append(UserPointer(LIVEKERNELDUMP_CREATE_INPUT.offset("SecondaryDataBuffer"), len(array)))
        user_data = array + secondary_data
    packed = pack_livekerneldump_create(
        bugcheck_code,
        parameter,
        exclude_dmf_data,
        len(client_structures),
        0,
        secondary_size,
        secondary_address,
    )
    return UserMemoryInput(packed, user_data, tuple(pointers))


# --- command line and output -------------------------------------------------------------------


@dataclass(frozen=True)
class LkdctlCall:
    """What to run on the machine: a fixed argv (no value from a scenario in it) and the stdin bytes."""

    argv: tuple[str, ...]
    stdin: bytes


def lkdctl_call(
    executable: str,
    ioctl: int,
    data: bytes | UserMemoryInput,
    *,
    out_size: int = 0,
    guid: uuid.UUID | None = None,
    read_only: bool = False,
) -> LkdctlCall:
    """lkdctl's argv for one IOCTL, with the input (and any user data after it) on stdin."""
    user = data if isinstance(data, UserMemoryInput) else UserMemoryInput(data)
    argv = [executable, "--ioctl", f"0x{ioctl:08X}", "--in-file", "-", "--out-size", str(out_size)]
    if guid is not None:
        argv += ["--guid", str(guid)]
    if read_only:
        argv.append("--read-only")
    if user.user_data or user.pointers:
        argv += ["--input-length", str(len(user.input))]
        for pointer in user.pointers:
            argv += ["--pointer", f"{pointer.input_offset}={pointer.user_data_offset}"]
    return LkdctlCall(tuple(argv), user.input + user.user_data)


def control_call(executable: str, request: ControlRequest, *, read_only: bool = False) -> LkdctlCall:
    """lkdctl's argv and stdin for one control request to the test driver's interface."""
    return lkdctl_call(
        executable, request.ioctl, request.data, out_size=request.reply_size, read_only=read_only
    )


@dataclass(frozen=True)
class LkdctlReply:
    """lkdctl sent the IOCTL: its NTSTATUS, IoStatus.Information and the output bytes."""

    ntstatus: int
    information: int
    output: bytes


class LkdctlError(TargetError):
    """lkdctl did not send the IOCTL (`kind` is its error kind) or printed something malformed."""

    def __init__(self, kind: str, message: str, exit_code: int | None = None) -> None:
        super().__init__(f"lkdctl: {kind}: {message}")
        self.kind = kind
        self.exit_code = exit_code


def parse_lkdctl_output(stdout: bytes | str, exit_code: int | None = None) -> LkdctlReply:
    """lkdctl's one JSON line as a typed reply. LkdctlError with kind 'malformed_output' when it is
    not the JSON lkdctl prints, or with lkdctl's own error kind when it reports one."""
    text = stdout.decode("utf-8", "replace") if isinstance(stdout, bytes) else stdout
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) != 1:
        raise _malformed(f"expected one JSON line, got {len(lines)}", text, exit_code)
    try:
        document = json.loads(lines[0])
    except json.JSONDecodeError as error:
        raise _malformed(f"not JSON ({error.msg})", text, exit_code) from None
    if not isinstance(document, dict):
        raise _malformed("not a JSON object", text, exit_code)
    if "error" in document:
        raise _lkdctl_error(document, text, exit_code)
    if exit_code not in (None, 0):
        raise _malformed(f"exit code {exit_code} with a success line", text, exit_code)
    return _reply_from(document, text, exit_code)


def _reply_from(document: dict[str, Any], text: str, exit_code: int | None) -> LkdctlReply:
    ntstatus, information, output = (document.get(key) for key in ("ntstatus", "information", "output"))
    if not (isinstance(ntstatus, str) and len(ntstatus) == 10 and ntstatus[:2] == "0x"):
        raise _malformed(f"ntstatus {ntstatus!r} is not 0x + 8 hex digits", text, exit_code)
    if not isinstance(information, int) or isinstance(information, bool) or information < 0:
        raise _malformed(f"information {information!r} is not a count", text, exit_code)
    if not isinstance(output, str):
        raise _malformed(f"output {output!r} is not a hex string", text, exit_code)
    try:
        status, data = int(ntstatus[2:], 16), bytes.fromhex(output)
    except ValueError:
        raise _malformed("ntstatus or output is not hexadecimal", text, exit_code) from None
    if len(data) > information:
        raise _malformed(f"{len(data)} output bytes but information {information}", text, exit_code)
    return LkdctlReply(status, information, data)


def _lkdctl_error(document: dict[str, Any], text: str, exit_code: int | None) -> LkdctlError:
    kind = document["error"]
    if kind not in LKDCTL_EXIT_CODES or kind == "ok":
        return _malformed(f"unknown error kind {kind!r}", text, exit_code)
    if exit_code is not None and exit_code != LKDCTL_EXIT_CODES[kind]:
        return _malformed(f"error {kind!r} with exit code {exit_code}", text, exit_code)
    details = ", ".join(f"{key}={value}" for key, value in document.items() if key != "error")
    return LkdctlError(kind, details, exit_code)


def _malformed(reason: str, text: str, exit_code: int | None) -> LkdctlError:
    excerpt = text if len(text) <= 200 else text[:200] + "..."
    return LkdctlError("malformed_output", f"{reason}: {excerpt!r}", exit_code)

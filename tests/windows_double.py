"""A TEST DOUBLE of a Windows test VM: the Windows target's logic, tested without Windows.

`WindowsVmDouble` answers the PowerShell templates the harness sends the way each template's text
says the real one answers (scripts/*.ps1: same parameters, same result fields, a `throw` where the
template throws), and a real `SimulatedMachine` stands in for the kernel: `run-lkdctl` decodes
lkdctl's argv and the packed control request with protocol.py's layouts, runs the matching harness
operation on the simulator, and packs the driver's reply as lkdctl prints it. The machine's life is
modelled too: test signing and Driver Verifier take effect at the next boot, a bugcheck drops the
connection and the machine answers with a new boot time afterwards, dumps sit on the simulator's disk
under Windows paths (C:\\Windows\\LiveKernelReports, C:\\Windows\\Minidump).

What it cannot prove: that the templates run on real PowerShell (their text is never executed here:
the double recognises a template by its exact text and answers from Python), that WinRM carries them
(sessions are in-process objects, no network, no TLS, no NTLM), or that the real driver and lkdctl.exe
behave as the simulator predicts. It proves the harness's side of the conversation: the scripts and
parameters it chooses, the bytes it packs, and how it reads answers, crashes, reboots and files.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import struct
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import PureWindowsPath
from typing import Any

from windows_double_check import HOST_FACTS, dump_folder_status
from windows_double_parameters import DeviceParameters

from harness.target.irql import Irql
from harness.target.lkd_ioctl import IOCTL_LIVEKERNELDUMP_CREATE
from harness.target.ops import (
    Alloc,
    ClientStructure,
    Crash,
    Create,
    Free,
    IoctlCreate,
    Op,
    OpResult,
    QueryDmfDataSize,
    Reboot,
    Remove,
    SecondaryData,
    Store,
    StoreCollection,
)
from harness.target.sim import SimulatedMachine
from harness.target.sim.memory import USER_MODE
from harness.target.status import STATUS_ACCESS_DENIED, STATUS_CODES, STATUS_NOT_FOUND
from harness.target.windows import lkdctl, powershell, protocol
from harness.target.windows.config import SshSettings, WinRMSettings
from harness.target.windows.session import CommandResult, CommandTimeout, SessionError

SYSTEM_ROOT = PureWindowsPath("C:/Windows")
"""%SystemRoot% of the double; the files below it are the simulator's disk (`sim.windows_dir`)."""

STATUS_INVALID_DEVICE_REQUEST = STATUS_CODES["STATUS_INVALID_DEVICE_REQUEST"]
STATUS_INFO_LENGTH_MISMATCH = 0xC0000004
STATUS_SLOT_IN_USE = 0xC000072A
STATUS_INVALID_PARAMETER = 0xC000000D
STATUS_BUFFER_TOO_SMALL = 0xC0000023
_TEMPLATE_BY_TEXT = {powershell.script_text(name): name for name in powershell.SCRIPT_NAMES}


class TemplateThrow(Exception):
    """What a template's `throw` becomes: the bootstrap's LKDH-ERROR line and exit code 1."""


class MachineCrashed(Exception):
    """The IOCTL bugchecked the simulated machine; it has written its crash dump and rebooted."""

    def __init__(self, crash: Crash) -> None:
        super().__init__(f"bugcheck 0x{crash.bugcheck_code:X}")
        self.crash = crash


@dataclass(frozen=True)
class ScriptCall:
    """One template the harness ran, with its parameters as a log would show them (secrets masked)."""

    name: str
    params: dict[str, Any]


def decode_invocation(argv: Sequence[str], stdin: bytes) -> tuple[str, dict[str, Any]]:
    """(template name, parameters) of one bootstrap invocation; AssertionError for anything else,
    because a harness that sends another command line or script text has a bug worth failing on."""
    assert tuple(argv) == powershell.BOOTSTRAP_ARGV, f"test double: not the bootstrap command: {argv[:1]}"
    params_line, newline, script = stdin.partition(b"\n")
    assert newline, "test double: stdin holds no script after the parameter line"
    params = json.loads(base64.b64decode(params_line, validate=True).decode("utf-8"))
    name = _TEMPLATE_BY_TEXT.get(script.decode("ascii"))
    assert name is not None, "test double: stdin carries a script that is no shipped template"
    return name, params


def _marker_result(marker: str, value: Any, exit_code: int) -> CommandResult:
    payload = base64.b64encode(json.dumps(value).encode("utf-8")).decode("ascii")
    return CommandResult(exit_code, f"{marker}{payload}\r\n".encode("ascii"), b"")


def _iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat()


def lkdctl_failure(kind: str, **details: object) -> tuple[int, str]:
    """lkdctl's exit code and JSON line when it could not send the IOCTL (LKDCTL_EXIT_*)."""
    return lkdctl.LKDCTL_EXIT_CODES[kind], json.dumps({"error": kind, **details})


class LkdctlOnSimulator:
    """lkdctl.exe and the test driver's control dispatch (driver/lkdctl, Control.c, Slots.c),
    carried out on a SimulatedMachine. Slots map to simulator buffer names `slot-<id>`; the slot
    table is the driver's, so it is empty again after every boot."""

    def __init__(self, sim: SimulatedMachine) -> None:
        self.sim = sim
        self.operations: list[str] = []
        self.driver_version: tuple[int, int, int, int] = (0, 0, 0, 0)
        """LKDH_DRIVER_VERSION_* of the loaded image (Control.c copies them into INFO)."""
        self._slots: dict[int, str] = {}
        self._boot = sim.boot_number
        self.parameters: DeviceParameters | None = None
        """The device's registry parameters (WindowsVmDouble sets it): INFO's protocol-2 fields."""

    def run(
        self, arguments: Sequence[str], read_file: Callable[[str], bytes | None], *, elevated: bool
    ) -> tuple[int, str]:
        """lkdctl's exit code and its one JSON line; MachineCrashed when the IOCTL bugchecked."""
        if self._boot != self.sim.boot_number:
            self._slots, self._boot = {}, self.sim.boot_number
        options = _LkdctlOptions()
        problem = options.parse(arguments)
        if problem is not None:
            return lkdctl_failure("bad_arguments", message=problem)
        data = b"" if options.in_file is None else read_file(options.in_file)
        if data is None:
            return lkdctl_failure("input_unreadable", path=options.in_file, win32_error=2)
        data, problem = self._patch_pointers(data, options)
        if problem is not None:
            return lkdctl_failure("bad_arguments", message=problem)
        if options.guid == self.sim.module.config.device_interface_guid:  # the running driver's (F23)
            status, output = self._module_ioctl(options, data, elevated)
        elif options.guid == protocol.CONTROL_INTERFACE_GUID and options.ioctl == IOCTL_LIVEKERNELDUMP_CREATE:
            # DMF dispatches every IOCTL to every module: the module serves its code on any handle
            # to the device (DMF_FACTS.md F37, Dmf_IoctlHandler.c:340-380)
            status, output = self._module_ioctl(options, data, elevated, device="control-interface")
        elif options.guid == protocol.CONTROL_INTERFACE_GUID:
            status, output = self._control_ioctl(options, data)
        else:
            return lkdctl_failure("no_device_interface", guid=str(options.guid), win32_error=259)
        shown = output[: options.out_size]
        line = {"ntstatus": f"0x{status:08X}", "information": len(output), "output": shown.hex()}
        return lkdctl.LKDCTL_EXIT_CODES["ok"], json.dumps(line, separators=(",", ":"))

    def _patch_pointers(self, data: bytes, options: _LkdctlOptions) -> tuple[bytes, str | None]:
        """lkdctl copies the user data into its own memory and writes those addresses into the input."""
        if options.input_length is None:
            return data, None
        if options.input_length > len(data):
            return data, f"--input-length {options.input_length} exceeds the {len(data)} input bytes"
        packed, user_data = bytearray(data[: options.input_length]), data[options.input_length :]
        base = self.sim.memory.allocate(len(user_data), USER_MODE, user_data) if user_data else 0
        for input_offset, user_offset in options.pointers:
            if input_offset + 8 > len(packed) or user_offset > len(user_data):
                return data, f"--pointer {input_offset}={user_offset} is outside the input or user data"
            packed[input_offset : input_offset + 8] = struct.pack("<Q", base + user_offset)
        return bytes(packed), None

    def _module_ioctl(
        self, options: _LkdctlOptions, data: bytes, elevated: bool, device: str = "module-interface"
    ) -> tuple[int, bytes]:
        """The module's own interface: only IOCTL_LIVEKERNELDUMP_CREATE, answered with no output."""
        if options.ioctl != IOCTL_LIVEKERNELDUMP_CREATE:
            return STATUS_INVALID_DEVICE_REQUEST, b""
        self.operations.append("IOCTL_LIVEKERNELDUMP_CREATE")
        op = IoctlCreate(raw=data, elevated=elevated, write_access=not options.read_only, device=device)
        result = self._execute(op)
        return result.status, b""

    def _control_ioctl(self, options: _LkdctlOptions, data: bytes) -> tuple[int, bytes]:
        """Control.c's checks in their order, then the operation; the reply as the driver packs it."""
        if len(data) < protocol.HEADER.size:
            return STATUS_BUFFER_TOO_SMALL, b""
        header = protocol.HEADER.unpack(data)
        try:
            operation = protocol.Operation(header["Operation"])
        except ValueError:
            return STATUS_INVALID_DEVICE_REQUEST, b""
        if operation.ioctl != options.ioctl:
            return STATUS_INVALID_DEVICE_REQUEST, b""
        if options.read_only and operation.needs_write_access:
            return STATUS_ACCESS_DENIED, b""
        if header["Magic"] != protocol.REQUEST_MAGIC:
            return protocol.STATUS_REVISION_MISMATCH, b""
        self.operations.append(operation.name)
        if operation is protocol.Operation.INFO:
            if options.out_size < protocol.INFO_REPLY.size:
                return STATUS_BUFFER_TOO_SMALL, b""
            return 0, self._info_reply()
        if header["Version"] != protocol.PROTOCOL_VERSION:
            return protocol.STATUS_REVISION_MISMATCH, b""
        if header["TotalSize"] != len(data):
            return STATUS_INFO_LENGTH_MISMATCH, b""
        if options.out_size < protocol.REPLY.size:
            return STATUS_BUFFER_TOO_SMALL, b""
        completion, dmf_status, value = self._dispatch(operation, data)
        if completion != 0:
            return completion, b""
        reply = {
            "Header": _reply_header(operation, protocol.REPLY),
            "DmfStatus": dmf_status,
            "Value": value,
        }
        return 0, protocol.REPLY.pack(reply)

    def _dispatch(self, operation: protocol.Operation, data: bytes) -> tuple[int, int, int]:
        """(completion status, DMF status, reply value) of one control operation."""
        match operation:
            case protocol.Operation.ALLOC:
                return self._alloc(data)
            case protocol.Operation.FREE:
                slot = protocol.FREE_REQUEST.unpack(data)["SlotId"]
                if slot not in self._slots:
                    return STATUS_NOT_FOUND, 0, 0
                name = self._slots.pop(slot)
                address = self.sim.buffers[name][0]
                return 0, self._execute(Free(name)).status, address
            case protocol.Operation.STORE | protocol.Operation.REMOVE:
                request = protocol.BUFFER_REQUEST.unpack(data)
                if request["Irql"] > Irql.DISPATCH_LEVEL:
                    return STATUS_INVALID_PARAMETER, 0, 0
                problem, ref, offset = self._resolve(request["Buffer"])
                if problem:
                    return problem, 0, 0
                kind = Store if operation is protocol.Operation.STORE else Remove
                result = self._execute(kind(ref, request["Buffer"]["Length"], offset, Irql(request["Irql"])))
                return 0, result.status, result.address or 0
            case protocol.Operation.CREATE:
                return self._create(data)
            case protocol.Operation.STORE_COLLECTION:
                request = protocol.STORE_COLLECTION_REQUEST.unpack(data)
                if request["Irql"] > Irql.DISPATCH_LEVEL:
                    return STATUS_INVALID_PARAMETER, 0, 0
                result = self._execute(StoreCollection(request["Value"], Irql(request["Irql"])))
                return 0, result.status, request["Value"]
            case protocol.Operation.QUERY_DMF_DATA_SIZE:
                result = self._execute(QueryDmfDataSize())
                return 0, result.status, result.value or 0
        raise AssertionError(f"test double: no control operation {operation!r}")

    def _alloc(self, data: bytes) -> tuple[int, int, int]:
        request = protocol.ALLOC_REQUEST.unpack(data)
        pattern = data[protocol.ALLOC_REQUEST.size :]
        if len(pattern) != request["PatternLength"]:
            return STATUS_INFO_LENGTH_MISMATCH, 0, 0
        if request["SlotId"] in self._slots:
            return STATUS_SLOT_IN_USE, 0, 0
        pools = {number: name for name, number in protocol.POOL_TYPES.items()}
        if request["PoolType"] not in pools:
            return STATUS_INVALID_PARAMETER, 0, 0
        name = f"slot-{request['SlotId']}"
        result = self._execute(Alloc(name, request["Size"], pattern, pools[request["PoolType"]]))
        self._slots[request["SlotId"]] = name
        return 0, 0, result.address or 0

    def _create(self, data: bytes) -> tuple[int, int, int]:
        request = protocol.CREATE_REQUEST.unpack(data)
        count = request["NumberOfClientStructures"]
        if len(data) != protocol.CREATE_REQUEST.size + count * protocol.BUFFER_SLICE.size:
            return STATUS_INFO_LENGTH_MISMATCH, 0, 0
        if (
            request["Irql"] > Irql.DISPATCH_LEVEL
            or request["HasSecondaryData"] > 1
            or any(request["Reserved"])
        ):
            return STATUS_INVALID_PARAMETER, 0, 0
        secondary = None
        if request["HasSecondaryData"]:
            problem, ref, offset = self._resolve(request["SecondaryData"])
            if problem:
                return problem, 0, 0
            secondary = SecondaryData(ref, request["SecondaryData"]["Length"], offset)
        structures = []
        for index in range(count):
            at = protocol.CREATE_REQUEST.size + index * protocol.BUFFER_SLICE.size
            piece = protocol.BUFFER_SLICE.unpack(data, at)
            problem, ref, offset = self._resolve(piece)
            if problem:
                return problem, 0, 0
            structures.append(ClientStructure(ref, piece["Length"], offset))
        create = Create(
            request["BugCheckCode"],
            request["BugCheckParameter"],
            request["ExcludeDmfData"],
            tuple(structures),
            secondary,
            Irql(request["Irql"]),
        )
        return 0, self._execute(create).status, 0

    def _resolve(self, piece: dict[str, int]) -> tuple[int, str | int, int]:
        """LkdhSliceResolve: (completion problem or 0, simulator buffer name or raw address, offset)."""
        if piece["Reserved"] != 0:
            return STATUS_INVALID_PARAMETER, 0, 0
        if piece["Kind"] == protocol.BufferKind.RAW:
            return (STATUS_INVALID_PARAMETER if piece["SlotId"] else 0), piece["Address"], piece["Offset"]
        slot = piece["SlotId"]
        if piece["Kind"] != protocol.BufferKind.SLOT or piece["Address"] != 0 or slot >= protocol.MAX_SLOTS:
            return STATUS_INVALID_PARAMETER, 0, 0
        name = self._slots.get(piece["SlotId"])
        return (STATUS_NOT_FOUND, 0, 0) if name is None else (0, name, piece["Offset"])

    def free_slots(self) -> None:
        """The device stops (a restart): LkdhEvtDeviceCleanup frees every ALLOC slot."""
        for name in self._slots.values():
            self.sim.execute(Free(name))
        self._slots.clear()

    def _info_reply(self) -> bytes:
        module = self.sim.module.config  # the running driver's copy, not what its next start reads
        flags = protocol.INFO_FLAG_LIVE_DUMP_SUPPORTED | protocol.INFO_FLAG_MODULE_PRESENT
        if self.sim.module.verifier.enabled:  # MmIsDriverVerifying: this boot's state
            flags |= protocol.INFO_FLAG_VERIFIER
        values = {
            "Header": _reply_header(protocol.Operation.INFO, protocol.INFO_REPLY),
            "DmfStatus": 0,
            "DmfCollection": self.sim.framework.collection_handle,
            "LiveKernelDumpModule": self.sim.framework.collection_handle + 0x100,
            "GuidSecondaryData": module.secondary_data_guid.bytes_le,
            "GuidDeviceInterface": module.device_interface_guid.bytes_le,
            "ReportType": self.sim.module.report_type.encode("utf-16-le"),
            "DriverVersion": struct.pack("<4H", *self.driver_version),
            "Flags": flags,
            "Reserved": 0,
            "DmfCommit": b"bfac434",
        }
        if self.parameters is not None:
            values.update(self.parameters.info_fields())
        else:  # no registry model: Config.c found no hardware key and used its defaults
            values.update(
                ConfigFromRegistry=0,
                ConfigRejected=0,
                ConfigKeyStatus=0xC0000034,
                IncludeDmfDataInBugCheckTriageDump=int(module.include_dmf_data_in_bugcheck_dump),
                ConfigReserved=b"",
                RequestedReportType=module.report_type.encode("utf-16-le"),
            )
        return protocol.INFO_REPLY.pack(values)

    def _execute(self, op: Op) -> OpResult:
        result = self.sim.execute(op)
        if result.crash is not None:
            raise MachineCrashed(result.crash)
        return result


@dataclass
class _LkdctlOptions:
    """lkdctl's command line, parsed as strictly as lkdctl.c parses it (the options the harness uses)."""

    ioctl: int | None = None
    guid: uuid.UUID = protocol.CONTROL_INTERFACE_GUID
    in_file: str | None = None
    out_size: int = 0
    input_length: int | None = None
    read_only: bool = False
    pointers: list[tuple[int, int]] = field(default_factory=list)

    def parse(self, arguments: Sequence[str]) -> str | None:
        """None, or lkdctl's bad_arguments message."""
        words = iter(arguments)
        for name in words:
            if name == "--read-only":
                self.read_only = True
                continue
            value = next(words, None)
            if value is None:
                return f"{name} needs a value"
            try:
                self._take(name, value)
            except ValueError as error:
                return f"{name}: {error}"
        return "--ioctl is required" if self.ioctl is None else None

    def _take(self, name: str, value: str) -> None:
        match name:
            case "--ioctl":
                self.ioctl = int(value, 0)
            case "--guid":
                self.guid = uuid.UUID(value)
            case "--in-file":
                self.in_file = value
            case "--out-size":
                self.out_size = int(value)
            case "--input-length":
                self.input_length = int(value)
            case "--pointer":
                input_offset, _, user_offset = value.partition("=")
                self.pointers.append((int(input_offset), int(user_offset)))
            case _:
                raise ValueError("unknown option")


class WindowsVmDouble:
    """The VM: templates answered from its state, a SimulatedMachine as its kernel, a call log.

    Starts as a fresh VM (nothing installed, test signing off). `accounts` maps user names to
    passwords, checked where the real machine checks them (WinRM logon, Register-ScheduledTask).
    Knobs for failures: `unreachable_polls_after_boot` (connections refused while booting),
    `lose_next_lkdctl` (the connection drops, the machine does not reboot), `corrupt_next_chunk`
    (a read-chunk answer with one byte flipped).
    """

    def __init__(
        self,
        sim: SimulatedMachine,
        *,
        host: str,
        accounts: Mapping[str, str],
        admin: str,
        hardware_id: str = "Root\\LkdhTestDriver",
        service_name: str = "LkdhTestDriver",
        unreachable_polls_after_boot: int = 0,
    ) -> None:
        self.sim, self.host, self.accounts, self.admin = sim, host, dict(accounts), admin
        self.hardware_id, self.service_name = hardware_id, service_name
        self.lkdctl = LkdctlOnSimulator(sim)
        self.parameters = DeviceParameters(sim)
        """The test driver's registry parameters (windows_double_parameters.py); knobs there:
        `restart_needs_reboot` (pnputil exit 3010), `ignored` (a build that does not read a value)."""
        self.lkdctl.parameters = self.parameters
        self.files: dict[str, bytes] = {}
        self.calls: list[ScriptCall] = []
        self.test_signing_configured = False
        self.trusted_certificates: set[str] = set()
        self.installed_inf: str | None = None
        """The INF whose driver the device runs; None while no device exists."""
        self.driver_store: dict[str, bytes] = {}
        """oemNN.inf → the staged INF's bytes (pnputil /add-driver, /delete-driver)."""
        self.device_instances: list[str] = []
        """ROOT devnodes with the hardware id: only `lkdctl --install-device` creates one."""
        self.loaded_image: bytes | None = None
        self.device_inf_name: str | None = None
        """The oemNN.inf the device's driver came from (Win32_PnPSignedDriver.InfName)."""
        """%SystemRoot%\\System32\\drivers\\<service>.sys as the device last started it."""
        self.verifier_level: int | None = None
        self.verifier_calls = 0
        self.pending_live_dump_reboot = False
        """Knob: the live-dump throttling values differ from what apply writes (a reboot applies them)."""
        self.live_dump_events: list[dict[str, Any]] = []
        self.last_boot_jitter = False
        """Knob: LastBootUpTime moves by a second per answer without a reboot (windows_exporter#74)."""
        self.os_architecture = "AMD64"
        self.verifier_drivers: tuple[str, ...] = ()
        self.live_dump_settings_applied = 0
        self.restarts = 0
        self.standard_user_runs: list[str] = []
        self.unreachable_polls_after_boot = unreachable_polls_after_boot
        self.lose_next_lkdctl = False
        self.corrupt_next_chunk = False
        self.hang_lkdctl_in = 0
        """N > 0: the Nth run-lkdctl from now never returns, and the session gives up at its
        deadline with CommandTimeout, as harness/target/windows/winrm_session.py does for a command
        that outlives its deadline; the machine stays up on the same boot."""
        self.deadlines: list[tuple[str, float | None]] = []  # (template, the deadline it was given)
        self.crash_listeners: list[Callable[[Crash], None]] = []
        """Called with each bugcheck as it happens, before the connection drops: what watches the VM
        from outside (a hypervisor's pvpanic, tests/crash_witness_double.py) hears it then."""
        if sim.settings.verifier:
            raise ValueError(
                "a fresh VM runs without Driver Verifier: build the simulator with verifier=False"
            )
        self._boots: dict[int, int] = {}
        self._restart_pending = False
        self._unreachable = 0
        self._temp_files = 0
        self._answers = 0
        self._test_signing_this_boot = False
        self._note_boot()
        self._handlers: dict[str, Callable[[dict[str, Any]], Any]] = {
            "boot-time": self._boot_time,
            "configure-live-dumps": self._configure_live_dumps,
            "configure-verifier": self._configure_verifier,
            "device-parameters": self._device_parameters,
            "driver-status": self._driver_status,
            "dump-folder-status": self._dump_folder_status,
            "enable-test-signing": self._enable_test_signing,
            "file-hash": self._file_hash,
            "host-info": self._host_info,
            "import-certificate": self._import_certificate,
            "install-driver": self._install_driver,
            "live-dump-events": self._live_dump_events,
            "list-dumps": self._list_dumps,
            "read-chunk": self._read_chunk,
            "restart-computer": self._restart_computer,
            "run-lkdctl": self._run_lkdctl,
            "upload-chunk": self._upload_chunk,
        }

    # -- the connection ---------------------------------------------------------------------------
    def answer(self, argv: Sequence[str], stdin: bytes, timeout: float | None = None) -> CommandResult:
        """One bootstrap invocation, answered as the machine would; SessionError while it is down."""
        if self._restart_pending:
            self._restart_pending = False
            self.sim.execute(Reboot())
        self._note_boot()
        if self._unreachable > 0:
            self._unreachable -= 1
            raise SessionError("tcp", self.host, "connection refused (the machine is booting)")
        name, params = decode_invocation(argv, stdin)
        self.calls.append(ScriptCall(name, powershell.redacted(params)))
        self.deadlines.append((name, timeout))
        handler = self._handlers.get(name)
        assert handler is not None, f"test double: template {name!r} is not modelled"
        try:
            value = handler(params)
        except TemplateThrow as thrown:
            failure = {"message": str(thrown), "category": "InvalidOperation", "script_line": 0}
            return _marker_result(powershell.ERROR_MARKER, failure, 1)
        except MachineCrashed as crashed:
            self._note_boot()
            for listener in self.crash_listeners:
                listener(crashed.crash)
            raise SessionError(
                "command", self.host, "the connection was reset while the command ran"
            ) from None
        return _marker_result(powershell.RESULT_MARKER, value, 0)

    def logon(self, username: str | None, password: str | None) -> None:
        if username is None or self.accounts.get(username) != password:
            raise SessionError("auth", self.host, f"the machine refused the logon of {username!r}")

    # -- state ------------------------------------------------------------------------------------
    @property
    def boot_unix(self) -> int:
        return self._boots[self.sim.boot_number]

    @property
    def driver_running(self) -> bool:
        return (
            bool(self.device_instances)
            and self.installed_inf is not None
            and self._test_signing_this_boot
            and bool(self.trusted_certificates)
        )

    def file_bytes(self, path: str) -> bytes | None:
        """A guest file: below C:\\Windows from the simulator's disk, elsewhere from what was uploaded."""
        windows_path = PureWindowsPath(path)
        if not windows_path.is_absolute():
            raise TemplateThrow(f"'{path}' is not an absolute path")
        if windows_path.is_relative_to(SYSTEM_ROOT):
            local = self.sim.windows_dir.joinpath(*windows_path.relative_to(SYSTEM_ROOT).parts)
            return local.read_bytes() if local.is_file() else None
        return self.files.get(str(windows_path).lower())

    def _note_boot(self) -> None:
        """A boot the double has not seen yet (a restart or a crash): settings of the last boot apply."""
        if self.sim.boot_number in self._boots:
            return
        self._boots[self.sim.boot_number] = int(self.sim.now)
        self._test_signing_this_boot = self.test_signing_configured
        self._unreachable = self.unreachable_polls_after_boot if len(self._boots) > 1 else 0

    # -- templates --------------------------------------------------------------------------------
    def _boot_time(self, params: dict[str, Any]) -> dict[str, Any]:
        """boot-time.ps1: BootId (+1 per boot), QueryPerformanceCounter uptime, and LastBootUpTime,
        which Windows derives as now - uptime in whole seconds and so may move without a reboot
        (windows_exporter#74; the `last_boot_jitter` knob)."""
        now = self.sim.now
        uptime = now - self.boot_unix
        self._answers += 1
        shown = self.boot_unix + (self._answers % 2 if self.last_boot_jitter else 0)
        return {
            "boot_id": self.sim.boot_number + 40,
            "uptime_ms": int(uptime * 1000),
            "last_boot_utc": _iso(shown),
            "last_boot_unix": shown,
            "now_utc": _iso(now),
        }

    def _enable_test_signing(self, params: dict[str, Any]) -> dict[str, Any]:
        active = self._test_signing_this_boot
        self.test_signing_configured = True
        return {
            "active_now": active,
            "configured": True,
            "reboot_required": not active,
            "secure_boot": False,
            "boot_options": "NOEXECUTE=OPTIN" + (" TESTSIGNING" if active else ""),
        }

    def _import_certificate(self, params: dict[str, Any]) -> dict[str, Any]:
        data = self.file_bytes(params["cer_path"])
        if data is None:
            raise TemplateThrow(f"import-certificate: no certificate at '{params['cer_path']}'")
        self.trusted_certificates.add(hashlib.sha256(data).hexdigest())
        return {
            "thumbprint": hashlib.sha1(data).hexdigest().upper(),
            "subject": "CN=LkdhTest",
            "not_after_utc": "2036-01-01T00:00:00.0000000Z",
            "stores": list(params.get("stores") or ["Root", "TrustedPublisher"]),
        }

    def _device(self) -> dict[str, Any]:
        if not self.device_instances:
            return {
                "present": False,
                "instance_id": "",
                "status": "",
                "problem_code": -1,
                "problem": "not present",
            }
        code = 0 if self.driver_running else 52
        return {
            "present": True,
            "instance_id": self.device_instances[0],
            "status": "OK" if code == 0 else "Error",
            "problem_code": code,
            "problem": "" if code == 0 else "CM_PROB_UNSIGNED_DRIVER",
            "count": len(self.device_instances),
        }

    def _driver_status(self, params: dict[str, Any]) -> dict[str, Any]:
        """driver-status.ps1: the service (Win32_SystemDriver) exists once an INF's AddService ran;
        its image is the copy the device last started (FileVersion and SHA-256 of that file)."""
        exists = self.loaded_image is not None and params["service_name"] == self.service_name
        image = self.loaded_image or b""
        service = {
            "exists": exists,
            "state": ("Running" if self.driver_running else "Stopped") if exists else "",
            "start_mode": "Manual" if exists else "",
            "path": f"C:\\Windows\\System32\\drivers\\{self.service_name}.sys" if exists else "",
            "file_version": _file_version(image) if exists else "",
            "image_sha256": hashlib.sha256(image).hexdigest() if exists else "",
        }
        device = None
        if params.get("hardware_id"):
            device = self._device() if params["hardware_id"] == self.hardware_id else _absent_device()
            published = self.device_inf_name if device["present"] else ""
            device.update(driver_version="", inf_name=published or "")
        return {"service": service, "device": device}

    def _published_name(self, inf: str | None) -> str | None:
        data = None if inf is None else self.file_bytes(inf)
        return next((name for name, staged in self.driver_store.items() if staged == data), None)

    def _install_driver(self, params: dict[str, Any]) -> dict[str, Any]:
        """install-driver.ps1 as the documentation says each tool behaves:
        - `pnputil /delete-driver oemNN.inf /uninstall /force` removes the package from the store and
          from the devices using it (pnputil-command-syntax);
        - `pnputil /add-driver X.inf` only stages: it creates no device (pnputil-command-syntax;
          with /install it updates existing devices and exits 259 when none match);
        - `lkdctl --install-device` creates the ROOT devnode unless one has the hardware id, and
          installs the INF's driver on it (UpdateDriverForPlugAndPlayDevices: files copied, service
          created, device started); an INF that offers no driver for the id creates nothing."""
        inf, lkdctl_path = params["inf_path"], params["lkdctl_path"]
        data = self.file_bytes(inf)
        if data is None:
            raise TemplateThrow(f"install-driver: no INF at '{inf}'")
        if self.file_bytes(lkdctl_path) is None:
            raise TemplateThrow(f"install-driver: no lkdctl at '{lkdctl_path}'")
        deleted = []
        for old in params.get("old_inf_names") or []:
            if not re.fullmatch(r"oem\d+\.inf", old):
                raise TemplateThrow(f"install-driver: '{old}' is not a published oemNN.inf name")
            if self.driver_store.pop(old, None) is None:
                raise TemplateThrow(
                    f"pnputil /delete-driver {old} failed with exit code 2: not in the driver store"
                )
            if old == self.device_inf_name:  # /uninstall: the device loses its driver
                self.installed_inf, self.loaded_image, self.device_inf_name = None, None, None
            deleted.append(old)
        image = self.file_bytes(str(PureWindowsPath(inf).with_suffix(".sys")))
        if image is None:
            raise TemplateThrow("pnputil /add-driver failed with exit code 2: the package is incomplete")
        published = self._published_name(inf)
        if published is None:
            published = f"oem{42 + len(self.driver_store) + len(deleted)}.inf"
            self.driver_store[published] = data
        if params["hardware_id"] != self.hardware_id:
            raise TemplateThrow(
                "install-driver: lkdctl --install-device failed at no_driver_for_hardware_id"
                " (Win32 error 259)"
            )
        existed = bool(self.device_instances)
        if not existed:
            self.device_instances.append("ROOT\\SYSTEM\\0000")
        self.installed_inf, self.loaded_image, self.device_inf_name = inf, image, published
        self.lkdctl.driver_version = _version_tuple(_file_version(image))
        device = self._device()
        return {
            "ok": device["problem_code"] == 0,
            "published_name": published,
            "deleted_inf_names": deleted,
            "reboot_required": False,
            "pnputil_exit_code": 0,
            "pnputil_output": f"Driver package added successfully.\r\nPublished Name: {published}",
            "device_install": {
                "device": "existing" if existed else "created",
                "instance_id": self.device_instances[0],
                "matching": len(self.device_instances),
                "reboot_required": False,
            },
            "restart_exit_code": 0 if existed else None,
            "device": device,
        }

    def _configure_verifier(self, params: dict[str, Any]) -> dict[str, Any]:
        """configure-verifier.ps1. verifier.exe itself answers exit 2 (reboot required) to every
        /standard or /flags call, changed or not (MicrosoftDocs "Driver Verifier command syntax");
        the template calls it only when VerifyDrivers / VerifyDriverLevel differ from the wish."""
        action = params["action"]
        called = False
        if action == "enable":
            driver = str(params.get("driver"))
            if not re.fullmatch(r"[A-Za-z0-9_.-]+\.sys", driver):
                raise TemplateThrow(f"configure-verifier: driver must be a file name, not '{driver}'")
            wanted = 0x209BB if params.get("flags") is None else int(params["flags"])
            same = [name.lower() for name in self.verifier_drivers] == [driver.lower()]
            if not (same and self.verifier_level == wanted):
                self.verifier_drivers, self.verifier_level, called = (driver,), wanted, True
        elif action == "reset":
            self.verifier_drivers, self.verifier_level, called = (), None, True
        elif action != "query":
            raise TemplateThrow(f"configure-verifier: action must be enable, reset or query, not '{action}'")
        self.verifier_calls += called
        # Verifier reads its settings at boot, as the simulator does: this boot keeps what it had.
        verified = f"{self.service_name}.sys".lower() in {name.lower() for name in self.verifier_drivers}
        self.sim.settings = replace(self.sim.settings, verifier=verified)
        return {
            "reboot_required": called,
            "verifier_called": called,
            "configured_drivers": list(self.verifier_drivers),
            "configured_flags": self.verifier_level,
            "active_drivers": [f"{self.service_name}.sys"] if self.sim.module.verifier.enabled else [],
            "query_output": "",
            "command_output": [],
        }

    def _device_parameters(self, params: dict[str, Any]) -> dict[str, Any]:
        """device-parameters.ps1 (windows_double_parameters.py says which documentation each
        behaviour follows)."""
        if params["hardware_id"] != self.hardware_id or not self.device_instances:
            raise TemplateThrow(f"device-parameters: no device with hardware id '{params['hardware_id']}'")
        try:
            answer = self.parameters.script(params, self.device_instances[0], self.lkdctl.free_slots)
        except ValueError as error:
            raise TemplateThrow(str(error)) from None
        return {**answer, "device": self._device()}

    def _configure_live_dumps(self, params: dict[str, Any]) -> dict[str, Any]:
        if params["action"] not in ("query", "apply"):
            raise TemplateThrow(
                f"configure-live-dumps: action must be query or apply, not '{params['action']}'"
            )
        self.live_dump_settings_applied += params["action"] == "apply"
        changed = []
        if params["action"] == "apply" and self.pending_live_dump_reboot:
            self.pending_live_dump_reboot = False
            changed = [
                "HKLM:\\SYSTEM\\CurrentControlSet\\Control\\CrashControl\\FullLiveKernelReports"
                "\\SystemThrottleThreshold = 0"
            ]
        return {"settings": {}, "refusals": [], "changed": changed, "reboot_required": bool(changed)}

    def _live_dump_events(self, params: dict[str, Any]) -> dict[str, Any]:
        since = int(params["since_unix"])
        events = [event for event in self.live_dump_events if event["unix"] >= since]
        shown = [{k: v for k, v in event.items() if k != "unix"} for event in events]
        return {
            "log": "Microsoft-Windows-Kernel-LiveDump/Operational",
            "events": shown[: int(params.get("max_events") or 50)],
            "note": "" if shown else "no events since then",
        }

    def _host_info(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "computer_name": "WIN-DOUBLE",
            "user": f"WIN-DOUBLE\\{self.admin}",
            "elevated": True,
            "os_architecture": self.os_architecture,
            **HOST_FACTS,
        }

    def _dump_folder_status(self, params: dict[str, Any]) -> dict[str, Any]:
        return dump_folder_status(self.sim.windows_dir)  # windows_double_check.py

    def _file_hash(self, params: dict[str, Any]) -> dict[str, Any]:
        files = []
        for path in params["paths"]:
            data = self.file_bytes(path)
            if data is None:
                files.append({"path": path, "exists": False, "sha256": "", "size": 0})
            else:
                files.append(
                    {
                        "path": path,
                        "exists": True,
                        "sha256": hashlib.sha256(data).hexdigest(),
                        "size": len(data),
                    }
                )
        return {"files": files}

    def _read_chunk(self, params: dict[str, Any]) -> dict[str, Any]:
        path, offset, length = params["path"], int(params["offset"]), int(params["length"])
        if offset < 0 or not 0 <= length <= 16 * 1024 * 1024:
            raise TemplateThrow(f"read-chunk: offset {offset} / length {length} out of range")
        data = self.file_bytes(path)
        if data is None:
            raise TemplateThrow(f'Exception calling ".ctor": "Could not find file \'{path}\'."')
        chunk = bytearray(data[offset : offset + length])
        if self.corrupt_next_chunk and chunk:
            self.corrupt_next_chunk = False
            chunk[len(chunk) // 2] ^= 0xFF
        return {
            "path": path,
            "offset": offset,
            "length": len(chunk),
            "file_size": len(data),
            "eof": offset + len(chunk) >= len(data),
            "data": base64.b64encode(bytes(chunk)).decode("ascii"),
        }

    def _upload_chunk(self, params: dict[str, Any]) -> dict[str, Any]:
        path, offset = params["path"], int(params["offset"])
        existing = self.file_bytes(path) or b""
        if offset < 0 or offset > len(existing):
            raise TemplateThrow(
                f"upload-chunk: offset {offset} is beyond the end of '{path}' ({len(existing)} bytes)"
            )
        piece = base64.b64decode(params["data"])
        self.files[str(PureWindowsPath(path)).lower()] = existing[:offset] + piece
        return {
            "path": path,
            "offset": offset,
            "written": len(piece),
            "length": offset + len(piece),
            "chunk_sha256": hashlib.sha256(piece).hexdigest(),
        }

    def _list_dumps(self, params: dict[str, Any]) -> dict[str, Any]:
        dumps = []
        for kind, folder, pattern in (
            ("live", "LiveKernelReports", "**/*.dmp"),
            ("crash", "Minidump", "*.dmp"),
        ):
            root = self.sim.windows_dir / folder
            for local in sorted(root.glob(pattern)) if root.is_dir() else []:
                relative = PureWindowsPath(folder, *local.relative_to(root).parts)
                written = local.stat().st_mtime
                dumps.append(
                    {
                        "kind": kind,
                        "relative_name": str(relative),
                        "path": str(SYSTEM_ROOT / relative),
                        "report_type": relative.parts[1]
                        if kind == "live" and len(relative.parts) > 2
                        else "",
                        "size": local.stat().st_size,
                        "last_write_utc": _iso(written),
                        "last_write_unix": int(written),
                    }
                )
        memory_dump = self.sim.windows_dir / "MEMORY.DMP"  # list-dumps.ps1: the kernel memory dump too
        if memory_dump.is_file():
            written = memory_dump.stat().st_mtime
            dumps.append(
                {
                    "kind": "crash",
                    "relative_name": "MEMORY.DMP",
                    "path": str(SYSTEM_ROOT / "MEMORY.DMP"),
                    "report_type": "",
                    "size": memory_dump.stat().st_size,
                    "last_write_utc": _iso(written),
                    "last_write_unix": int(written),
                }
            )
        folders = {
            "live": str(SYSTEM_ROOT / "LiveKernelReports"),
            "minidump": str(SYSTEM_ROOT / "Minidump"),
            "memory_dump": str(SYSTEM_ROOT / "MEMORY.DMP"),
        }
        return {"folders": folders, "dumps": dumps, "warnings": []}

    def _restart_computer(self, params: dict[str, Any]) -> dict[str, Any]:
        delay = 2 if params.get("delay_seconds") is None else int(params["delay_seconds"])
        if not 0 <= delay <= 600:
            raise TemplateThrow(f"restart-computer: delay_seconds must be 0..600, not {delay}")
        self.restarts += 1
        self._restart_pending = True  # the answer leaves before the machine goes down
        return {"scheduled": True, "delay_seconds": delay, "output": ""}

    def _run_lkdctl(self, params: dict[str, Any]) -> dict[str, Any]:
        exe = params["exe_path"]
        if not PureWindowsPath(exe).is_absolute() or self.file_bytes(exe) is None:
            raise TemplateThrow(f"run-lkdctl: no program at '{exe}' (an absolute path is required)")
        arguments = [str(argument) for argument in params.get("arguments") or [] if argument is not None]
        if any(not argument or '"' in argument for argument in arguments):
            raise TemplateThrow("run-lkdctl: arguments must be non-empty and contain no double quote")
        user = params.get("run_as_user")
        if user:
            if not params.get("password"):
                raise TemplateThrow("run-lkdctl: run_as_user needs the account's password parameter")
            if self.accounts.get(user) != params["password"] or user == self.admin:
                raise TemplateThrow("Register-ScheduledTask: The user name or password is incorrect.")
            self.standard_user_runs.append(user)
        if self.lose_next_lkdctl:
            self.lose_next_lkdctl = False
            raise SessionError("command", self.host, "the connection was reset while the command ran")
        if self.hang_lkdctl_in > 0:
            self.hang_lkdctl_in -= 1
            hangs = self.hang_lkdctl_in == 0
        else:
            hangs = False
        if hangs:
            deadline = self.deadlines[-1][1] or 0.0
            message = f"no answer within the {deadline:g} s deadline"
            raise CommandTimeout(self.host, message, CommandResult(-1, b"", b""))
        input_path = None
        if params.get("input_base64") is not None:
            self._temp_files += 1
            input_path = (  # where run-lkdctl.ps1 writes it: a temp file, or the task's job folder
                f"C:\\ProgramData\\lkdh\\jobs\\{self._temp_files:032x}\\input.bin"
                if user
                else f"C:\\Users\\{self.admin}\\AppData\\Local\\Temp\\tmp{self._temp_files:04X}.tmp"
            )
            self.files[input_path.lower()] = base64.b64decode(params["input_base64"])
            arguments += ["--in-file", input_path]
        try:
            if self.driver_running:
                exit_code, line = self.lkdctl.run(arguments, self._lkdctl_read, elevated=not user)
            else:
                exit_code, line = lkdctl_failure("no_device_interface", win32_error=259)
        finally:
            if input_path is not None:
                self.files.pop(input_path.lower(), None)
        return {"exit_code": exit_code, "stdout": line, "stderr": "", "user": user or self.admin}

    def _lkdctl_read(self, path: str) -> bytes | None:
        try:
            return self.file_bytes(path)
        except TemplateThrow:
            return None


def _reply_header(operation: protocol.Operation, layout: protocol.Layout) -> dict[str, int]:
    return {
        "Magic": protocol.REPLY_MAGIC,
        "Version": protocol.PROTOCOL_VERSION,
        "Operation": int(operation),
        "TotalSize": layout.size,
    }


def _file_version(image: bytes) -> str:
    """VersionInfo.FileVersion of a PE image (its VS_FIXEDFILEINFO), read with pefile."""
    import pefile

    try:
        pe = pefile.PE(data=image)
    except pefile.PEFormatError:
        return ""
    for info in getattr(pe, "VS_FIXEDFILEINFO", None) or []:
        ms, ls = info.FileVersionMS, info.FileVersionLS
        return f"{ms >> 16}.{ms & 0xFFFF}.{ls >> 16}.{ls & 0xFFFF}"
    return ""


def _version_tuple(text: str) -> tuple[int, int, int, int]:
    parts = [int(part) for part in text.split(".")] if text else [0, 0, 0, 0]
    return (parts[0], parts[1], parts[2], parts[3])


def _absent_device() -> dict[str, Any]:
    return {"present": False, "instance_id": "", "status": "", "problem_code": -1, "problem": "not present"}


class WindowsDoubleSession:
    """One connection to the double, in the shape of a RemoteSession (no network underneath)."""

    def __init__(self, vm: WindowsVmDouble, host: str) -> None:
        self.vm, self.host, self.closed = vm, host, False

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes = b"",
        timeout: float,
        on_output: Callable[[str, bytes], None] | None = None,
    ) -> CommandResult:
        if self.closed:
            raise SessionError("shell", self.host, "the session was closed")
        assert timeout > 0, "test double: every remote call needs a deadline"
        result = self.vm.answer(argv, stdin, timeout)
        if on_output is not None and result.stdout:
            on_output("stdout", result.stdout)
        return result

    def close(self) -> None:
        self.closed = True


class WindowsDoubleSessions:
    """A SessionOpener whose sessions reach the double; the WinRM logon is checked against its
    accounts with the password the config's reference resolves to. SSH sessions answer commands the
    same way but offer no SFTP: configs under test here use the chunked WinRM transfer."""

    def __init__(self, vm: WindowsVmDouble) -> None:
        self.vm = vm
        self.opened: list[str] = []

    def winrm(self, host: str, settings: WinRMSettings) -> WindowsDoubleSession:
        if host != self.vm.host:
            raise SessionError("resolve", host, "no such host")
        password = settings.password.resolve().get_secret_value() if settings.password else None
        self.vm.logon(settings.username, password)
        self.opened.append("winrm")
        return WindowsDoubleSession(self.vm, host)

    def ssh(self, host: str, settings: SshSettings, *, posix: bool = False) -> WindowsDoubleSession:
        self.opened.append("ssh")
        return WindowsDoubleSession(self.vm, host)

"""lkdctl.exe for real: built with mingw-w64, Authenticode-signed with osslsigncode, run under wine.

Wine gives the tool a real Win32 world: SetupDi enumerates device interfaces (wine's own HID
devices are present, the test driver's are not), CreateFileW fails with real Win32 errors, and
NtDeviceIoControlFile reaches a real driver whose I/O manager enforces the access bits of an IOCTL
code. So these tests prove lkdctl's JSON and exit codes, the pointer patching the harness relies on
for IOCTL_LIVEKERNELDUMP_CREATE, that the exact NTSTATUS passes through, and that a read-only
handle is refused the control IOCTLs that need write access (F26's mechanism). One wine prefix
serves the whole session because wine's first start is slow.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from signing import SigningIdentity, make_identity, osslsigncode, require, sign

from harness.target import lkd_ioctl
from harness.target.windows import lkdctl as L
from harness.target.windows import protocol as P

REPO = Path(__file__).resolve().parents[1]
MINGW = "x86_64-w64-mingw32-gcc"
GUID_DEVINTERFACE_HID = uuid.UUID("4d1e55b2-f16f-11cf-88cb-001111000030")
IOCTL_HID_GET_COLLECTION_INFORMATION = 0x000B01A8  # CTL_CODE(FILE_DEVICE_KEYBOARD, 106, BUFFERED, ANY)
STATUS_ACCESS_DENIED = 0xC0000022
ERROR_FILE_NOT_FOUND = 2
ERROR_PATH_NOT_FOUND = 3
ERROR_NO_MORE_ITEMS = 259


@pytest.fixture(scope="session")
def lkdctl_exe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """lkdctl.exe built by driver/lkdctl/Makefile, the way a developer builds it."""
    compiler = require(MINGW, "gcc-mingw-w64-x86-64")
    make = require("make", "make")
    exe = tmp_path_factory.mktemp("lkdctl") / "lkdctl.exe"
    command = [make, "-s", "-C", str(REPO / "driver" / "lkdctl"), f"CC={compiler}", f"OUT={exe}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return exe


@pytest.fixture(scope="session")
def signing_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("signing")


@pytest.fixture(scope="session")
def identity(signing_folder: Path) -> SigningIdentity:
    return make_identity(signing_folder, "lkdh-test-code-signing")


@pytest.fixture(scope="session")
def signed_lkdctl(lkdctl_exe: Path, identity: SigningIdentity, signing_folder: Path) -> Path:
    return sign(lkdctl_exe, identity, signing_folder / "lkdctl-signed.exe")


def test_signed_lkdctl_verifies_against_its_certificate(
    signed_lkdctl: Path, identity: SigningIdentity
) -> None:
    result = osslsigncode("verify", "-CAfile", identity.certificate, "-in", signed_lkdctl)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Signature verification: ok" in result.stdout


def test_a_tampered_copy_fails_verification(
    signed_lkdctl: Path, identity: SigningIdentity, tmp_path: Path
) -> None:
    image = bytearray(signed_lkdctl.read_bytes())
    image[0x1000] ^= 0xFF  # a byte of code, well inside the hashed part of the image
    tampered = tmp_path / "tampered.exe"
    tampered.write_bytes(image)
    result = osslsigncode("verify", "-CAfile", identity.certificate, "-in", tampered)
    assert result.returncode != 0
    assert "MISMATCH" in result.stdout


def test_a_signature_by_an_untrusted_certificate_fails_verification(
    lkdctl_exe: Path, identity: SigningIdentity, tmp_path: Path
) -> None:
    stranger = make_identity(tmp_path, "someone-else")
    signed = sign(lkdctl_exe, stranger, tmp_path / "stranger-signed.exe")
    result = osslsigncode("verify", "-CAfile", identity.certificate, "-in", signed)
    assert result.returncode != 0
    assert "Signature verification: ok" not in result.stdout


# --- under wine ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    exit_code: int
    stdout: bytes
    stderr: bytes

    def json(self) -> dict:
        return json.loads(self.stdout)


@dataclass(frozen=True)
class Wine:
    """One wine prefix running the signed lkdctl.exe."""

    exe: Path
    env: dict[str, str] = field(repr=False)

    def run(self, *arguments: str, stdin: bytes = b"", timeout: float = 120) -> Run:
        command = ["wine", str(self.exe), *arguments]
        result = subprocess.run(
            command, input=stdin, capture_output=True, env=self.env, timeout=timeout, check=False
        )
        return Run(result.returncode, result.stdout, result.stderr)

    def call(self, call: L.LkdctlCall, *extra: str) -> Run:
        """Run an argv built by lkdctl.lkdctl_call, as the Windows target does over its session."""
        assert call.argv[0] == "lkdctl.exe"
        return self.run(*call.argv[1:], *extra, stdin=call.stdin)


def _wine_prefix(signed_lkdctl: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wine]:
    """A fresh prefix with a persistent wineserver, booted once with its output detached: wine's
    helper processes would otherwise inherit each call's pipes and hold every call open for seconds."""
    require("wine", "wine")
    wineserver = require("wineserver", "wine")
    # Only what wine needs: the harness's credentials live in the environment and stay out of it.
    kept = ("PATH", "HOME", "USER", "LANG", "TMPDIR")
    env = {name: os.environ[name] for name in kept if name in os.environ}
    env.update(
        WINEPREFIX=str(tmp_path_factory.mktemp("wineprefix")),
        WINEDEBUG="-all",
        WINEDLLOVERRIDES="mscoree,mshtml=",  # no Mono/Gecko installer on first start
    )
    detached = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    subprocess.run([wineserver, "-p"], env=env, timeout=60, check=True, **detached)
    try:
        subprocess.run(["wine", "wineboot", "--init"], env=env, timeout=300, check=True, **detached)
        yield Wine(signed_lkdctl, env)
    finally:
        subprocess.run([wineserver, "-k"], env=env, timeout=60, check=False, **detached)


@pytest.fixture(scope="session")
def wine(signed_lkdctl: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wine]:
    yield from _wine_prefix(signed_lkdctl, tmp_path_factory)


@pytest.fixture(scope="session")
def wine_for_devices(signed_lkdctl: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wine]:
    """A prefix of its own for --install-device: devnodes it registers stay out of the IOCTL tests."""
    yield from _wine_prefix(signed_lkdctl, tmp_path_factory)


def test_version_names_the_protocol_of_the_header(wine: Wine) -> None:
    run = wine.run("--version")
    assert run.exit_code == 0
    assert run.json() == {"lkdctl": "1.1.0", "protocol": P.PROTOCOL_VERSION}


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        (["--in", "00"], "--ioctl is required"),
        (["--ioctl", "0x22A400", "--in", "abc"], "even number of hex digits"),
        (["--ioctl", "1", "--guid", "not-a-guid"], "--guid must look like"),
        (["--ioctl", "1", "--in", "00", "--pointer", "0=0", "--user-data", "aa"], "lies outside the input"),
    ],
)
def test_bad_arguments_give_a_usage_error(wine: Wine, arguments: list[str], complaint: str) -> None:
    run = wine.run(*arguments)
    assert run.exit_code == L.LKDCTL_EXIT_CODES["bad_arguments"]
    with pytest.raises(L.LkdctlError, match=complaint) as raised:
        L.parse_lkdctl_output(run.stdout, run.exit_code)
    assert raised.value.kind == "bad_arguments"
    assert b"usage: lkdctl" in run.stderr


def test_no_test_driver_means_no_device_interface(wine: Wine) -> None:
    """The real SetupDi path: the control interface GUID (the default) has no present device."""
    run = wine.call(L.control_call("lkdctl.exe", P.pack_info()))
    assert run.exit_code == L.LKDCTL_EXIT_CODES["no_device_interface"]
    assert run.json() == {
        "error": "no_device_interface",
        "guid": str(P.CONTROL_INTERFACE_GUID),
        "win32_error": ERROR_NO_MORE_ITEMS,
    }
    with pytest.raises(L.LkdctlError) as raised:
        L.parse_lkdctl_output(run.stdout, run.exit_code)
    assert raised.value.kind == "no_device_interface"


def test_open_failure_reports_the_win32_error(wine: Wine) -> None:
    run = wine.run("--ioctl", "0x22241C", "--path", r"\\.\LkdhNoSuchDevice")
    assert run.exit_code == L.LKDCTL_EXIT_CODES["open_failed"]
    assert run.json() == {
        "error": "open_failed",
        "path": r"\\.\LkdhNoSuchDevice",
        "read_only": False,
        "win32_error": ERROR_FILE_NOT_FOUND,
    }


def test_unreadable_input_file(wine: Wine) -> None:
    run = wine.run("--ioctl", "1", "--in-file", r"C:\lkdh\no\such\input.bin")
    assert run.exit_code == L.LKDCTL_EXIT_CODES["input_unreadable"]
    assert run.json()["win32_error"] == ERROR_PATH_NOT_FOUND


def test_user_memory_pointers_are_written_into_the_input(wine: Wine) -> None:
    """The harness's layout for IOCTL_LIVEKERNELDUMP_CREATE, through stdin, patched by lkdctl."""
    user_input = L.livekerneldump_create_in_user_memory(
        0x1A2, 0x55, 0, [(0xFFFF_9A00_0000_0010, 16), (0xFFFF_9A00_0000_0100, 32)], b"secondary!"
    )
    call = L.lkdctl_call("lkdctl.exe", lkd_ioctl.IOCTL_LIVEKERNELDUMP_CREATE, user_input, out_size=0)
    run = wine.call(call, "--dry-run")
    assert run.exit_code == 0, run.stdout
    reply = run.json()
    assert reply["ioctl"] == "0x0022CB00" and reply["user_data_size"] == len(user_input.user_data) == 34
    base = int(reply["user_data_address"], 16)
    sent = bytes.fromhex(reply["input"])
    fields = P.LIVEKERNELDUMP_CREATE_INPUT.unpack(sent)
    assert base != 0
    assert fields["ArrayOfClientStructures"] == base
    assert fields["SecondaryDataBuffer"] == base + 24  # after two 12-byte LIVEKERNELDUMP_CLIENT_STRUCTUREs
    assert fields["BugCheckCode"] == 0x1A2 and fields["BugCheckParameter"] == 0x55
    assert fields["NumberOfClientStructures"] == 2 and fields["SizeOfSecondaryData"] == 10


def hid_call(ioctl: int, data: bytes, *, out_size: int, read_only: bool = False) -> L.LkdctlCall:
    return L.lkdctl_call(
        "lkdctl.exe", ioctl, data, out_size=out_size, guid=GUID_DEVINTERFACE_HID, read_only=read_only
    )


@pytest.fixture(scope="session")
def hid_collection(wine: Wine) -> L.LkdctlReply:
    """IOCTL_HID_GET_COLLECTION_INFORMATION on wine's first HID device, sent by lkdctl."""
    run = wine.call(hid_call(IOCTL_HID_GET_COLLECTION_INFORMATION, b"", out_size=64))
    if run.exit_code == L.LKDCTL_EXIT_CODES["no_device_interface"]:
        pytest.skip("this wine prefix offers no HID device interface to send a real IOCTL to")
    return L.parse_lkdctl_output(run.stdout, run.exit_code)


def test_an_ioctl_reaches_a_real_device_and_its_output_comes_back(hid_collection: L.LkdctlReply) -> None:
    """HID_COLLECTION_INFORMATION is 12 bytes: DescriptorSize u32, Polled, Reserved, VID, PID, version."""
    assert hid_collection.ntstatus == 0
    assert hid_collection.information == 12 and len(hid_collection.output) == 12
    descriptor_size, _polled, _reserved, vendor, _product, _version = struct.unpack(
        "<IBBHHH", hid_collection.output
    )
    assert descriptor_size > 0 and vendor != 0


def test_a_read_only_handle_is_refused_control_ioctls_that_need_write_access(
    wine: Wine, hid_collection: L.LkdctlReply
) -> None:
    """The I/O manager checks an IOCTL code's access bits against the handle (F26's mechanism):
    ALLOC is FILE_WRITE_ACCESS, INFO is FILE_ANY_ACCESS; the exact NTSTATUS comes back."""

    def status(request: P.ControlRequest, read_only: bool) -> int:
        call = hid_call(request.ioctl, request.data, out_size=request.reply_size, read_only=read_only)
        run = wine.call(call)
        return L.parse_lkdctl_output(run.stdout, run.exit_code).ntstatus

    alloc, info = P.pack_alloc(0, 64, b"\xa5"), P.pack_info()
    assert status(alloc, read_only=True) == STATUS_ACCESS_DENIED
    assert status(alloc, read_only=False) != STATUS_ACCESS_DENIED  # reaches the HID driver, which refuses it
    assert status(info, read_only=True) != STATUS_ACCESS_DENIED


# --- lkdctl's output, parsed --------------------------------------------------------------------


def test_a_reply_line_parses_into_a_typed_result() -> None:
    line = b'{"ntstatus":"0xC0000023","information":3,"output":"0a0b0c"}\r\n'
    assert L.parse_lkdctl_output(line, 0) == L.LkdctlReply(0xC0000023, 3, b"\x0a\x0b\x0c")


@pytest.mark.parametrize(
    ("stdout", "exit_code", "reason"),
    [
        ("", 0, "expected one JSON line, got 0"),
        ('{"ntstatus":"0x0","information":0,"output":""}\n{}', 0, "got 2"),
        ("wine: could not load kernel32.dll", 0, "not JSON"),
        ("[1, 2]", 0, "not a JSON object"),
        ('{"ntstatus":"0","information":0,"output":""}', 0, "ntstatus '0'"),
        ('{"ntstatus":"0x00000000","information":-1,"output":""}', 0, "information -1"),
        ('{"ntstatus":"0x00000000","information":true,"output":""}', 0, "information True"),
        ('{"ntstatus":"0x00000000","information":1,"output":"abc"}', 0, "not hexadecimal"),
        ('{"ntstatus":"0x00000000","information":1,"output":"aabb"}', 0, "2 output bytes but information 1"),
        ('{"ntstatus":"0x00000000","information":0,"output":""}', 5, "exit code 5 with a success line"),
        ('{"error":"exploded"}', 7, "unknown error kind"),
        ('{"error":"open_failed","win32_error":5}', 4, "'open_failed' with exit code 4"),
    ],
)
def test_malformed_output_is_named_as_such(stdout: str, exit_code: int, reason: str) -> None:
    with pytest.raises(L.LkdctlError, match=reason) as raised:
        L.parse_lkdctl_output(stdout, exit_code)
    assert raised.value.kind == "malformed_output"


def test_input_travels_on_stdin_never_on_the_command_line() -> None:
    """Windows caps a command line at 8191 characters; the argv stays the same size for any input."""
    big = P.pack_alloc(1, 4096, bytes(range(256)) * 200)
    call = L.control_call(r"C:\lkdh\lkdctl.exe", big)
    assert call.stdin == big.data and len(big.data) > 50_000
    assert call.argv == (
        r"C:\lkdh\lkdctl.exe",
        "--ioctl",
        "0x0022A400",
        "--in-file",
        "-",
        "--out-size",
        str(P.REPLY.size),
    )


# --- --install-device: the root-enumerated test device, created through SetupDi under wine ------


@pytest.fixture(scope="session")
def wine_package(identity: SigningIdentity, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real package (tests/driver_package.py), its models section undecorated by an OS build:
    wine 8 reports Windows 7 (or 10.0.18362 as "win10") and, like Setup, offers no driver from a
    `NTamd64.10.0...19041` section on an older OS, so the shipped floor is checked by the package
    preflight tests instead."""
    from driver_package import build_package

    inf = build_package(tmp_path_factory.mktemp("wine-package") / "LkdhTestDriver", identity).inf
    inf.write_text(inf.read_text().replace("NTamd64.10.0...19041", "NTamd64"), encoding="ascii")
    return inf


def wine_path(path: Path) -> str:
    """A host path as a Windows program under wine names it (drive Z: is the host's root)."""
    return "Z:" + str(path).replace("/", "\\")


def root_devices(wine: Wine, hardware_id: str) -> list[str]:
    """ROOT devnodes whose HardwareID is `hardware_id`, read back from wine's registry with reg.exe."""
    listing = subprocess.run(
        ["wine", "reg", "query", r"HKLM\System\CurrentControlSet\Enum\ROOT", "/s"],
        capture_output=True, text=True, env=wine.env, timeout=120, check=False,
    )  # fmt: skip
    found, key = [], ""
    for line in listing.stdout.splitlines():
        if line.startswith("HKEY_"):
            key = line.strip()
        elif "HardwareID" in line and line.split()[-1].lower() == hardware_id.lower():
            found.append(key.rsplit("\\", 2)[-2] + "\\" + key.rsplit("\\", 1)[-1])
    return found


def test_install_device_creates_the_root_devnode_once(wine_for_devices: Wine, wine_package: Path) -> None:
    """devcon's calls (SetupDiCreateDeviceInfo, DIF_REGISTERDEVICE, UpdateDriverForPlugAndPlayDevices):
    the first run registers ROOT\\SYSTEM\\NNNN with the hardware id; a second finds it, creates none."""
    hardware_id = r"Root\LkdhTestDriver"
    assert root_devices(wine_for_devices, hardware_id) == []
    first = wine_for_devices.run("--install-device", wine_path(wine_package), hardware_id)
    assert first.exit_code == 0, first.stdout
    created = first.json()
    assert created["device"] == "created" and created["instance_id"].startswith("ROOT\\SYSTEM\\")
    assert root_devices(wine_for_devices, hardware_id) == [created["instance_id"].removeprefix("ROOT\\")]
    second = wine_for_devices.run("--install-device", wine_path(wine_package), hardware_id).json()
    assert second == created | {"device": "existing"}
    assert len(root_devices(wine_for_devices, hardware_id)) == 1, "idempotent: no second devnode"


def test_install_device_refuses_a_hardware_id_the_inf_does_not_offer(
    wine_for_devices: Wine, wine_package: Path
) -> None:
    run = wine_for_devices.run("--install-device", wine_path(wine_package), r"Root\NotInTheInf")
    assert run.exit_code == L.LKDCTL_EXIT_CODES["device_install_failed"]
    assert run.json()["step"] == "no_driver_for_hardware_id"
    assert root_devices(wine_for_devices, r"Root\NotInTheInf") == [], "nothing was registered"


def test_install_device_names_a_missing_inf(wine_for_devices: Wine) -> None:
    run = wine_for_devices.run("--install-device", r"C:\lkdh\no\such.inf", r"Root\LkdhTestDriver")
    assert run.exit_code == 8
    assert run.json() == {"error": "device_install_failed", "step": "inf_not_found", "win32_error": 2}
    usage = wine_for_devices.run("--install-device", "only-one-argument")
    assert usage.exit_code == 2 and "exactly INF_PATH HARDWARE_ID" in usage.json()["message"]

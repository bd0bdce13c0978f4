"""driver/LkdhTestDriver/Config.c, compiled and run: the test driver's module configuration from its
registry parameters (lkdh_control.h, "Module configuration from the registry").

No WDK runs here, so Config.c is compiled against tests/wdk_shim (the few kernel and KMDF
declarations it uses, with the documented signatures and status values): with mingw-w64 for the
Windows ABI (-Wall -Wextra -Wpedantic -Werror), and with the host compiler (-fshort-wchar, so WCHAR is
16 bits as on Windows) linked to tests/wdk_shim/registry_table.c, whose WDF registry methods answer
from a table as their documentation says. So the reading and validation logic runs for real.
Unverified: the real WDK headers (SAL, the KMDF function table behind each Wdf* call), that
WdfDeviceOpenRegistryKey opens "Device Parameters" on a real device, and RtlGUIDFromString itself
(the shim implements its documented braced format).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from required_tools import require_tool

from harness.target.windows import protocol as P

REPO = Path(__file__).resolve().parents[1]
SHIM = REPO / "tests" / "wdk_shim"
CONFIG_C = REPO / "driver" / "LkdhTestDriver" / "Config.c"
INCLUDES = [f"-I{REPO / 'driver' / 'include'}", f"-I{SHIM}"]
DEFAULTS = {
    "report_type": "LkdhTestDriver",
    "guid_device_interface": str(P.MODULE_INTERFACE_GUID),
    "guid_secondary_data": str(P.SECONDARY_DATA_GUID),
    "include_dmf_data": 0,
}


@pytest.fixture(scope="module")
def registry_table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    compiler = shutil.which("cc") or require_tool("gcc", install="Debian: apt-get install gcc")
    exe = tmp_path_factory.mktemp("config") / "registry_table"
    command = [compiler, "-std=c11", "-Wall", "-Wextra", "-Werror", "-fshort-wchar", *INCLUDES]
    command += ["-o", str(exe), str(SHIM / "registry_table.c"), str(CONFIG_C)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return exe


def read(exe: Path, *values: str) -> dict:
    run = subprocess.run([str(exe), *values], capture_output=True, text=True, timeout=30, check=True)
    return json.loads(run.stdout)


def test_config_c_compiles_warning_free_for_windows(tmp_path: Path) -> None:
    mingw = require_tool("x86_64-w64-mingw32-gcc", install="Debian: apt-get install gcc-mingw-w64-x86-64")
    strict = ["-std=c11", "-Wall", "-Wextra", "-Wpedantic", "-Wshadow", "-Werror"]
    command = [mingw, *strict, *INCLUDES, "-c", str(CONFIG_C), "-o", str(tmp_path / "Config.o")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr


def test_without_values_or_key_the_built_in_configuration_stands(registry_table: Path) -> None:
    empty = read(registry_table)
    assert {key: empty[key] for key in DEFAULTS} == DEFAULTS
    assert (empty["from_registry"], empty["rejected"], empty["key_status"], empty["key_closed"]) == (
        0,
        0,
        0,
        1,
    )
    no_key = read(registry_table, "--no-key")
    assert {key: no_key[key] for key in DEFAULTS} == DEFAULTS
    assert no_key["key_status"] == 0xC0000034 and no_key["key_closed"] == 0  # nothing opened, nothing closed


def test_valid_values_are_taken_and_reported(registry_table: Path) -> None:
    got = read(
        registry_table,
        "ReportType=sz:LkdhShortType",
        "GuidDeviceInterface=sz:{00000000-0000-0000-0000-000000000000}",
        "GuidSecondaryData=sz:{6B1F5A0E-8C1D-4C35-9A57-4C4B444800AA}",
        "IncludeDmfDataInBugCheckTriageDump=dword:1",
    )
    assert got["report_type"] == "LkdhShortType"
    assert got["guid_device_interface"] == "00000000-0000-0000-0000-000000000000"
    assert got["guid_secondary_data"] == "6b1f5a0e-8c1d-4c35-9a57-4c4b444800aa"
    assert got["include_dmf_data"] == 1
    everything = P.CONFIG_REPORT_TYPE | P.CONFIG_GUID_DEVICE_INTERFACE | P.CONFIG_GUID_SECONDARY_DATA
    assert (got["from_registry"], got["rejected"]) == (everything | P.CONFIG_INCLUDE_DMF_DATA, 0)


@pytest.mark.parametrize(
    ("value", "bit"),
    [
        ("ReportType=sz:", P.CONFIG_REPORT_TYPE),  # 0 characters
        ("ReportType=sz:sixteen-chars-xx", P.CONFIG_REPORT_TYPE),  # 16: lkmdtel's limit is 15 (F05)
        ("ReportType=sz:bad/name", P.CONFIG_REPORT_TYPE),  # not a folder name (F09)
        ("ReportType=sz:trailing.", P.CONFIG_REPORT_TYPE),
        ("ReportType=dword:7", P.CONFIG_REPORT_TYPE),  # wrong type
        (
            "GuidDeviceInterface=sz:6b1f5a0e-8c1d-4c35-9a57-4c4b44480002",
            P.CONFIG_GUID_DEVICE_INTERFACE,
        ),  # no braces
        ("GuidSecondaryData=sz:{6b1f5a0e-8c1d-4c35-9a57-4c4b4448000g}", P.CONFIG_GUID_SECONDARY_DATA),
        ("GuidSecondaryData=sz:{6b1f5a0e-8c1d-4c35-9a57-4c4b44480001}x", P.CONFIG_GUID_SECONDARY_DATA),
        ("IncludeDmfDataInBugCheckTriageDump=dword:2", P.CONFIG_INCLUDE_DMF_DATA),
        ("IncludeDmfDataInBugCheckTriageDump=sz:1", P.CONFIG_INCLUDE_DMF_DATA),
    ],
)
def test_an_invalid_value_keeps_the_default_and_is_reported(
    registry_table: Path, value: str, bit: int
) -> None:
    got = read(registry_table, value)
    assert {key: got[key] for key in DEFAULTS} == DEFAULTS
    assert (got["from_registry"], got["rejected"]) == (0, bit)


def test_fifteen_characters_are_the_longest_report_type(registry_table: Path) -> None:
    got = read(registry_table, "ReportType=sz:fifteen-chars-x")
    assert (got["report_type"], got["from_registry"]) == ("fifteen-chars-x", P.CONFIG_REPORT_TYPE)


CASES = [
    (),
    ("ReportType=sz:LkdhShortType", "IncludeDmfDataInBugCheckTriageDump=dword:1"),
    ("ReportType=sz:sixteen-chars-xx", "GuidSecondaryData=sz:{00000000-0000-0000-0000-000000000000}"),
    ("ReportType=sz:a|b", "GuidDeviceInterface=sz:{6b1f5a0e-8c1d-4c35-9a57-4c4b444800aa}"),
    ("ReportType=sz: ", "GuidDeviceInterface=sz:6b1f5a0e-8c1d-4c35-9a57-4c4b444800aa"),
    ("IncludeDmfDataInBugCheckTriageDump=dword:2", "ReportType=dword:1", "GuidSecondaryData=dword:0"),
]


@pytest.mark.parametrize("values", CASES, ids=range(len(CASES)))
def test_the_windows_double_reads_parameters_as_config_c_does(
    registry_table: Path, tmp_path: Path, values: tuple[str, ...]
) -> None:
    """The double (windows_double_parameters.py) must be no kinder than the driver it stands for."""
    from windows_double_parameters import DeviceParameters

    from harness.target.sim import SimSettings, SimulatedMachine

    with SimulatedMachine(tmp_path / "vm", SimSettings(verifier=False)) as sim:
        double = DeviceParameters(sim)
        for spec in values:
            name, _, typed = spec.partition("=")
            kind, _, data = typed.partition(":")
            double.values[name] = (
                {"type": "String", "data": data} if kind == "sz" else {"type": "DWord", "data": int(data, 0)}
            )
        start = double.read()
    driver = read(registry_table, *values)
    assert (start.from_registry, start.rejected) == (driver["from_registry"], driver["rejected"])
    assert start.module.report_type == driver["report_type"]
    assert str(start.module.device_interface_guid) == driver["guid_device_interface"]
    assert str(start.module.secondary_data_guid) == driver["guid_secondary_data"]
    assert int(start.module.include_dmf_data_in_bugcheck_dump) == driver["include_dmf_data"]

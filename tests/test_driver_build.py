"""driver/build.ps1 and LkdhTestDriver.vcxproj cannot run here (no WDK, no PowerShell): their text is
checked instead, with the tree-sitter PowerShell grammar the template tests use and an XML parser,
for the steps the issue requires (DMF at the pinned commit, WPP Recorder, stampinf, InfVerif,
Inf2Cat, SignTool on .sys and .cat, the version stamp)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import pytest
from test_powershell import syntax_errors

REPO = Path(__file__).resolve().parents[1]
DRIVER = REPO / "driver"
BUILD = (DRIVER / "build.ps1").read_text(encoding="utf-8")
MSBUILD = "{http://schemas.microsoft.com/developer/msbuild/2003}"


@pytest.fixture(scope="module")
def parser() -> Any:
    import tree_sitter_language_pack  # a dev dependency (pyproject.toml)

    return tree_sitter_language_pack.get_parser("powershell")


def test_build_script_parses(parser: Any) -> None:
    assert syntax_errors(parser, BUILD) == []


def test_build_script_runs_every_required_step() -> None:
    for tool in ("infverif.exe", "Inf2Cat.exe", "signtool.exe", "DmfK.vcxproj", "New-SelfSignedCertificate"):
        assert tool in BUILD, tool
    assert re.search(r"foreach \(\$file in @\('LkdhTestDriver\.sys', 'LkdhTestDriver\.cat'\)\)", BUILD)
    assert "'sign', '/fd', 'sha256'" in BUILD
    assert "lkdh-package.json" in BUILD and "sys_sha256" in BUILD and "dmf_commit" in BUILD


def test_build_script_pins_the_commit_the_driver_reports() -> None:
    pinned = re.search(r"\[string\]\$DmfCommit = '([0-9a-f]{40})'", BUILD)
    header = re.search(
        r'#define LKDH_DMF_COMMIT "([0-9a-f]{40})"', (DRIVER / "LkdhTestDriver" / "LkdhVersion.h").read_text()
    )
    assert pinned and header and pinned[1] == header[1]


def test_the_project_enables_wpp_recorder_and_stamps_the_inf() -> None:
    project = ElementTree.parse(DRIVER / "LkdhTestDriver" / "LkdhTestDriver.vcxproj").getroot()
    compile_settings = project.find(f".//{MSBUILD}ItemDefinitionGroup/{MSBUILD}ClCompile")
    assert compile_settings is not None
    assert compile_settings.findtext(f"{MSBUILD}WppEnabled") == "true"
    assert compile_settings.findtext(f"{MSBUILD}WppRecorderEnabled") == "true"
    assert "LKDH_STAMPED" in (compile_settings.findtext(f"{MSBUILD}PreprocessorDefinitions") or "")
    assert project.findtext(f".//{MSBUILD}Inf/{MSBUILD}TimeStamp") == "$(LkdhDriverVersion)"
    sources = {item.get("Include") for item in project.iter(f"{MSBUILD}ClCompile") if item.get("Include")}
    assert sources == {path.name for path in (DRIVER / "LkdhTestDriver").glob("*.c")}

"""The VM knows its known defects: the DMF build it runs comes from the target config, is checked
against the driver package's stamp (lkdh-package.json's dmf_commit) and the driver's own INFO reply,
and the VM reports that build's defects from the table the simulator's profiles read (dmf_builds.py).

The VM is the simulator-backed double of tests/windows_double.py (its INFO reply says DMF bfac434).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from driver_package import BuiltPackage
from signing import SigningIdentity
from test_windows_machine import SHIPPED, build_lab

from harness.runner import run_scenario
from harness.scenario import load_scenario_file
from harness.target.defects import KNOWN_DEFECTS
from harness.target.dmf_builds import DMF_BUILDS, build_of_commit
from harness.target.sim.profiles import PROFILES
from harness.target.windows.config import DriverSettings
from harness.target.windows.driver_build import (
    STAMP_FILE,
    DriverBuildError,
    declared_build,
    reported_build,
    stamped_commit,
)
from harness.target_config import TargetConfigErrors, load_target_config

BFAC434 = DMF_BUILDS["bfac434"].commit


def restamp(package: Path, commit: str) -> None:
    """Set the package stamp's dmf_commit (driver/README.md: lkdh-package.json), keeping the rest."""
    path = package / STAMP_FILE
    document = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"format": 1}
    document["dmf_commit"] = commit
    path.write_text(json.dumps(document), encoding="utf-8")


UNLISTED = "0123456789abcdef0123456789abcdef01234567"


def driver(tmp_path: Path, stamp: str | None = None, dmf_build: str | None = None) -> DriverSettings:
    package = tmp_path / "package"
    package.mkdir(parents=True, exist_ok=True)
    if stamp is not None:
        restamp(package, stamp)
    return DriverSettings(
        package=package,
        hardware_id="Root\\LkdhTestDriver",
        lkdctl=tmp_path / "lkdctl.exe",
        dmf_build=dmf_build,
    )


def test_the_simulator_and_the_vm_read_one_table() -> None:
    assert PROFILES["dmf-bfac434"].defects is DMF_BUILDS["bfac434"].defects
    assert DMF_BUILDS["bfac434"].defects == frozenset(KNOWN_DEFECTS)
    assert build_of_commit("BFAC434") is DMF_BUILDS["bfac434"]
    assert build_of_commit(BFAC434) is DMF_BUILDS["bfac434"]
    assert build_of_commit("bfac43") is None, "six digits are too few to name a commit"
    assert build_of_commit(UNLISTED) is None


@pytest.mark.parametrize("stamp", [BFAC434 + "\n", "bfac434\r\n", BFAC434.upper()])
def test_a_declared_build_agrees_with_its_stamp(tmp_path: Path, stamp: str) -> None:
    build = declared_build(driver(tmp_path, stamp, "bfac434"))
    assert build is not None and build.build is DMF_BUILDS["bfac434"] and build.commit == BFAC434
    assert build.defects == frozenset(KNOWN_DEFECTS)


def test_a_stamp_of_another_dmf_contradicts_the_declaration(tmp_path: Path) -> None:
    with pytest.raises(DriverBuildError) as caught:
        declared_build(driver(tmp_path, UNLISTED, "bfac434"))
    assert f"declares DMF build bfac434 ({BFAC434})" in str(caught.value)
    assert f"{STAMP_FILE} says {UNLISTED}" in str(caught.value)


@pytest.mark.parametrize("text", ["", "bfac43", "not a commit", BFAC434 + "00"])
def test_a_malformed_stamp_is_an_error_naming_the_file(tmp_path: Path, text: str) -> None:
    with pytest.raises(DriverBuildError, match=f"{STAMP_FILE} should hold one DMF commit"):
        stamped_commit(driver(tmp_path, text).package)


def test_without_a_declaration_the_stamp_says_and_an_unlisted_commit_has_no_known_defects(
    tmp_path: Path,
) -> None:
    listed = declared_build(driver(tmp_path / "a", "bfac434"))
    assert listed is not None and listed.label == "bfac434" and listed.source == f"package stamp {STAMP_FILE}"
    unlisted = declared_build(driver(tmp_path / "b", UNLISTED))
    assert unlisted is not None and unlisted.defects == frozenset()
    assert unlisted.label == "unlisted 0123456789ab"
    assert declared_build(driver(tmp_path / "c")) is None


def test_a_declaration_without_a_stamp_is_trusted_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    build = declared_build(driver(tmp_path, None, "bfac434"))
    assert build is not None and build.source == "target config (driver.dmf_build)"
    assert f"has no {STAMP_FILE}; trusting driver.dmf_build = bfac434" in caplog.text


def test_the_drivers_report_must_name_the_same_commit(tmp_path: Path) -> None:
    build = declared_build(driver(tmp_path, None, "bfac434"))
    assert build is not None
    build.check_reported("bfac434")
    build.check_reported(BFAC434)
    with pytest.raises(DriverBuildError, match="the driver on the VM reports DMF commit '0123456'"):
        build.check_reported("0123456")
    with pytest.raises(DriverBuildError, match=r"reports DMF commit '\(none\)'"):
        build.check_reported("")
    assert reported_build("bfac434").build is DMF_BUILDS["bfac434"]
    with pytest.raises(DriverBuildError, match="cannot tell which DMF build"):
        reported_build("")


def test_an_unknown_build_name_in_the_config_is_an_error_at_its_line(tmp_path: Path) -> None:
    config = tmp_path / "vm.yaml"
    config.write_text(
        "name: vm\nhost: vm.example.test\nwinrm: {username: u, password: {env: P}}\n"
        "driver:\n  package: p\n  hardware_id: Root\\\\X\n  lkdctl: l.exe\n  dmf_build: bfac435\n"
    )
    with pytest.raises(TargetConfigErrors) as caught:
        load_target_config(config)
    assert f"{config}:8:14" in str(caught.value)
    assert "'bfac435' is no listed DMF build; listed: bfac434" in str(caught.value)


# -- the VM target --------------------------------------------------------------------------------


def test_the_vm_reports_the_defects_of_the_build_its_driver_runs(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    packages: dict[str, BuiltPackage],
    identity: SigningIdentity,
) -> None:
    lab = build_lab(tmp_path, monkeypatch, packages, identity)
    restamp(lab.build / "LkdhTestDriver", BFAC434)
    lab.machine.prepare()
    info = lab.machine.driver_info()
    assert info.known_defects == frozenset(KNOWN_DEFECTS)
    assert (info.facts["dmf_build"], info.facts["dmf_build_source"]) == (
        "bfac434",
        f"package stamp {STAMP_FILE}",
    )


def test_a_known_defect_scenario_is_xfailed_on_a_bfac434_vm(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    packages: dict[str, BuiltPackage],
    identity: SigningIdentity,
) -> None:
    """The old VM target reported no defects, so this failed there instead of xfailing."""
    lab = build_lab(tmp_path, monkeypatch, packages, identity)
    (loaded,) = [s for s in SHIPPED if s.scenario.name == "remove_then_create_excludes_buffer"]
    record = run_scenario(loaded, lab.machine)
    assert record.outcome == "xfailed", record.failure_text()
    assert record.defect_active and record.profile == "bfac434"


def test_a_wrong_known_defect_scenario_fails_on_the_vm(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    packages: dict[str, BuiltPackage],
    identity: SigningIdentity,
) -> None:
    lab = build_lab(tmp_path, monkeypatch, packages, identity)
    path = tmp_path / "wrong.yaml"
    path.write_text(
        "name: wrong\nknown_defect: {id: remove-null-context, reason: F13}\nsteps:\n"
        "  - alloc: {name: a, size: 16}\n    expect: STATUS_INVALID_PARAMETER\n  - remove: a\n"
    )
    (loaded,) = load_scenario_file(path)
    record = run_scenario(loaded, lab.machine)
    assert record.outcome == "failed"
    assert "instead step 1 (alloc) failed" in record.failure_text()


def test_a_stamp_that_contradicts_the_config_stops_prepare_before_the_vm_is_touched(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    packages: dict[str, BuiltPackage],
    identity: SigningIdentity,
) -> None:
    lab = build_lab(tmp_path, monkeypatch, packages, identity)
    restamp(lab.build / "LkdhTestDriver", UNLISTED)
    lab.machine.config = lab.machine.config.model_copy(
        update={"driver": lab.machine.config.driver.model_copy(update={"dmf_build": "bfac434"})}
    )
    with pytest.raises(DriverBuildError, match="the package was built against another DMF"):
        lab.machine.prepare()
    assert lab.vm.calls == [], "nothing ran on the machine"


def test_a_driver_built_against_another_dmf_than_declared_is_a_target_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    packages: dict[str, BuiltPackage],
    identity: SigningIdentity,
) -> None:
    """The package stamp says an unlisted commit; the installed driver's INFO says bfac434."""
    lab = build_lab(tmp_path, monkeypatch, packages, identity)
    restamp(lab.build / "LkdhTestDriver", UNLISTED)
    lab.machine.prepare()  # the stamp alone names a build: nothing contradicts it yet
    with pytest.raises(DriverBuildError) as caught:
        lab.machine.driver_info()
    assert "the driver on the VM reports DMF commit 'bfac434'" in str(caught.value)
    assert "package stamp lkdh-package.json says unlisted 0123456789ab" in str(caught.value)

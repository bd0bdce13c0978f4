"""`lkdh` as a user runs it: the real console script in a subprocess."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def lkdh(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("lkdh")
    command = [str(script)] if script.exists() else [shutil.which("lkdh") or "lkdh"]
    return subprocess.run([*command, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_run_shipped_suite_prints_table_and_exits_0(tmp_path: Path) -> None:
    result = lkdh("run", str(REPO_ROOT / "scenarios"), "--out", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[0].split()[:3] == ["RESULT", "SCENARIO", "TARGET"]
    rows = {tuple(line.split()[:2]) for line in result.stdout.splitlines()}
    assert ("PASS", "store_then_create_contains_buffer") in rows
    assert ("XFAIL", "remove_then_create_excludes_buffer") in rows
    record = json.loads((tmp_path / "run-record.json").read_text())
    assert {s["outcome"] for s in record["scenarios"]} <= {"passed", "xfailed"}


def test_contract_profile_passes_every_scenario(tmp_path: Path) -> None:
    result = lkdh("run", str(REPO_ROOT / "scenarios"), "--out", str(tmp_path), "--sim-profile", "contract")
    assert result.returncode == 0, result.stdout
    assert "XFAIL" not in result.stdout and "FAIL" not in result.stdout.replace("XFAIL", "")


BROKEN = """\
name: broken
steps:
  - alloc: {name: a, size: 16}
  - stroe: a
"""


def test_broken_scenario_reports_file_line_col_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    for command in ("run", "check"):
        result = (
            lkdh(command, str(path), "--out", str(tmp_path)) if command == "run" else lkdh(command, str(path))
        )
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        output = result.stdout + result.stderr
        assert f"{path}:4:" in output, output
        assert "Traceback" not in output


def test_false_expectation_exits_1_with_evidence(tmp_path: Path) -> None:
    path = tmp_path / "false.yaml"
    path.write_text(
        "name: false_expectation\nsteps:\n  - alloc: {name: a, size: 16}\n"
        "  - create: {bugcheck_code: 0x1A2}\n    expect:\n      dump:\n        contains: [a]\n"
    )
    result = lkdh("run", str(path), "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert f"{path}:7:" in result.stdout and "does not contain a" in result.stdout
    kept = list((tmp_path / "out").rglob("dumps/**/*.dmp"))
    assert kept, "the dump must be kept when the run fails"
    assert "0x1a2" in kept[0].with_name(kept[0].name + ".txt").read_text()  # its summary beside it
    log = (tmp_path / "out" / "false_expectation" / "sim" / "run.log").read_text()
    assert "step 2 create bugcheck 0x1A2" in log and "does not contain a" in log
    assert log.rstrip().endswith("outcome failed")


def test_check_accepts_shipped_suite() -> None:
    result = lkdh("check", str(REPO_ROOT / "scenarios"))
    assert result.returncode == 0, result.stdout


def test_schema_is_json_schema() -> None:
    result = lkdh("schema")
    schema = json.loads(result.stdout)
    assert result.returncode == 0
    assert "2020-12" in schema["$schema"]
    assert "steps" in schema["properties"]


def test_inspect_real_dump_text_and_json(fixture_dumps: Path) -> None:
    text = lkdh("inspect", str(fixture_dumps / "triage_x64.dmp"))
    assert text.returncode == 0, text.stderr
    assert "0X1000007E" in text.stdout.upper()
    as_json = json.loads(lkdh("inspect", "--json", str(fixture_dumps / "triage_x64.dmp")).stdout)
    assert as_json["header"]["number_processors"] == 16
    assert as_json["triage"]["data_blocks_count"] == 0x727
    assert len(as_json["drivers"]) == 151


def test_inspect_malformed_dump_exits_1_naming_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.dmp"
    bad.write_bytes(b"NOTADUMP" + bytes(100))
    result = lkdh("inspect", str(bad))
    assert result.returncode == 1
    assert "NOTADUMP" in result.stderr and "Traceback" not in result.stderr


def test_inspect_user_mode_minidump(fixture_dumps: Path) -> None:
    result = lkdh("inspect", str(fixture_dumps / "calc.dmp"))
    assert result.returncode == 0, result.stderr
    assert "calc.exe" in result.stdout
    as_json = json.loads(lkdh("inspect", "--json", str(fixture_dumps / "calc.dmp")).stdout)
    assert as_json["kind"] == "user"


def test_vm_target_without_windows_support_exits_3_with_reason(tmp_path: Path) -> None:
    result = lkdh("run", str(REPO_ROOT / "scenarios" / "store_then_create.yaml"), "--target", "vm")
    assert result.returncode == 3
    assert "--target-config" in result.stderr and "Traceback" not in result.stderr


def test_sim_target_config_selects_the_profile_and_an_explicit_flag_wins(tmp_path: Path) -> None:
    config = tmp_path / "sim.yaml"
    config.write_text("kind: sim\nprofile: contract\nverifier: true\n")
    scenarios = str(REPO_ROOT / "scenarios" / "remove_then_create.yaml")
    from_config = lkdh("run", scenarios, "--out", str(tmp_path / "a"), "--target-config", str(config))
    assert from_config.returncode == 0, from_config.stdout + from_config.stderr
    assert "sim/contract" in from_config.stdout and "XFAIL" not in from_config.stdout
    flag = lkdh(
        "run",
        scenarios,
        "--out",
        str(tmp_path / "b"),
        "--target-config",
        str(config),
        "--sim-profile",
        "dmf-bfac434",
    )
    assert "XFAIL" in flag.stdout and "sim/dmf-bfac434" in flag.stdout


def test_bad_sim_target_config_names_file_line_col(tmp_path: Path) -> None:
    config = tmp_path / "sim.yaml"
    config.write_text("kind: sim\nprofil: contract\n")
    result = lkdh("run", str(REPO_ROOT / "scenarios"), "--out", str(tmp_path), "--target-config", str(config))
    assert result.returncode == 3
    assert f"{config}:2:1:" in result.stderr and "profile" in result.stderr


def test_target_check_reports_each_stage_and_exit_code(tmp_path: Path, monkeypatch) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (tmp_path / "lkdctl.exe").write_bytes(b"MZ")
    config = tmp_path / "vm.yaml"
    config.write_text(
        "name: lab\nhost: unreachable-lab.invalid\n"
        "winrm: {username: admin, password: {env: LKDH_TEST_WINRM_PASSWORD}}\n"
        "driver: {package: pkg, hardware_id: 'Root\\LkdhTestDriver', lkdctl: lkdctl.exe}\n"
    )
    monkeypatch.setenv("LKDH_TEST_WINRM_PASSWORD", "s3cret-never-printed")
    result = lkdh("target", "check", str(config))
    assert result.returncode == 3, result.stdout + result.stderr
    assert "resolve" in result.stdout and "unreachable-lab.invalid" in result.stdout
    assert "not run" in result.stdout
    assert "s3cret-never-printed" not in result.stdout + result.stderr
    config.write_text("name: lab\nhost: h\nwinrm: {username: a, password: hunter2}\n")
    invalid = lkdh("target", "check", str(config))
    assert invalid.returncode == 2
    assert f"{config}:3:" in invalid.stderr and "hunter2" not in invalid.stderr

"""`lkdh check`: every problem of every file, then a one-line summary."""

from __future__ import annotations

from pathlib import Path

from harness.scenario import check_paths, format_check_report


def test_check_reports_all_files_and_counts(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(
        "name: a\nsteps: [{reboot: true}]\n---\nname: b\nsteps: [{wait: 1}]\n"
    )
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "bad.yml").write_text("name: c\nsteps:\n  - stor: x\n  - wait: {second: 1}\n")
    (tmp_path / "broken.yaml").write_text("name: [d\n")
    report = check_paths([tmp_path])
    assert (report.files, report.scenarios, len(report.errors), report.ok) == (3, 3, 3, False)
    text = format_check_report(report).splitlines()
    assert text[0].startswith(f"{tmp_path / 'broken.yaml'}:2:1: YAML syntax:")
    assert text[1].startswith(
        f"{tmp_path / 'sub' / 'bad.yml'}:3:5: steps[0]: a step needs exactly one operation"
    )
    assert text[2].startswith(
        f"{tmp_path / 'sub' / 'bad.yml'}:4:12: steps[1].wait.second: unknown key 'second'"
    )
    assert text[3] == "checked 3 files, 3 scenarios: 3 errors"


def test_check_of_a_clean_folder(tmp_path: Path) -> None:
    (tmp_path / "one.yaml").write_text("name: a\nsteps: [{reboot: true}]\n")
    report = check_paths(tmp_path)
    assert report.ok
    assert format_check_report(report) == "checked 1 file, 1 scenario: 0 errors"


def test_check_names_a_path_that_does_not_exist(tmp_path: Path) -> None:
    report = check_paths([tmp_path / "missing"])
    assert [str(error) for error in report.errors] == [f"{tmp_path / 'missing'}:1:1: no such file or folder"]

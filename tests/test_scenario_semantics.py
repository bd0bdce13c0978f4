"""Checks across steps and files: buffer names, ranges, contradictory expectations, duplicate names."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.scenario import ScenarioError, ScenarioErrors, load_scenario_file, load_scenarios


def write(folder: Path, text: str, name: str = "s.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems(paths: Path | list[Path]) -> list[ScenarioError]:
    with pytest.raises(ScenarioErrors) as caught:
        load_scenarios(paths)
    return caught.value.errors


def at(error: ScenarioError) -> tuple[int, int]:
    return (error.line, error.col)


def test_unknown_buffer_lists_what_is_allocated_so_far(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        name: n
        steps:
          - alloc: {name: ring_a, size: 16}
          - alloc: {name: sec, size: 16}
          - store: ring_b
          - alloc: {name: ring_b, size: 16}
        """,
    )
    [error] = problems(path)
    assert str(error).startswith(
        f"{path}:5:12: steps[2].store: unknown buffer 'ring_b'; allocated so far: ring_a, sec"
    )
    assert f"allocated later, at {path}:6:5" in error.message


def test_buffer_names_are_checked_everywhere_they_are_used(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        name: n
        steps:
          - free: f
          - remove: {buffer: r}
          - create:
              bugcheck_code: 1
              client_structures: [c]
              secondary_data: {buffer: s}
            expect:
              dump:
                contains: [{buffer: k, bytes: '00'}]
                excludes: [e]
                secondary_data: [{buffer: d}]
        """,
    )
    errors = problems(path)
    assert [(at(e), e.message.split(":")[0]) for e in errors] == [
        ((3, 11), "steps[0].free"),
        ((4, 22), "steps[1].remove.buffer"),
        ((7, 27), "steps[2].create.client_structures[0]"),
        ((8, 32), "steps[2].create.secondary_data.buffer"),
        ((11, 29), "steps[2].expect.dump.contains[0].buffer"),
        ((12, 20), "steps[2].expect.dump.excludes[0]"),
        ((13, 35), "steps[2].expect.dump.secondary_data[0].buffer"),
    ]
    assert all("allocated so far: none" in e.message for e in errors)


def test_raw_addresses_are_not_buffer_names(tmp_path: Path) -> None:
    path = write(tmp_path, "name: n\nsteps:\n  - store: {address: 0xFFFF800000001000, length: 8}\n")
    [loaded] = load_scenario_file(path)
    assert loaded.scenario.steps[0].store.address == 0xFFFF800000001000


def test_alloc_name_defined_twice(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "name: n\nsteps:\n  - alloc: {name: a, size: 8}\n  - free: a\n  - alloc: {name: a, size: 8}\n",
    )
    [error] = problems(path)
    assert at(error) == (5, 19)
    assert error.message == f"steps[2].alloc.name: buffer 'a' is already allocated at {path}:3:5"


def test_range_past_the_allocation(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        name: n
        steps:
          - alloc: {name: a, size: 16}
          - store: {buffer: a, offset: 8, length: 8}
          - store: {buffer: a, offset: 8, length: 9}
          - remove: {buffer: a, offset: 17}
        """,
    )
    length_error, offset_error = problems(path)
    assert at(length_error) == (5, 43)
    assert length_error.message.startswith(
        "steps[2].store.length: offset 8 + length 9 = 17 is past the end of 'a' (16 bytes"
    )
    assert at(offset_error) == (6, 33)
    assert offset_error.message.startswith("steps[3].remove.offset: offset 17 is past the end of 'a'")


def test_dump_written_with_a_failure_status(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        name: n
        steps:
          - create: {bugcheck_code: 0x1A2}
            expect:
              status: STATUS_INVALID_PARAMETER
              dump_written: true
          - create: {bugcheck_code: 0x1A2}
            expect: {status: STATUS_SUCCESS, dump_written: true}
        """,
    )
    [error] = problems(path)
    assert at(error) == (6, 21)
    assert error.message.startswith(
        "steps[0].expect.dump_written: true contradicts the expected failure status"
    )
    assert "STATUS_INVALID_PARAMETER (0xC000000D)" in error.message


def test_duplicate_scenario_names_in_one_file(tmp_path: Path) -> None:
    path = write(tmp_path, "name: twin\nsteps: [{reboot: true}]\n---\nname: twin\nsteps: [{reboot: true}]\n")
    with pytest.raises(ScenarioErrors) as caught:
        load_scenario_file(path)
    [error] = caught.value.errors
    assert at(error) == (4, 7)
    assert error.message == f"name: duplicate scenario name 'twin'; first defined at {path}:1:7"


def test_duplicate_scenario_names_across_files(tmp_path: Path) -> None:
    first = write(tmp_path, "name: twin\nsteps: [{reboot: true}]\n", "a.yaml")
    second = write(tmp_path, "description: x\nname: twin\nsteps: [{reboot: true}]\n", "b.yaml")
    assert len(load_scenario_file(second)) == 1  # alone, each file is fine
    [error] = problems(tmp_path)
    assert (error.file, at(error)) == (second, (2, 7))
    assert f"first defined at {first}:1:7" in error.message


def test_errors_of_all_files_are_reported_together(tmp_path: Path) -> None:
    write(tmp_path, "name: a\nsteps: [{store: x}]\n", "a.yaml")
    write(tmp_path, "name: b\nsteps: [{stor: x}]\n", "b.yaml")
    errors = problems(tmp_path)
    assert [error.file.name for error in errors] == ["a.yaml", "b.yaml"]


def test_error_at_helper_for_run_time_failures(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "name: n\nsteps:\n  - alloc: {name: a, size: 8}\n  - create: {bugcheck_code: 1}\n    expect:\n"
        "      dump: {contains: [a]}\n",
    )
    [loaded] = load_scenario_file(path)
    error = loaded.error_at(("steps", 1, "expect", "dump", "contains", 0, "buffer"), "not found in the dump")
    assert str(error) == f"{path}:6:25: steps[1].expect.dump.contains[0]: not found in the dump"

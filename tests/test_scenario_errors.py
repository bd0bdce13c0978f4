"""Every kind of mistake in a scenario file is a `ScenarioError` at the exact file:line:col."""

from __future__ import annotations

import pickle
import textwrap
from pathlib import Path

import pytest

from harness.scenario import ScenarioError, ScenarioErrors, load_scenario_file


def write(folder: Path, text: str, name: str = "s.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems(path: Path) -> list[ScenarioError]:
    with pytest.raises(ScenarioErrors) as caught:
        load_scenario_file(path)
    assert all(error.file == path for error in caught.value.errors)
    return caught.value.errors


def only_problem(path: Path) -> ScenarioError:
    [error] = problems(path)
    return error


def at(error: ScenarioError) -> tuple[int, int]:
    return (error.line, error.col)


def test_error_text_and_pickling() -> None:
    error = ScenarioError(Path("a.yaml"), 3, 7, "steps[0]: bad")
    assert str(error) == "a.yaml:3:7: steps[0]: bad"
    assert pickle.loads(pickle.dumps(error)) == error
    both = ScenarioErrors([ScenarioError("a.yaml", 9, 1, "later"), error])
    assert str(both) == "a.yaml:3:7: steps[0]: bad\na.yaml:9:1: later"


def test_unknown_key_points_at_the_key_and_lists_allowed_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        name: n
        steps:
          - alloc: {name: ring_a, size: 16}
          - store:
              bufer: ring_a
        """,
    )
    error = only_problem(path)
    assert str(error).startswith(f"{path}:5:7: steps[1].store.bufer: unknown key 'bufer' in store")
    assert "did you mean 'buffer'" in error.message
    assert error.message.endswith("allowed keys: buffer, address, offset, length")


def test_unknown_key_on_a_step_and_at_the_top(tmp_path: Path) -> None:
    path = write(tmp_path, "name: n\nsteps:\n  - reboot: true\n    irqll: 2\ntagz: []\n")
    step_error, top_error = problems(path)
    assert at(step_error) == (4, 5)
    assert step_error.message.startswith(
        "steps[0].irqll: unknown key 'irqll' in a reboot step (did you mean 'irql'?)"
    )
    assert "allowed keys: title, irql, repeat, timeout, expect, reboot" in step_error.message
    assert at(top_error) == (5, 1)
    assert top_error.message.startswith("tagz: unknown key 'tagz' in the scenario (did you mean 'tags'?)")


def test_wrong_type_points_at_the_value(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        name: n
        steps:
          - store_collection: 1
          - reboot: true
          - create:
              bugcheck_code: abc
        """,
    )
    error = only_problem(path)
    assert at(error) == (6, 22)
    assert (
        error.message
        == "steps[2].create.bugcheck_code: expected an integer (0..0xFFFFFFFF), found string 'abc'"
    )


def test_out_of_range_number(tmp_path: Path) -> None:
    path = write(tmp_path, "name: n\nsteps:\n  - alloc: {name: a, size: 0x2000000}\n")
    error = only_problem(path)
    assert at(error) == (3, 28)
    assert error.message.startswith(
        "steps[0].alloc.size: expected an integer (1..16777216), found integer 33554432"
    )


@pytest.mark.parametrize(
    ("value", "found"),
    [("300", "found integer 300"), ("maybe", "found string 'maybe'"), ("[1]", "found a list of 1 item")],
)
def test_union_alternatives_merge_into_one_message(tmp_path: Path, value: str, found: str) -> None:
    path = write(
        tmp_path, f"name: n\nsteps:\n  - create:\n      bugcheck_code: 1\n      exclude_dmf_data: {value}\n"
    )
    error = only_problem(path)
    assert at(error) == (5, 25)
    assert error.message == (
        "steps[0].create.exclude_dmf_data: expected one of: a boolean (true or false), an integer (0..255); "
        + found
    )


def test_union_alternative_that_matched_the_shape_wins(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        name: n
        steps:
          - create: {bugcheck_code: 1}
            expect:
              dump:
                block_count: {min: 1, maxi: 3}
                parameters: [1, everything]
        """,
    )
    key_error, parameter_error = problems(path)
    assert at(key_error) == (6, 31)
    assert key_error.message.startswith(
        "steps[0].expect.dump.block_count.maxi: unknown key 'maxi' in block_count"
    )
    assert at(parameter_error) == (7, 25)
    assert parameter_error.message == (
        "steps[0].expect.dump.parameters[1]: expected one of: an integer (0..0xFFFFFFFFFFFFFFFF), "
        "'collection', 'any'; found string 'everything'"
    )


def test_bad_irql_name_lists_the_levels(tmp_path: Path) -> None:
    path = write(tmp_path, "name: n\nsteps:\n  - reboot: true\n    irql: HIGH_LEVEL\n")
    error = only_problem(path)
    assert at(error) == (4, 11)
    assert error.message.startswith("steps[0].irql: unknown IRQL 'HIGH_LEVEL'")
    for level in ("PASSIVE_LEVEL", "APC_LEVEL", "DISPATCH_LEVEL"):
        assert level in error.message


def test_irql_of_another_type_is_an_error_not_a_crash(tmp_path: Path) -> None:
    path = write(tmp_path, "name: n\nsteps:\n  - reboot: true\n    irql: 1.5\n  - wait: -1\n")
    irql_error, wait_error = problems(path)
    assert at(irql_error) == (4, 11)
    assert irql_error.message.startswith("steps[0].irql: expected an IRQL")
    assert "found number 1.5" in irql_error.message
    assert at(wait_error) == (5, 11)  # the rest of the document is still validated


def test_unknown_status_name(tmp_path: Path) -> None:
    path = write(tmp_path, "name: n\nsteps:\n  - store_collection: 1\n    expect: STATUS_MAYBE\n")
    error = only_problem(path)
    assert at(error) == (4, 13)
    assert error.message.startswith("steps[0].expect: unknown status name 'STATUS_MAYBE'; known names:")
    assert "STATUS_INVALID_PARAMETER" in error.message
    assert not error.message.startswith("steps[0].expect: Value error")


def test_unknown_defect_id(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        name: n
        known_defect:
          id: remove-null
          reason: the module writes through NULL
        steps:
          - reboot: true
        """,
    )
    error = only_problem(path)
    assert at(error) == (3, 7)
    assert error.message.startswith("known_defect.id: unknown defect id 'remove-null'; known ids:")
    assert "remove-null-context" in error.message


def test_missing_steps_points_at_the_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "# a scenario\nname: n\ndescription: no steps\n")
    error = only_problem(path)
    assert at(error) == (2, 1)
    assert error.message == "scenario: missing required key 'steps'"


def test_missing_key_in_a_nested_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "name: n\nsteps:\n  - alloc:\n      size: 16\n")
    error = only_problem(path)
    assert at(error) == (4, 7)
    assert error.message == "steps[0].alloc: missing required key 'name'"


def test_step_without_an_operation(tmp_path: Path) -> None:
    path = write(tmp_path, "name: n\nsteps:\n  - reboot: true\n  - title: nothing to do\n    stor: ring_a\n")
    error = only_problem(path)
    assert at(error) == (4, 5)
    assert error.message.startswith("steps[1]: a step needs exactly one operation key (alloc, free, store,")
    assert "found none" in error.message and "did you mean 'store'" in error.message


def test_step_with_two_operations(tmp_path: Path) -> None:
    path = write(tmp_path, "name: n\nsteps:\n  - alloc: {name: a, size: 1}\n  - store: a\n    free: a\n")
    error = only_problem(path)
    assert at(error) == (4, 5)
    assert error.message.startswith("steps[1]: a step has exactly one operation key; found 2: store, free")


def test_step_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "name: n\nsteps:\n  - reboot\n")
    error = only_problem(path)
    assert at(error) == (3, 5)
    assert "a step is a mapping" in error.message and "found string 'reboot'" in error.message


def test_validator_message_without_pydantic_prefix(tmp_path: Path) -> None:
    path = write(tmp_path, "name: n\nsteps:\n  - store: {address: 0xFFFF8000}\n")
    error = only_problem(path)
    assert at(error) == (3, 12)
    assert error.message == "steps[0].store: a raw `address` needs an explicit `length`"


def test_yaml_syntax_error_at_the_ruamel_mark(tmp_path: Path) -> None:
    path = write(tmp_path, "name: n\nsteps:\n  - store: [a, b\n  - reboot: true\n")
    error = only_problem(path)
    assert error.file == path and error.line == 4
    assert error.message.startswith("YAML syntax:")
    assert "flow sequence" in error.message


def test_yaml_syntax_error_bad_indentation(tmp_path: Path) -> None:
    path = write(tmp_path, "name: n\nsteps:\n  - reboot: true\n title: x\n")
    error = only_problem(path)
    assert at(error) == (4, 2)
    assert error.message.startswith("YAML syntax:")


def test_duplicate_key_names_both_positions(tmp_path: Path) -> None:
    path = write(tmp_path, "name: n\nsteps:\n  - alloc:\n      name: a\n      size: 1\n      name: b\n")
    error = only_problem(path)
    assert at(error) == (6, 7)
    assert error.message == "steps[0].alloc.name: duplicate key 'name' (first written at line 4, column 7)"


def test_duplicate_keys_in_two_documents_are_both_reported(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "name: a\nname: b\nsteps: [{reboot: true}]\n---\nname: c\nsteps: []\nsteps: [{reboot: true}]\n",
    )
    first, consequence, second = problems(path)
    assert (at(first), at(second)) == ((2, 1), (7, 1))
    assert first.message.startswith("name: duplicate key 'name'") and second.message.startswith(
        "steps: duplicate key 'steps'"
    )
    # the first value is the one validated, so its own problem shows too
    assert at(consequence) == (6, 8) and consequence.message.startswith(
        "steps: expected a list of at least 1"
    )


@pytest.mark.parametrize("text", ["", "# only a comment\n\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    error = only_problem(path)
    assert at(error) == (1, 1)
    assert "holds no scenario" in error.message


def test_document_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "name: n\nsteps: [{reboot: true}]\n---\n- name: m\n---\njust text\n---\n")
    errors = problems(path)
    assert [at(error) for error in errors] == [(4, 1), (6, 1), (7, 1)]
    assert errors[0].message.startswith("document 2 is a list of 1 item: a scenario is a mapping")
    assert errors[1].message.startswith("document 3 is string 'just text'")
    assert errors[2].message.startswith("document 4 is empty")


def test_tags_and_yaml_1_1_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "name: n\nsteps:\n  - wait: !!int x\n  - store: !buf a\n")
    int_tag, custom_tag = problems(path)
    assert at(int_tag) == (3, 11) and "!!int" in int_tag.message
    assert at(custom_tag) == (4, 12) and "!buf" in custom_tag.message
    old = write(tmp_path, "%YAML 1.1\n---\nname: n\nsteps: [{reboot: yes}]\n", "old.yaml")
    error = only_problem(old)
    assert "YAML 1.2" in error.message


def test_yes_is_a_string_in_yaml_1_2(tmp_path: Path) -> None:
    path = write(tmp_path, "name: n\nsteps:\n  - reboot: on\n")
    error = only_problem(path)
    assert error.message == "steps[0].reboot: expected true, found string 'on'"


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"name: n\ndescription: caf\xe9\n")
    error = only_problem(path)
    assert at(error) == (2, 17)
    assert error.message.startswith("not UTF-8 text")


def test_expect_dump_on_a_store_step(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        name: n
        steps:
          - alloc: {name: ring_a, size: 16}
          - store: ring_a
            expect:
              dump: {bugcheck_code: 0x1A2}
        """,
    )
    error = only_problem(path)
    assert at(error) == (6, 7)
    assert error.message == (
        "steps[1].expect.dump: `dump` applies to create and ioctl_create steps only; this is a store step"
    )


def test_several_errors_in_one_file_are_all_reported_in_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        name: several
        steps:
          - alloc: {name: ring_a, size: 16, colour: red}
          - store: ring_b
          - create:
              bugcheck_code: -1
            irql: SOMETIMES
        ---
        name: ok_after_a_bad_one
        steps:
          - store: nothing_yet
        """,
    )
    errors = problems(path)
    assert [at(error) for error in errors] == [(3, 37), (6, 22), (7, 11), (11, 12)]
    assert errors[0].message.startswith("steps[0].alloc.colour: unknown key 'colour'")
    assert errors[1].message.startswith("steps[2].create.bugcheck_code: expected an integer")
    assert errors[2].message.startswith("steps[2].irql: unknown IRQL 'SOMETIMES'")
    assert errors[3].message.startswith("steps[0].store: unknown buffer 'nothing_yet'")
    assert str(ScenarioErrors(errors)).splitlines()[0] == str(errors[0])

"""`vars`, `parametrize` and `include`: expanded by the loader, with every position kept.

Each mistake is a `ScenarioError` at the file:line:col where it was written, in the scenario or in
the step file it includes, and a mistake only some parametrize rows make names the row.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from harness.runner import run_scenario
from harness.scenario import ScenarioError, ScenarioErrors, check_paths, load_scenario_file, load_scenarios
from harness.target.sim import SimulatedMachine


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems(path: Path) -> list[ScenarioError]:
    with pytest.raises(ScenarioErrors) as caught:
        load_scenario_file(path)
    return caught.value.errors


def where(error: ScenarioError) -> tuple[str, int, int]:
    return (error.file.name, error.line, error.col)


STORE_STEPS = """
description: store a buffer and check the counter moved
vars:
  buffer: nothing_yet
  minimum: 1
steps:
  - store: ${buffer}
  - query: dmf_data_size
    expect: {value: {min: "${minimum}"}}
"""


def test_vars_keep_the_type_of_a_whole_reference_and_interpolate_inside_text(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "s.yaml",
        """
        name: vars_demo
        vars:
          size: 0x40
          code: 0x1A2
          label: "ring of ${size} bytes"
          literal: "costs $${money}"
        steps:
          - alloc: {name: ring, size: "${size}", text: "${label}"}
          - alloc: {name: other, size: 8, text: "${literal}"}
          - create: {bugcheck_code: "${code}"}
        """,
    )
    [loaded] = load_scenario_file(path)
    alloc = loaded.scenario.steps[0].alloc  # type: ignore[union-attr]
    assert alloc.size == 64 and alloc.text == "ring of 64 bytes"
    assert loaded.scenario.steps[1].alloc.text == "costs ${money}"  # type: ignore[union-attr]
    assert loaded.scenario.steps[2].create.bugcheck_code == 0x1A2  # type: ignore[union-attr]
    assert loaded.scenario.vars["label"] == "ring of 64 bytes"


def test_unknown_variable_is_an_error_at_its_reference_with_a_suggestion(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "s.yaml",
        """
        name: n
        vars: {size: 8}
        steps:
          - alloc: {name: a, size: "${sise}"}
          - alloc: {name: b, size: 8, text: "x ${ bad name } y"}
          - alloc: {name: c, size: 8, text: "open ${size"}
        """,
    )
    errors = problems(path)
    assert [where(e) for e in errors] == [("s.yaml", 4, 28), ("s.yaml", 5, 37), ("s.yaml", 6, 37)]
    assert errors[0].message == (
        "steps[0].alloc.size: unknown variable 'sise' (did you mean 'size'?); defined here: size"
    )
    assert "does not name a variable" in errors[1].message
    assert "without a closing `}`" in errors[2].message


def test_parametrize_gives_one_scenario_per_row_named_by_its_values(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "s.yaml",
        """
        name: store_sizes
        parametrize:
          - {size: 1, fill: "AA"}
          - {size: 4096, fill: "BB CC"}
          - {id: budget, size: 0x2D000, fill: "DD"}
        vars:
          label: "size ${size}"
        steps:
          - alloc: {name: ring, size: "${size}", pattern: "${fill}"}
          - store: ring
          - create: {bugcheck_code: 0x1A2}
            expect:
              dump: {contains: [ring]}
        """,
    )
    rows = load_scenario_file(path)
    assert [loaded.run_name for loaded in rows] == [
        "store_sizes[1-AA]",
        "store_sizes[4096-BB CC]",
        "store_sizes[budget]",
    ]
    assert [loaded.folder_name for loaded in rows][1] == "store_sizes-4096-BB_CC"
    assert [r.scenario.steps[0].alloc.size for r in rows] == [1, 4096, 0x2D000]  # type: ignore[union-attr]
    assert rows[2].scenario.vars == {"label": "size 184320"}
    assert rows[1].row is not None and str(rows[1].row.location).endswith("s.yaml:4:5")
    assert rows[0].step_locations == rows[2].step_locations  # every row points at the template


def test_each_row_runs_on_the_simulator(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "s.yaml",
        """
        name: sizes
        parametrize: [{size: 1}, {size: 4096}]
        steps:
          - alloc: {name: ring, size: "${size}"}
          - store: ring
          - create: {bugcheck_code: 0x1A2}
            expect:
              dump: {contains: [ring]}
        """,
    )
    records = []
    for loaded in load_scenario_file(path):
        with SimulatedMachine(tmp_path / loaded.folder_name) as machine:
            records.append(run_scenario(loaded, machine))
    assert [(r.scenario, r.outcome) for r in records] == [("sizes[1]", "passed"), ("sizes[4096]", "passed")]


def test_an_error_only_some_rows_make_names_the_row_and_a_shared_one_is_told_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "s.yaml",
        """
        name: n
        parametrize:
          - {length: 8}
          - {length: 16}
        steps:
          - alloc: {name: a, size: 8}
          - store: {buffer: a, length: "${length}"}
          - store: b
        """,
    )
    errors = problems(path)
    assert [where(e) for e in errors] == [("s.yaml", 7, 32), ("s.yaml", 8, 12)]
    assert errors[0].message.startswith("steps[1].store.length: offset 0 + length 16 = 16 is past the end")
    assert errors[0].message.endswith("[parametrize row 2 (length=16) at " + f"{path}:4:5]")
    assert "parametrize row" not in errors[1].message  # unknown buffer 'b': every row has it


def test_a_row_value_of_the_wrong_type_is_an_error_at_the_reference_naming_the_row(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "s.yaml",
        """
        name: n
        parametrize: [{size: 8}, {size: abc}]
        steps:
          - alloc: {name: a, size: "${size}"}
        """,
    )
    [error] = problems(path)
    assert where(error) == ("s.yaml", 4, 28)
    assert error.message.startswith(
        "steps[0].alloc.size: expected an integer (1..16777216), found string 'abc'"
    )
    assert error.message.endswith(f"[parametrize row 2 (size='abc') at {path}:2:26]")


@pytest.mark.parametrize(
    ("table", "message", "position"),
    [
        ("[]", "expected a table: a non-empty list of mappings", (2, 14)),
        ("[{size: 1}, {length: 2}]", "a row has the columns of the first row (size); found length", (2, 26)),
        ("[{size: 1}, {size: 1}]", "row id '1' is already row 1's: give the rows an `id`", (2, 26)),
        ("[{size: [1, 2]}]", "a row's value is a number, text or boolean, found a list", (2, 22)),
        ("[{label: 1}]", "'label' is both a var and a parametrize column: rename one", (3, 8)),
    ],
)
def test_bad_tables_are_errors_at_the_row(
    tmp_path: Path, table: str, message: str, position: tuple[int, int]
) -> None:
    path = write(
        tmp_path, "s.yaml", f"name: n\nparametrize: {table}\nvars: {{label: x}}\nsteps: [reboot: true]\n"
    )
    [error] = problems(path)
    assert message in error.message
    assert (error.line, error.col) == position


def test_include_splices_a_step_file_with_its_defaults_overridden(tmp_path: Path) -> None:
    write(tmp_path, "lib/store.steps.yaml", STORE_STEPS)
    path = write(
        tmp_path,
        "s.yaml",
        """
        name: uses_a_step_file
        steps:
          - alloc: {name: ring, size: 64}
          - include: {file: lib/store.steps.yaml, vars: {buffer: ring}}
          - create: {bugcheck_code: 0x1A2}
        """,
    )
    [loaded] = load_scenario_file(path)
    assert [loaded.scenario.step_operation(i) for i in range(4)] == ["alloc", "store", "query", "create"]
    step_file = tmp_path / "lib" / "store.steps.yaml"
    included = loaded.step_locations[1]
    assert (included.file, included.line, included.col) == (step_file, 6, 5)
    assert [str(at) for at in included.included_from] == [f"{path}:4:5"]
    assert loaded.location_of(("steps", 2, "expect", "value")).line == 8
    assert loaded.step_locations[3].file == path and loaded.step_locations[3].line == 5
    with SimulatedMachine(tmp_path / "out") as machine:
        assert run_scenario(loaded, machine).outcome == "passed"


def test_errors_inside_a_step_file_name_it_and_the_include(tmp_path: Path) -> None:
    write(tmp_path, "lib/store.steps.yaml", STORE_STEPS)
    path = write(
        tmp_path,
        "s.yaml",
        """
        name: n
        steps:
          - include: lib/store.steps.yaml
        """,
    )
    [error] = problems(path)
    assert where(error) == ("store.steps.yaml", 6, 12)
    assert error.message == (
        f"steps[0].store: unknown buffer 'nothing_yet'; allocated so far: none (included from {path}:3:5)"
    )


def test_a_failed_step_from_a_step_file_is_reported_there(tmp_path: Path) -> None:
    write(tmp_path, "lib/store.steps.yaml", STORE_STEPS)
    path = write(
        tmp_path,
        "s.yaml",
        """
        name: n
        steps:
          - alloc: {name: ring, size: 64}
          - include: {file: lib/store.steps.yaml, vars: {buffer: ring, minimum: 0x7FFFFFFF}}
        """,
    )
    [loaded] = load_scenario_file(path)
    with SimulatedMachine(tmp_path / "out") as machine:
        record = run_scenario(loaded, machine)
    [failure] = record.failed_steps[0].failures
    assert failure.startswith(
        f"{tmp_path / 'lib' / 'store.steps.yaml'}:8:21 (included from {path}:4:5): step 3"
    )


def test_includes_nest_and_a_cycle_is_an_error_naming_the_chain(tmp_path: Path) -> None:
    write(tmp_path, "a.steps.yaml", "steps:\n  - include: b.steps.yaml\n")
    write(tmp_path, "b.steps.yaml", "steps:\n  - reboot: true\n  - include: a.steps.yaml\n")
    path = write(tmp_path, "s.yaml", "name: n\nsteps:\n  - include: a.steps.yaml\n")
    [error] = problems(path)
    assert where(error) == ("b.steps.yaml", 3, 14)
    assert (
        "include cycle" in error.message
        and "s.yaml -> a.steps.yaml -> b.steps.yaml -> a.steps.yaml" in error.message
    )
    assert f"(included from {tmp_path / 'a.steps.yaml'}:2:5, from {path}:3:5)" in error.message


@pytest.mark.parametrize(
    ("step", "message", "position"),
    [
        ("include: missing.steps.yaml", "no such step file: ", (3, 14)),
        ("include: other.yaml", "'other.yaml' is not a step file: its name ends in .steps.yaml", (3, 14)),
        ("{include: x.steps.yaml, irql: 2}", "an include step takes only `include`", (3, 29)),
        (
            "include: {file: x.steps.yaml, var: {}}",
            "unknown key 'var' in include; allowed keys: file, vars",
            (3, 35),
        ),
        ("include: 7", "expected a step file's path, or {file: PATH, vars: {...}}; found integer 7", (3, 14)),
    ],
)
def test_bad_includes(tmp_path: Path, step: str, message: str, position: tuple[int, int]) -> None:
    write(tmp_path, "x.steps.yaml", "steps: [reboot: true]\n")
    path = write(tmp_path, "s.yaml", f"name: n\nsteps:\n  - {step}\n")
    [error] = problems(path)
    assert message in error.message and (error.line, error.col) == position


def test_a_bad_step_file_is_an_error_in_that_file(tmp_path: Path) -> None:
    write(tmp_path, "x.steps.yaml", "stepz: []\nsteps: [{stor: x}]\n")
    path = write(tmp_path, "s.yaml", "name: n\nsteps:\n  - include: x.steps.yaml\n")
    [error] = problems(path)
    assert where(error) == ("x.steps.yaml", 1, 1)
    assert "unknown key 'stepz' in a step file; allowed keys: description, vars, steps" in error.message


def test_folder_scans_skip_step_files_and_naming_one_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "lib/store.steps.yaml", STORE_STEPS)
    write(
        tmp_path,
        "s.yaml",
        "name: n\nsteps:\n  - alloc: {name: a, size: 8}\n"
        "  - include: {file: lib/store.steps.yaml, vars: {buffer: a}}\n",
    )
    assert [loaded.run_name for loaded in load_scenarios(tmp_path)] == ["n"]
    report = check_paths([tmp_path / "lib" / "store.steps.yaml"])
    assert [e.message for e in report.errors] == [
        "a step file is included by scenarios (`- include: FILE`), not loaded as a scenario"
    ]


def test_duplicate_run_names_across_files_still_collide(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "name: n\nparametrize: [{x: 1}]\nsteps: [reboot: true]\n")
    write(tmp_path, "b.yaml", "name: n\nparametrize: [{x: 1}, {x: 2}]\nsteps: [reboot: true]\n")
    report = check_paths([tmp_path])
    [error] = report.errors
    assert error.file.name == "b.yaml" and "duplicate scenario name 'n[1]'" in error.message


def test_pytest_makes_one_item_per_row_and_target_and_skips_step_files(pytester: pytest.Pytester) -> None:
    folder = pytester.mkdir("scenarios")
    write(folder, "lib/store.steps.yaml", STORE_STEPS)
    write(
        folder,
        "sizes.yaml",
        """
        name: store_sizes
        parametrize: [{size: 1}, {size: 4096}]
        steps:
          - alloc: {name: ring, size: "${size}"}
          - include: {file: lib/store.steps.yaml, vars: {buffer: ring}}
        """,
    )
    collected = pytester.runpytest("--collect-only", "-q", "scenarios")
    ids = [line for line in collected.outlines if "::" in line]
    assert ids == [
        "scenarios/sizes.yaml::store_sizes[sim-1]",
        "scenarios/sizes.yaml::store_sizes[vm-1]",
        "scenarios/sizes.yaml::store_sizes[sim-4096]",
        "scenarios/sizes.yaml::store_sizes[vm-4096]",
    ]
    result = pytester.runpytest("scenarios", "-k", "sim-4096", "--lkdh-out", str(pytester.path / "out"))
    result.assert_outcomes(passed=1, deselected=3)
    assert (pytester.path / "out" / "store_sizes-4096" / "sim" / "run.log").is_file()


def test_the_schema_knows_vars_parametrize_and_include() -> None:
    import jsonschema  # a dev dependency (pyproject.toml)

    from harness.scenario import scenario_json_schema

    validator = jsonschema.Draft202012Validator(scenario_json_schema())
    document = {
        "name": "n",
        "parametrize": [{"size": 1, "irql": "DISPATCH_LEVEL"}],
        "vars": {"code": 0x1A2},
        "steps": [
            {"alloc": {"name": "a", "size": "${size}"}},
            {"store": "a", "irql": "${irql}"},
            {"include": "lib/x.steps.yaml"},
            {"include": {"file": "lib/x.steps.yaml", "vars": {"n": 1}}},
            {"create": {"bugcheck_code": "${code}"}},
        ],
    }
    assert [error.message for error in validator.iter_errors(document)] == []
    assert not validator.is_valid({"name": "n", "steps": [{"alloc": {"name": "a", "size": "${si ze}"}}]})
    assert not validator.is_valid({"name": "n", "steps": [{"include": {"file": "x", "irql": 1}}]})
    assert validator.is_valid({"name": "n", "parametrize": [{"a": 1}], "steps": [{"reboot": True}]})


def test_each_row_is_its_own_allure_test_case(pytester: pytest.Pytester) -> None:
    folder = pytester.mkdir("scenarios")
    write(
        folder,
        "sizes.yaml",
        'name: sizes\nparametrize: [{size: 1}, {size: 2}]\nsteps:\n  - alloc: {name: a, size: "${size}"}\n',
    )
    results = pytester.path / "allure-results"
    pytester.runpytest("scenarios", "--target", "sim", "--alluredir", str(results))
    documents = [json.loads(p.read_text()) for p in results.glob("*-result.json")]
    ran = {d["name"]: d for d in documents if d["status"] == "passed"}
    assert set(ran) == {"sizes[sim-1]", "sizes[sim-2]"}
    assert ran["sizes[sim-1]"]["historyId"] != ran["sizes[sim-2]"]["historyId"]
    assert any(p["name"] == "row" and "2" in p["value"] for p in ran["sizes[sim-2]"]["parameters"])


def test_messages_name_a_moved_step_as_it_was_written(tmp_path: Path) -> None:
    write(tmp_path, "two.steps.yaml", "steps:\n  - reboot: true\n  - store: ghost\n")
    path = write(
        tmp_path,
        "s.yaml",
        """
        name: n
        steps:
          - reboot: true
          - include: two.steps.yaml
          - free: phantom
        """,
    )
    in_scenario, in_step_file = problems(path)  # sorted by file
    assert where(in_step_file) == ("two.steps.yaml", 3, 12)
    assert in_step_file.message.startswith("steps[1].store: unknown buffer 'ghost'")  # its own index
    assert where(in_scenario) == ("s.yaml", 5, 11)
    assert in_scenario.message.startswith("steps[2].free: unknown buffer 'phantom'")  # as written


def test_an_expansion_error_does_not_hide_the_other_mistakes(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "s.yaml",
        """
        name: n
        parametrize: [{size: 8}]
        steps:
          - alloc: {name: a, size: "${sise}"}
          - stor: a
          - include: nowhere.steps.yaml
          - store: a
            irql: HIGH
        """,
    )
    errors = problems(path)
    assert [(e.line, e.col) for e in errors] == [(4, 28), (5, 5), (6, 14), (8, 11)]
    assert "unknown variable 'sise'" in errors[0].message  # and not also "expected an integer" there
    assert errors[1].message.startswith("steps[1]: a step needs exactly one operation key")
    assert "no such step file" in errors[2].message
    assert errors[3].message.startswith("steps[3].irql: unknown IRQL 'HIGH'")


def test_an_expansion_error_only_one_row_makes_names_that_row(tmp_path: Path) -> None:
    write(tmp_path, "lib/store.steps.yaml", STORE_STEPS)
    path = write(
        tmp_path,
        "s.yaml",
        """
        name: n
        parametrize: [{f: lib/store.steps.yaml}, {f: lib/none.steps.yaml}]
        steps:
          - alloc: {name: buffer, size: 8}
          - include: {file: "${f}", vars: {buffer: buffer}}
          - store: "${nope}"
        """,
    )
    missing, unknown = problems(path)
    assert where(missing) == ("s.yaml", 5, 21) and "no such step file" in missing.message
    assert missing.message.endswith(f"[parametrize row 2 (f='lib/none.steps.yaml') at {path}:2:42]")
    assert "unknown variable 'nope'" in unknown.message and "parametrize row" not in unknown.message

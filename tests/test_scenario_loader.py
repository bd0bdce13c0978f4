"""Valid scenario files load into plain-typed models, with every node's position kept."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.scenario import LoadedScenario, Location, Scenario, load_scenario_file, load_scenarios
from harness.scenario.model import CreateStep, StoreCollectionStep, StoreStep, WaitStep
from harness.scenario.yaml_source import read_yaml_stream
from harness.target.irql import Irql
from harness.target.status import STATUS_INVALID_PARAMETER


def write(folder: Path, text: str, name: str = "s.yaml") -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


FULL = """
    name: store_then_create
    description: store a buffer, then create a dump
    tags: [smoke, on]
    steps:
      - alloc: {name: ring_a, size: 0x40}
      - alloc:
          name: sec
          size: 16
          pattern: DE AD BE EF
      - store: ring_a
      - store: {buffer: ring_a, offset: 8, length: 0x10}
        irql: DISPATCH_LEVEL
      - wait: 61
      - store_collection: 0xFFFF800012345678
      - create:
          bugcheck_code: 0x1A2
          exclude_dmf_data: 2
          client_structures: [ring_a]
          secondary_data: sec
        expect:
          dump:
            contains: [ring_a, {buffer: sec, bytes: DE AD BE EF}]
            parameters: [0x1A2, collection, any]
            block_count: {min: 1}
      - remove: ring_a
        expect: STATUS_INVALID_PARAMETER
"""


def test_full_scenario_loads_with_hex_and_shorthands(tmp_path: Path) -> None:
    [loaded] = load_scenario_file(write(tmp_path, FULL))
    scenario = loaded.scenario
    assert isinstance(scenario, Scenario)
    assert scenario.name == "store_then_create"
    assert scenario.tags == ["smoke", "on"]  # YAML 1.2: `on` is a string, not true
    assert scenario.steps[0].alloc.size == 0x40
    store = scenario.steps[2]
    assert isinstance(store, StoreStep) and store.store.buffer == "ring_a" and store.store.length is None
    assert scenario.steps[3].irql is Irql.DISPATCH_LEVEL
    wait = scenario.steps[4]
    assert isinstance(wait, WaitStep) and wait.wait.seconds == 61
    collection = scenario.steps[5]
    assert (
        isinstance(collection, StoreCollectionStep)
        and collection.store_collection.value == 0xFFFF800012345678
    )
    create = scenario.steps[6]
    assert isinstance(create, CreateStep)
    assert create.create.bugcheck_code == 0x1A2 and create.create.exclude_byte() == 2
    assert create.expect.dump is not None and create.expect.dump.parameters == [0x1A2, "collection", "any"]
    assert scenario.steps[7].expect.status == STATUS_INVALID_PARAMETER


def test_loaded_values_are_plain_python_types(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    [document] = read_yaml_stream(path.read_text(), path).documents

    def check(node: object) -> None:
        if isinstance(node, dict):
            assert type(node) is dict
            for key, value in node.items():
                assert type(key) is str
                check(value)
        elif isinstance(node, list):
            assert type(node) is list
            for item in node:
                check(item)
        else:
            assert node is None or type(node) in (int, float, str, bool), type(node)

    check(document.data)
    steps = document.data["steps"]
    assert type(steps[0]["alloc"]["size"]) is int  # HexInt from ruamel, made plain
    assert type(steps[5]["store_collection"]) is int
    [loaded] = load_scenario_file(path)
    assert type(loaded.scenario.steps[0].alloc.size) is int


def test_positions_of_scenario_steps_and_nodes(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    [loaded] = load_scenario_file(path)
    assert (loaded.file, loaded.line, loaded.col) == (path, 1, 1)
    assert [(loc.line, loc.col) for loc in loaded.step_locations] == [
        (5, 5), (6, 5), (10, 5), (11, 5), (13, 5), (14, 5), (15, 5), (25, 5),
    ]  # fmt: skip
    assert str(loaded.step_locations[0]) == f"{path}:5:5"
    assert loaded.location_of(("steps", 6, "expect", "dump", "contains", 1)) == Location(path, 22, 28)
    assert loaded.location_of(("steps", 6, "create", "bugcheck_code")) == Location(path, 16, 22)
    assert loaded.location_of(("steps", 6, "create", "bugcheck_code"), key=True) == Location(path, 16, 7)
    # into a shorthand, or to a key left out: the nearest node written
    assert loaded.location_of(("steps", 2, "store", "buffer")) == Location(path, 10, 12)
    assert loaded.location_of(("steps", 2, "expect", "status")) == Location(path, 10, 5)


def test_several_documents_in_one_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        name: first
        steps:
          - reboot: true
        ---
        # a comment before the second document
        name: second
        steps:
          - wait: 1.5
        """,
    )
    first, second = load_scenario_file(path)
    assert [first.scenario.name, second.scenario.name] == ["first", "second"]
    assert (second.line, second.col, second.document_index) == (6, 1, 1)
    assert second.step_locations == (Location(path, 8, 5),)


def test_null_value_points_at_its_key(tmp_path: Path) -> None:
    path = write(tmp_path, "name: n\ndescription: ''\nsteps:\n  - reboot: true\n    title:\n")
    [loaded] = load_scenario_file(path)
    assert loaded.location_of(("steps", 0, "title")) == Location(path, 5, 5)


def test_folders_are_searched_recursively_in_sorted_order(tmp_path: Path) -> None:
    write(tmp_path, "name: b\nsteps: [{reboot: true}]\n", "b.yml")
    write(tmp_path, "name: a\nsteps: [{reboot: true}]\n", "a.yaml")
    write(tmp_path, "name: c\nsteps: [{reboot: true}]\n", "sub/c.yaml")
    write(tmp_path, "not: a scenario\n", "notes.txt")
    loaded = load_scenarios(tmp_path)
    assert [s.scenario.name for s in loaded] == ["a", "b", "c"]
    # a file named beside its folder loads once
    assert len(load_scenarios([tmp_path, tmp_path / "a.yaml"])) == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("irql: dispatch", Irql.DISPATCH_LEVEL),
        ("irql: 1", Irql.APC_LEVEL),
        ("expect: 0xC000000D", None),
        ("expect: {status: stATus_invalid_parameter}", None),
    ],
)
def test_accepted_spellings(tmp_path: Path, text: str, expected: Irql | None) -> None:
    path = write(tmp_path, f"name: n\nsteps:\n  - store_collection: 5\n    {text}\n")
    [loaded] = load_scenario_file(path)
    step = loaded.scenario.steps[0]
    if expected is not None:
        assert step.irql is expected
    else:
        assert step.expect.status == STATUS_INVALID_PARAMETER


def test_loaded_scenario_is_frozen(tmp_path: Path) -> None:
    [loaded] = load_scenario_file(write(tmp_path, "name: n\nsteps: [{reboot: true}]\n"))
    assert isinstance(loaded, LoadedScenario)
    with pytest.raises(AttributeError):
        loaded.line = 3  # type: ignore[misc]

"""The exported JSON Schema is valid draft 2020-12 and accepts what the loader accepts."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import jsonschema
import pytest

from harness.scenario import scenario_json_schema
from harness.scenario.model import STEP_KINDS
from harness.scenario.yaml_source import read_yaml_stream

REPO = Path(__file__).resolve().parents[1]

EXAMPLES = textwrap.dedent(
    """
    name: store_then_create
    description: every operation, with hex numbers and the shorthands
    tags: [smoke]
    requires: [test-driver, live-dump]
    known_defect: {id: remove-null-context, reason: DataBufferSourceRemove of a stored buffer}
    steps:
      - alloc: {name: ring_a, size: 0x40}
      - alloc: {name: sec, size: 16, pattern: DE AD BE EF, pool: PagedPool}
      - store: ring_a
        irql: DISPATCH_LEVEL
      - store: {buffer: ring_a, offset: 8, length: 0x10}
      - wait: 61
      - wait: {seconds: 0.5}
      - store_collection: 0xFFFF800012345678
      - create:
          bugcheck_code: 0x1A2
          parameter: 7
          exclude_dmf_data: 2
          client_structures: [ring_a, {buffer: sec, length: 4}]
          secondary_data: sec
        expect:
          dump_written: true
          dump:
            bugcheck_code: 0x1A2
            parameters: [0x1A2, collection, any]
            contains: [ring_a, {buffer: sec, bytes: DE AD}]
            excludes: [sec]
            secondary_data: [{buffer: sec}, {guid: 5f1c2a3b-0000-4c6e-9d7a-1234567890ab, absent: true}]
            block_count: {min: 1, max: 3}
      - remove: ring_a
        expect: STATUS_INVALID_PARAMETER
      - remove: ring_a
        expect: {bugcheck: [0x1E]}
      - free: ring_a
        title: tidy up
        expect: 0
      - reboot: true
    ---
    name: minimal
    steps:
      - reboot: true
    """
).lstrip("\n")


def documents(text: str) -> list[object]:
    read = read_yaml_stream(text, Path("examples.yaml"))
    assert not read.errors
    return [document.data for document in read.documents]


@pytest.fixture(scope="module")
def validator() -> object:
    """jsonschema (the dev extra) is the independent judge of the exported schema."""
    schema = scenario_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_schema_header_and_determinism() -> None:
    schema = scenario_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] and schema["title"] and schema["description"]
    assert list(schema)[:3] == ["$schema", "$id", "title"]
    assert list(schema["$defs"]) == sorted(schema["$defs"])
    assert json.dumps(schema, indent=2) == json.dumps(scenario_json_schema(), indent=2)
    assert "#/$defs/Irql" not in json.dumps(schema)


def test_schema_structure() -> None:
    schema = scenario_json_schema()
    defs = schema["$defs"]
    refs = [choice["$ref"].rsplit("/", 1)[1] for choice in schema["properties"]["steps"]["items"]["oneOf"]]
    assert refs == [*(model.__name__ for model in STEP_KINDS.values()), "IncludeStep"]
    for operation, model in STEP_KINDS.items():
        assert defs[model.__name__]["required"] == [operation]
        assert defs[model.__name__]["description"]
        irql = defs[model.__name__]["properties"]["irql"]
        assert {"type": "string", "enum": ["PASSIVE_LEVEL", "APC_LEVEL", "DISPATCH_LEVEL"]} in irql["anyOf"]
    status = defs["Expect"]["anyOf"][1]["properties"]["status"]["anyOf"][0]
    assert status["type"] == ["string", "integer"]
    assert "STATUS_INVALID_PARAMETER" in status["examples"]
    assert defs["Expect"]["anyOf"][0]["type"] == ["string", "integer"]  # `expect: STATUS_...`
    assert defs["BufferSlice"]["anyOf"][0]["type"] == "string"  # `store: ring_a`
    assert defs["WaitSpec"]["anyOf"][0]["type"] == "number"  # `wait: 61`
    assert defs["AllocSpec"]["description"].startswith("Allocate kernel pool")  # from the docstring


def test_schema_accepts_the_examples(validator: object) -> None:
    for document in documents(EXAMPLES):
        errors = [error.message for error in validator.iter_errors(document)]  # type: ignore[attr-defined]
        assert errors == []


@pytest.mark.parametrize("path", sorted((REPO / "scenarios").rglob("*.y*ml")), ids=lambda p: p.name)
def test_schema_accepts_the_shipped_scenarios(validator: object, path: Path) -> None:
    for document in documents(path.read_text(encoding="utf-8")):
        assert [error.message for error in validator.iter_errors(document)] == []  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "step",
    [
        {"store": {"bufer": "a"}},
        {"reboot": True, "irql": "HIGH_LEVEL"},
        {"store": "a", "free": "a"},
        {"title": "no operation"},
        {"create": {"bugcheck_code": "abc"}},
        {"create": {"bugcheck_code": 1, "exclude_dmf_data": 300}},
    ],
)
def test_schema_rejects_what_the_loader_rejects(validator: object, step: dict[str, object]) -> None:
    assert not validator.is_valid({"name": "n", "steps": [step]})  # type: ignore[attr-defined]

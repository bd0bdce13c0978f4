"""The JSON Schema of one scenario document, for editors (`lkdh schema`).

It starts from pydantic's schema of `Scenario` and fixes what pydantic cannot know: the shorthands
(`store: ring_a`, `wait: 61`, `expect: STATUS_INVALID_PARAMETER`) that the models' before-validators
accept, IRQLs written by name, the known status names and defect ids (so an editor can complete them),
and descriptions for the step kinds. The schema is a guide for authors; the loader stays the judge, and
accepts a little more (`irql: dispatch`, status names in any case).
"""

from __future__ import annotations

import copy
from typing import Any

from harness.scenario.model import STEP_KINDS, IncludeStep, Scenario
from harness.target.defects import KNOWN_DEFECTS
from harness.target.irql import Irql
from harness.target.status import STATUS_CODES

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID = "urn:lkdh:schema:scenario:v1"
SCHEMA_TITLE = "LKDH scenario (language v1)"

# For each model with a shorthand, the property whose schema is also the shorthand's.
_SHORTHAND_FIELD = {
    "BufferSlice": "buffer",
    "ContainsItem": "buffer",
    "StoreCollectionSpec": "value",
    "WaitSpec": "seconds",
    "Expect": "status",
}

_STEP_SUMMARIES = {
    "alloc": "Allocate kernel pool under a name that later steps use.",
    "free": "Free a buffer allocated by an earlier `alloc` step.",
    "store": "DataBufferSourceAdd: store a buffer (or a range of it) for the next live dump.",
    "remove": "DataBufferSourceRemove: remove a stored buffer (or range) again.",
    "create": "LiveKernelMemoryDumpCreate: write a live kernel dump; `expect.dump` checks what it holds.",
    "store_collection": "StoreDmfCollectionAsBugcheckParameter: the value a dump reports as the collection.",
    "ioctl_create": "IOCTL_LIVEKERNELDUMP_CREATE from an application (admin or standard user, raw bytes).",
    "query": "Read a module value (dmf_data_size: DmfDataSizeGet); `expect.value` checks it.",
    "wait": "Let time pass on the machine (the live-dump service writes one report per minute).",
    "reboot": "Reboot the machine; the driver's state is gone afterwards.",
}

_KEY_ORDER = (
    "$schema", "$id", "$ref", "title", "description", "type", "const", "enum", "anyOf", "oneOf",
    "properties", "required", "additionalProperties", "items", "minItems", "maxItems", "minimum",
    "maximum", "minLength", "maxLength", "pattern", "format", "default", "examples", "$defs",
)  # fmt: skip


def scenario_json_schema() -> dict[str, Any]:
    """The schema of one scenario document (a YAML stream holds several), JSON Schema draft 2020-12."""
    schema = Scenario.model_json_schema()
    defs: dict[str, Any] = schema.pop("$defs")
    _name_irqls(schema, defs)
    _complete_names(defs)
    _describe_steps(defs)
    _allow_shorthands(defs)
    _add_include_step(schema, defs)
    _allow_references(schema, defs)
    top = {
        "$schema": SCHEMA_DIALECT,
        "$id": SCHEMA_ID,
        "title": SCHEMA_TITLE,
        "description": schema.pop("description", ""),
        **{key: value for key, value in schema.items() if key != "title"},
        "$defs": defs,
    }
    return _ordered(top)


def _irql_schema() -> dict[str, Any]:
    return {
        "description": "The IRQL the step's call runs at.",
        "anyOf": [
            {"type": "string", "enum": [irql.name for irql in Irql]},
            {"type": "integer", "minimum": min(Irql), "maximum": max(Irql)},
        ],
        "default": Irql.PASSIVE_LEVEL.name,
    }


def _name_irqls(schema: dict[str, Any], defs: dict[str, Any]) -> None:
    """pydantic gives a $ref to the integer enum beside a name enum, which no value satisfies: use names."""
    defs.pop("Irql", None)
    for node in _walk([schema, defs]):
        properties = node.get("properties") if isinstance(node, dict) else None
        if isinstance(properties, dict) and properties.get("irql", {}).get("$ref") == "#/$defs/Irql":
            properties["irql"] = _irql_schema()


def _complete_names(defs: dict[str, Any]) -> None:
    """Known status names and defect ids as suggestions (status) or the closed list (defect ids)."""
    status = defs["Expect"]["properties"]["status"]
    for choice in status.get("anyOf", [status]):
        if choice.get("type") != "null":
            choice["examples"] = sorted(STATUS_CODES)
    defs["KnownDefectRef"]["properties"]["id"]["enum"] = sorted(KNOWN_DEFECTS)


def _describe_steps(defs: dict[str, Any]) -> None:
    for operation, model in STEP_KINDS.items():
        definition = defs[model.__name__]
        definition.setdefault("description", _STEP_SUMMARIES[operation])


def _allow_shorthands(defs: dict[str, Any]) -> None:
    for name, field_name in _SHORTHAND_FIELD.items():
        mapping = defs[name]
        shorthand = copy.deepcopy(mapping["properties"][field_name])
        alternatives = [alt for alt in shorthand.pop("anyOf", [shorthand]) if alt.get("type") != "null"]
        for key in ("title", "default"):
            shorthand.pop(key, None)
        short = alternatives[0] if len(alternatives) == 1 else {"anyOf": alternatives}
        header = {key: mapping.pop(key) for key in ("title", "description") if key in mapping}
        defs[name] = {**header, "anyOf": [short, mapping]}


VARIABLE_REFERENCE = r"\$\{\s*[A-Za-z_][A-Za-z0-9_]*\s*\}"
"""A string holding a `${name}` reference: exactly one (`${size}`, any type once substituted) or inside
text (`LiveKernelReports/${report_type}`, a constrained string once substituted); the loader checks
the value it becomes."""

_LANGUAGE_KEYS = ("vars", "parametrize")  # their values are the variables themselves, never references


def _add_include_step(schema: dict[str, Any], defs: dict[str, Any]) -> None:
    """`- include: FILE` is a step in the file though the loader replaces it before validation."""
    include = IncludeStep.model_json_schema(ref_template="#/$defs/{model}")
    defs.update(include.pop("$defs", {}))
    include["description"] = (
        "Replaced by the steps of a *.steps.yaml file (path relative to this file) when loaded."
    )
    defs["IncludeStep"] = include
    schema["properties"]["steps"]["items"]["oneOf"].append({"$ref": "#/$defs/IncludeStep"})


def _allow_references(schema: dict[str, Any], defs: dict[str, Any]) -> None:
    """Any value may be written as `${name}` (replaced by the loader): every constrained leaf (a
    number, a boolean, an enum, a pattern) also accepts a reference. Plain strings already do."""
    for name in list(defs):
        defs[name] = _referable(defs[name], wrap=False)  # a definition is used through its $refs
    properties = schema["properties"]
    for name in list(properties):
        if name not in _LANGUAGE_KEYS:  # the list of steps itself is written out, its items may not be
            properties[name] = _referable(properties[name], wrap=name != "steps")
    defs["VariableReference"] = {
        "description": "${name}, alone or inside text: the value of a var or parametrize column, "
        "substituted when loaded (and checked then).",
        "type": "string",
        "pattern": VARIABLE_REFERENCE,
    }


_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMAS = ("items", "additionalProperties", "not")


def _referable(node: Any, *, wrap: bool = True) -> Any:
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {name: _referable(sub) for name, sub in value.items()}
        elif key == "anyOf":
            out[key] = _flat_alternatives([_referable(sub) for sub in value])
        elif key in _SUBSCHEMA_LISTS:  # oneOf: a reference would match several alternatives
            out[key] = [_referable(sub, wrap=False) for sub in value]
        elif key in _SUBSCHEMAS:
            out[key] = _referable(value)
        else:
            out[key] = value
    return _with_reference(out) if wrap else out


_REFERENCE = {"$ref": "#/$defs/VariableReference"}


def _flat_alternatives(alternatives: list[Any]) -> list[Any]:
    """`anyOf: [int, null]` with a reference reads `anyOf: [int, null, reference]`, not nested."""
    flat, referable = [], False
    for alternative in alternatives:
        if (
            isinstance(alternative, dict)
            and list(alternative) == ["anyOf"]
            and _REFERENCE in alternative["anyOf"]
        ):
            flat += [sub for sub in alternative["anyOf"] if sub != _REFERENCE]
            referable = True
        else:
            flat.append(alternative)
    return [*flat, _REFERENCE] if referable and _REFERENCE not in flat else flat


def _with_reference(node: dict[str, Any]) -> dict[str, Any]:
    """The node, or `anyOf: [node, reference]`; a plain string already matches `${name}`."""
    plain_string = node.get("type") == "string" and not any(
        key in node for key in ("enum", "const", "pattern", "format", "maxLength", "minLength")
    )
    if plain_string or "anyOf" in node or "oneOf" in node or node == _REFERENCE:
        return node
    header = {k: node[k] for k in ("title", "description", "default") if k in node}
    body = {k: v for k, v in node.items() if k not in header}
    return {**header, "anyOf": [body, dict(_REFERENCE)]}


def _walk(node: Any) -> list[Any]:
    """Every dict and list inside `node`, `node` included."""
    found = [node]
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    for child in children:
        if isinstance(child, dict | list):
            found += _walk(child)
    return found


def _ordered(node: Any, *, names: bool = False) -> Any:
    """Keywords in a fixed reading order; `properties` keep the models' field order, `$defs` go by name."""
    if isinstance(node, list):
        return [_ordered(item) for item in node]
    if not isinstance(node, dict):
        return node
    if names:
        return {key: _ordered(value) for key, value in node.items()}
    rank = {key: index for index, key in enumerate(_KEY_ORDER)}
    keys = sorted(node, key=lambda key: (rank.get(key, len(rank)), key))
    out = {}
    for key in keys:
        value = node[key]
        if key == "$defs":
            out[key] = {name: _ordered(value[name]) for name in sorted(value)}
        else:
            out[key] = _ordered(value, names=key == "properties")
    return out

"""What the scenario models expect at a node, found by walking their type annotations.

pydantic's own messages ("Input should be a valid integer") name neither the range nor the choices; a
scenario author needs both ("expected an integer (0..0xFFFFFFFF)"). The models already state them as
annotations (`Field(ge=0, le=...)`, `Literal[...]`, a `pattern`), so the descriptions are read from
there rather than kept in a second table that could drift.
"""

from __future__ import annotations

import types
import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, Tag
from pydantic.fields import FieldInfo

from harness.scenario import model
from harness.target.irql import Irql

# Models that also accept a single scalar (their `_shorthand` validators), and what that scalar is.
SHORTHANDS: dict[type[BaseModel], str] = {
    model.BufferSlice: "a buffer name",
    model.ContainsItem: "a buffer name",
    model.StoreCollectionSpec: "an integer",
    model.WaitSpec: "a number of seconds",
    model.Expect: "a status name or number",
}

_IDENTIFIER_PATTERN = "^[A-Za-z_][A-Za-z0-9_.-]*$"


@dataclass(frozen=True)
class TypeAt:
    """A bare type, with the constraints (Ge, Le, MinLen, pattern, Tag...) of its Annotated layers."""

    tp: Any
    meta: tuple[Any, ...] = ()

    def constraint(self, name: str) -> Any:
        """The value of a constraint such as `ge` or `max_length`, or None."""
        for item in self.meta:
            value = getattr(item, name, None)
            if value is not None:
                return value
        return None


def resolve(tp: Any, meta: tuple[Any, ...] = ()) -> TypeAt:
    """Strip Annotated layers and `| None`, keeping the constraints; a real union stays a union."""
    while True:
        if get_origin(tp) is Annotated:
            args = get_args(tp)
            tp, meta = args[0], meta + tuple(_flatten(args[1:]))
            continue
        members = [arg for arg in get_args(tp) if arg is not type(None)] if _is_union(tp) else []
        if len(members) == 1:
            tp = members[0]
            continue
        return TypeAt(tp, meta)


def _flatten(items: tuple[Any, ...]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        out.extend(item.metadata if isinstance(item, FieldInfo) else [item])
    return out


def _is_union(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType)


def union_members(at: TypeAt) -> list[TypeAt]:
    """The alternatives of a union (without None); empty when `at` is not a union."""
    if not _is_union(at.tp):
        return []
    return [resolve(arg, at.meta) for arg in get_args(at.tp) if arg is not type(None)]


def model_class(at: TypeAt | None) -> type[BaseModel] | None:
    if at is not None and isinstance(at.tp, type) and issubclass(at.tp, BaseModel):
        return at.tp
    return None


def field_type(cls: type[BaseModel], name: Any) -> TypeAt | None:
    info = cls.model_fields.get(name) if isinstance(name, str) else None
    return None if info is None else resolve(info.annotation, tuple(info.metadata))


def list_item(at: TypeAt | None) -> TypeAt | None:
    if at is not None and get_origin(at.tp) is list:
        return resolve(get_args(at.tp)[0])
    return None


def choose_member(members: list[TypeAt], part: Any) -> tuple[TypeAt | None, bool]:
    """Which alternative a loc element selects, and whether the element was only that selection.

    pydantic puts a label in the loc for each union alternative it tried: the discriminator tag of a
    step ('store'), a model's name ('CountRange') or a type's ('bool', 'constrained-int',
    "literal['collection','any']"). A tag is checked first because it is also the step's field name.
    """
    for member in members:
        if any(isinstance(item, Tag) and item.tag == part for item in member.meta):
            return member, True
    for member in members:
        cls = model_class(member)
        if cls is not None and isinstance(part, str) and part in cls.model_fields:
            return member, False
    for member in members:
        if _label_matches(member, part):
            return member, True
    return None, isinstance(part, str)


def _label_matches(member: TypeAt, label: Any) -> bool:
    if not isinstance(label, str):
        return False
    cls = model_class(member)
    if cls is not None:
        return label == cls.__name__
    if get_origin(member.tp) is Literal:
        return label.startswith("literal[")
    if get_origin(member.tp) is list:
        return label.startswith("list[")
    name = getattr(member.tp, "__name__", "").lower()
    return label in (name, f"constrained-{name}")


def allowed_keys(cls: type[BaseModel]) -> list[str]:
    return list(cls.model_fields)


def describe(at: TypeAt | None) -> str | None:
    """'an integer (0..0xFFFFFFFF)', 'one of: a boolean, an integer (0..255)'; None when unknown."""
    if at is None:
        return None
    members = union_members(at)
    if members:
        # Literal alternatives are listed as their values: "one of: an integer, 'collection', 'any'"
        parts = [
            ", ".join(map(_yaml_text, get_args(m.tp))) if get_origin(m.tp) is Literal else describe(m)
            for m in members
        ]
        return None if None in parts else "one of: " + ", ".join(p for p in parts if p)
    cls = model_class(at)
    if cls is not None:
        mapping = f"a mapping with keys {', '.join(allowed_keys(cls))}"
        return f"{SHORTHANDS[cls]} or {mapping}" if cls in SHORTHANDS else mapping
    origin = get_origin(at.tp)
    if origin is Literal:
        return _describe_literal(get_args(at.tp))
    if origin is list:
        return "a list" + _count_range(at.constraint("min_length"), at.constraint("max_length"))
    return _describe_scalar(at)


def _describe_scalar(at: TypeAt) -> str | None:
    tp = at.tp
    if tp is bool:
        return "a boolean (true or false)"
    if tp is Irql:
        return "an IRQL: one of " + ", ".join(member.name for member in Irql)
    if tp is int or tp is float:
        noun = "an integer" if tp is int else "a number"
        return noun + _value_range(at.constraint("ge"), at.constraint("le"))
    if tp is str:
        return _describe_string(at)
    if tp is bytes:
        return "hex bytes such as 'DE AD BE EF'"
    if tp is uuid.UUID:
        return "a GUID such as 5f1c2a3b-0000-4c6e-9d7a-1234567890ab"
    return None


def _describe_string(at: TypeAt) -> str:
    pattern = at.constraint("pattern")
    longest = at.constraint("max_length")
    qualifiers = []
    if pattern == _IDENTIFIER_PATTERN:
        noun = "a name"
        qualifiers.append("letters, digits, '_', '.', '-'; starting with a letter or '_'")
    else:
        noun = f"a string matching {pattern}" if pattern else "a string"
    if longest:
        qualifiers.append(f"at most {longest} characters")
    return noun + (f" ({'; '.join(qualifiers)})" if qualifiers else "")


def _describe_literal(values: tuple[Any, ...]) -> str:
    shown = [_yaml_text(value) for value in values]
    return shown[0] if len(shown) == 1 else "one of " + ", ".join(shown)


def _yaml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _value_range(low: Any, high: Any) -> str:
    if low is None and high is None:
        return ""
    if high is None:
        return f" (≥ {_number(low)})"
    if low is None:
        return f" (≤ {_number(high)})"
    return f" ({_number(low)}..{_number(high)})"


def _number(value: Any) -> str:
    """All-ones limits read better in hex (0xFFFFFFFF), others in decimal."""
    if isinstance(value, int) and value >= 0xFFFF and (value + 1) & value == 0:
        return f"0x{value:X}"
    return str(value)


def _count_range(low: int | None, high: int | None) -> str:
    if low and high:
        return f" of {low}..{high} items"
    if low:
        return f" of at least {low} item{'s' if low != 1 else ''}"
    if high:
        return f" of at most {high} items"
    return ""


def describe_found(value: Any) -> str:
    """What the user wrote, in YAML words: `string 'abc'`, `integer 300`, `a mapping`."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"boolean {_yaml_text(value)}"
    if isinstance(value, int):
        return f"integer {value}" + (f" (0x{value:X})" if value > 0xFFFF else "")
    if isinstance(value, float):
        return f"number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"string {shown!r}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return (
            "an empty list" if not value else f"a list of {len(value)} item{'s' if len(value) != 1 else ''}"
        )
    return type(value).__name__

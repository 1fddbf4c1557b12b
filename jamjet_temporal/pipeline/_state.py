"""A pipeline's state schema: JamJet's two shapes as one JSON Schema, defaults, input checks.

``workflow.state_schema`` is written either as JamJet's ``jamjet init`` templates write it, a
short map of field to type::

    state_schema: {request: str, approved: bool, sources: list}

or as JSON Schema (``type: object``, ``properties``, ``required``, ``default``). Both become one
JSON Schema here. In the short map every field is optional (the templates list the fields the
run *writes* too); a field may also be a mapping ``{type: str, default: ..., required: true}``.

Pure and deterministic: the workflow applies defaults and checks required fields with it (a
client that skipped ``jamjet run``'s full JSON Schema check is still refused).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from pydantic import JsonValue

__all__ = [
    "SHORT_TYPES",
    "apply_defaults",
    "input_example",
    "is_json_schema",
    "missing_required",
    "normalize_schema",
    "type_problems",
]

#: The short form's type names and the JSON Schema type each means.
SHORT_TYPES: Final[Mapping[str, str | None]] = {
    "str": "string",
    "string": "string",
    "text": "string",
    "int": "integer",
    "integer": "integer",
    "float": "number",
    "number": "number",
    "bool": "boolean",
    "boolean": "boolean",
    "list": "array",
    "array": "array",
    "dict": "object",
    "object": "object",
    "map": "object",
    "any": None,
    "json": None,
}
_GENERIC_RE: Final = re.compile(r"^(list|array|dict|map)\[(.+)\]$")
_JSON_SCHEMA_KEYS: Final = frozenset({"$schema", "properties", "required", "$defs", "definitions"})
_PYTHON_TYPES: Final[Mapping[str, tuple[type, ...]]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "null": (type(None),),
}


def is_json_schema(schema: Mapping[str, object]) -> bool:
    """Whether a ``state_schema`` mapping is JSON Schema (else JamJet's short map)."""
    if _JSON_SCHEMA_KEYS & set(schema):
        return True
    return schema.get("type") == "object" and not any(
        isinstance(value, str) and value != "object" for value in schema.values()
    )


def short_type(text: str) -> dict[str, JsonValue]:
    """The JSON Schema of one short-form type (``str``, ``list[str]``, ``int?``).

    Raises:
        ValueError: An unknown type name.
    """
    name = text.strip()
    if name.endswith("?"):
        inner = short_type(name[:-1])
        return {"anyOf": [inner, {"type": "null"}]}
    generic = _GENERIC_RE.match(name.lower())
    if generic is not None:
        container, item = generic.groups()
        if container in ("list", "array"):
            return {"type": "array", "items": short_type(item)}
        return {"type": "object", "additionalProperties": short_type(item.split(",")[-1])}
    lowered = name.lower()
    if lowered not in SHORT_TYPES:
        known = ", ".join(sorted({key for key in SHORT_TYPES if key.isalpha()}))
        raise ValueError(f"unknown type {text!r}; use one of {known} (or list[str], int?)")
    json_type = SHORT_TYPES[lowered]
    return {} if json_type is None else {"type": json_type}


def normalize_schema(schema: Mapping[str, object]) -> dict[str, JsonValue]:
    """One JSON Schema for either shape of ``state_schema``.

    Raises:
        ValueError: A short-form field whose type is unknown or whose entry is malformed.
    """
    if is_json_schema(schema):
        return dict(schema)  # type: ignore[arg-type]
    properties: dict[str, JsonValue] = {}
    required: list[JsonValue] = []
    for field, spec in schema.items():
        if isinstance(spec, str):
            properties[field] = short_type(spec)
        elif isinstance(spec, dict):
            entry = dict(spec)
            is_required = entry.pop("required", False)
            kind = entry.pop("type", None)
            converted: dict[str, JsonValue] = {}
            if isinstance(kind, str):
                converted = short_type(kind)
            elif kind is not None:
                converted = {"type": kind}
            converted.update(entry)
            properties[field] = converted
            if is_required is True:
                required.append(field)
        elif spec is None:
            properties[field] = {}
        else:
            raise ValueError(
                f"field {field!r}: write a type name (str, int, float, bool, list, dict) or a "
                f"mapping with `type:` and `default:`, not {spec!r}"
            )
    result: dict[str, JsonValue] = {"type": "object", "properties": properties}
    if required:
        result["required"] = required
    return result


def _properties(schema: Mapping[str, JsonValue]) -> Mapping[str, JsonValue]:
    props = schema.get("properties")
    return props if isinstance(props, dict) else {}


def apply_defaults(
    schema: Mapping[str, JsonValue] | None, state: Mapping[str, JsonValue]
) -> dict[str, JsonValue]:
    """The state with every top-level ``default`` filled in where the input has no value."""
    result = dict(state)
    if schema is None:
        return result
    for field, spec in _properties(schema).items():
        if field not in result and isinstance(spec, dict) and "default" in spec:
            result[field] = _copy(spec["default"])
    return result


def _copy(value: JsonValue) -> JsonValue:
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


def missing_required(
    schema: Mapping[str, JsonValue] | None, state: Mapping[str, JsonValue]
) -> list[str]:
    """Required top-level fields the state does not have."""
    if schema is None:
        return []
    required = schema.get("required")
    if not isinstance(required, list):
        return []
    return [field for field in required if isinstance(field, str) and field not in state]


def type_problems(
    schema: Mapping[str, JsonValue] | None, state: Mapping[str, JsonValue]
) -> list[str]:
    """Top-level fields whose value is not of the declared ``type`` (a pure, partial check)."""
    problems: list[str] = []
    if schema is None:
        return problems
    for field, spec in _properties(schema).items():
        if field not in state or not isinstance(spec, dict):
            continue
        declared = spec.get("type")
        names = [declared] if isinstance(declared, str) else declared
        if not isinstance(names, list) or not names:
            continue
        value = state[field]
        ok = False
        for name in names:
            kinds = _PYTHON_TYPES.get(name) if isinstance(name, str) else None
            if kinds is None or (isinstance(value, kinds) and not _bool_as_number(value, name)):
                ok = True
                break
        if not ok:
            got = type(value).__name__ if value is not None else "null"
            wanted = " or ".join(str(name) for name in names)
            problems.append(f"'{field}' must be {wanted}, got {got}")
    return problems


def _bool_as_number(value: JsonValue, name: object) -> bool:
    return isinstance(value, bool) and name in ("integer", "number")


_EXAMPLES: Final[Mapping[str, JsonValue]] = {
    "string": "...",
    "integer": 1,
    "number": 1.0,
    "boolean": True,
    "array": [],
    "object": {},
}


def input_example(
    schema: Mapping[str, JsonValue] | None, fields: list[str]
) -> dict[str, JsonValue]:
    """An ``--input`` object giving ``fields`` a value of their declared type."""
    props = _properties(schema or {})
    example: dict[str, JsonValue] = {}
    for field in fields:
        spec = props.get(field)
        kind = spec.get("type") if isinstance(spec, dict) else None
        if isinstance(spec, dict) and isinstance(spec.get("enum"), list) and spec["enum"]:
            example[field] = spec["enum"][0]  # type: ignore[index]
        else:
            example[field] = _EXAMPLES.get(kind, "...") if isinstance(kind, str) else "..."
    return example

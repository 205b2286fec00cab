"""Parsing, validation and normal form of the Avro schemas the registry stores.

Two schemas are "the same" for the registry (same id, found by lookup) when their *normal form*
is equal: the schema parsed by Apache Avro, written back as compact JSON with sorted object keys.
Whitespace, key order and equivalent spellings (``"int"`` and ``{"type": "int"}``, a full name
or a name plus namespace) disappear, while everything that changes how data is resolved stays.
The stricter Avro *Parsing Canonical Form* is deliberately not used for equality: it drops
defaults and aliases, so a schema that adds a default would be taken for the old one and get its
id, although readers resolve it differently.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import avro.schema

from featurestore.schema_registry.errors import InvalidSchemaError

__all__ = ["AVRO", "ParsedSchema", "parse_schema"]

AVRO = "AVRO"
"""The one schema type this registry serves (``GET /schemas/types``)."""

_NAMED = ("record", "error", "enum", "fixed")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
"""An Avro name, by the specification (Java's strict name validator, which Confluent uses)."""
_INT_RANGE = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}


@dataclass(frozen=True)
class ParsedSchema:
    """An Avro schema accepted by the registry."""

    text: str
    """Compact JSON of the parsed schema: what the registry stores and serves."""
    normal_form: str
    """``text`` with sorted keys: equal for schemas the registry treats as the same."""
    avro: avro.schema.Schema
    """The parsed schema used for compatibility checks (aliases fully qualified)."""


_JSON_KINDS = {
    "NoneType": "null", "str": "a string", "int": "a number", "float": "a number",
    "bool": "a boolean", "dict": "an object", "list": "an array",
}  # fmt: skip


def _reason(exc: Exception) -> str:
    """The parser's message, its Python type reprs said in JSON's terms.

    A client sent JSON, and no answer names a Python class (``<class 'NoneType'>`` -> null).
    """
    return re.sub(
        r"<class '(?:builtins\.)?([\w.]+)'>",
        lambda m: _JSON_KINDS.get(m.group(1), m.group(1).rsplit(".", 1)[-1]),
        str(exc),
    )


def parse_schema(text: str, *, as_new: bool = True) -> ParsedSchema:
    """Parse and validate an Avro schema given as JSON text.

    Args:
        text: The schema as sent by a client or read back from the log.
        as_new: Validate it as a schema about to be registered, beyond what Apache Avro's
            Python parser checks: every field default must be a valid value of the field's
            type, and every name (of a field, a named type, a namespace's parts, an enum
            symbol) must follow the specification, as Confluent's registry demands of a new
            schema. Off when replaying the log, whose schemas were validated when registered.

    Raises:
        InvalidSchemaError: The text is not JSON, not a valid Avro schema, has a bad default or
            a bad name.
    """
    if not text or not text.strip():
        raise InvalidSchemaError("Empty schema")
    try:
        parsed = avro.schema.parse(text)
        as_json = parsed.to_json()
    except Exception as exc:  # avro raises many types (SchemaParseException, TypeError, ...)
        raise InvalidSchemaError(f"Invalid schema {text}: {_reason(exc)}") from exc
    if as_new:
        _check_names(parsed)
        _check_defaults(parsed)
    compact = json.dumps(as_json, separators=(",", ":"))
    normal = json.dumps(as_json, separators=(",", ":"), sort_keys=True)
    qualified = _qualify_aliases(as_json, "")
    checked = parsed if qualified == as_json else avro.schema.parse(json.dumps(qualified))
    return ParsedSchema(text=compact, normal_form=normal, avro=checked)


def _qualify_aliases(node: Any, namespace: str) -> Any:
    """Rewrite the aliases of named types as full names.

    The Avro specification lets an alias be relative to the namespace of its type, and the Java
    implementation (so Confluent's registry) resolves it so. ``avro.compatibility`` compares the
    raw alias strings with the writer's full name, so a relative alias would never match; this
    rewrite closes that gap before the checker sees the schema.
    """
    if isinstance(node, list):
        return [_qualify_aliases(item, namespace) for item in node]
    if not isinstance(node, dict):
        return node
    out = dict(node)
    kind = out.get("type")
    if kind in _NAMED and isinstance(out.get("name"), str):
        name: str = out["name"]
        own_ns = name.rpartition(".")[0] if "." in name else str(out.get("namespace") or namespace)
        aliases = out.get("aliases")
        if isinstance(aliases, list):
            out["aliases"] = [
                a if not isinstance(a, str) or "." in a or not own_ns else f"{own_ns}.{a}"
                for a in aliases
            ]
        if kind in ("record", "error") and isinstance(out.get("fields"), list):
            out["fields"] = [
                {**f, "type": _qualify_aliases(f.get("type"), own_ns)} if isinstance(f, dict) else f
                for f in out["fields"]
            ]
        return out
    if kind == "array":
        out["items"] = _qualify_aliases(out.get("items"), namespace)
    elif kind == "map":
        out["values"] = _qualify_aliases(out.get("values"), namespace)
    elif isinstance(kind, dict | list):
        out["type"] = _qualify_aliases(kind, namespace)
    return out


def _types(
    schema: avro.schema.Schema, seen: set[str] | None = None
) -> Iterator[avro.schema.Schema]:
    """``schema`` and every type inside it, each named type once (a recursive one too)."""
    seen = set() if seen is None else seen
    if isinstance(schema, avro.schema.NamedSchema):
        if schema.fullname in seen:
            return
        seen.add(schema.fullname)
    yield schema
    if isinstance(schema, avro.schema.RecordSchema):
        inner = [field.type for field in schema.fields]
    elif isinstance(schema, avro.schema.ArraySchema):
        inner = [schema.items]
    elif isinstance(schema, avro.schema.MapSchema):
        inner = [schema.values]
    elif isinstance(schema, avro.schema.UnionSchema):
        inner = list(schema.schemas)
    else:
        inner = []
    for each in inner:
        yield from _types(each, seen)


def _check_names(schema: avro.schema.Schema) -> None:
    """Raise :class:`InvalidSchemaError` for a name the Avro specification does not allow.

    Apache Avro's Python parser checks the names of named types (not every part of their
    namespaces) and enum symbols, but not field names: a field called ``f-x`` would be
    accepted here and then refused by every Java reader, Confluent's registry included.
    """
    for each in _types(schema):
        if isinstance(each, avro.schema.NamedSchema):
            for part in each.fullname.split("."):
                _check_name(part, f"name of {each.type} {each.fullname!r}")
        if isinstance(each, avro.schema.RecordSchema):
            for field in each.fields:
                _check_name(field.name, f"field name in {each.fullname!r}")
        elif isinstance(each, avro.schema.EnumSchema):
            for symbol in each.symbols:
                _check_name(symbol, f"symbol of enum {each.fullname!r}")


def _check_name(name: str, what: str) -> None:
    if not _NAME.fullmatch(name):
        raise InvalidSchemaError(
            f"Invalid {what}: {json.dumps(name, ensure_ascii=False)} is not a valid Avro name "
            "(a letter or _, then letters, digits or _)"
        )


def _check_defaults(schema: avro.schema.Schema) -> None:
    """Raise :class:`InvalidSchemaError` for a field default that its type cannot hold.

    A reader uses a default to fill a field the writer lacks; an invalid one makes every such
    read fail at run time, long after the schema was accepted.
    """
    for each in _types(schema):
        if isinstance(each, avro.schema.RecordSchema):
            for field in each.fields:
                if field.has_default and not _valid_default(field.type, field.default):
                    raise InvalidSchemaError(
                        f"Invalid default for field {field.name} of {each.fullname}: "
                        f"{json.dumps(field.default)} is not a {field.type.type}"
                    )


def _valid_default(schema: avro.schema.Schema, value: Any) -> bool:
    """Whether ``value`` (the JSON of a default) is a valid value of ``schema``.

    Follows the Java implementation's ``Schema.isValidDefault``, which Confluent's registry uses:
    a union default may match any branch.
    """
    kind = schema.type
    if kind == "null":
        return value is None
    if kind == "boolean":
        return isinstance(value, bool)
    if kind in _INT_RANGE:
        low, high = _INT_RANGE[kind]
        return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    if kind in ("float", "double"):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind in ("string", "bytes"):
        return isinstance(value, str)
    if isinstance(schema, avro.schema.FixedSchema):
        return isinstance(value, str) and len(value) == schema.size
    if isinstance(schema, avro.schema.EnumSchema):
        return isinstance(value, str) and value in schema.symbols
    if isinstance(schema, avro.schema.ArraySchema):
        return isinstance(value, list) and all(_valid_default(schema.items, v) for v in value)
    if isinstance(schema, avro.schema.MapSchema):
        return isinstance(value, dict) and all(
            _valid_default(schema.values, v) for v in value.values()
        )
    if isinstance(schema, avro.schema.UnionSchema):
        return any(_valid_default(branch, value) for branch in schema.schemas)
    if isinstance(schema, avro.schema.RecordSchema):
        return isinstance(value, dict) and all(
            _valid_default(f.type, value[f.name]) if f.name in value else f.has_default
            for f in schema.fields
        )
    return False

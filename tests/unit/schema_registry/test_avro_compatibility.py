from __future__ import annotations

import json
from typing import Any

import pytest

from featurestore.errors import SchemaError
from featurestore.errors import ValidationError
from featurestore.schema_registry import CompatibilityLevel
from featurestore.schema_registry import check_compatibility
from featurestore.schema_registry import parse_schema
from featurestore.schema_registry.avro_schema import ParsedSchema
from featurestore.schema_registry.errors import InvalidCompatibilityLevelError
from featurestore.schema_registry.errors import InvalidSchemaError


def record(*fields: dict[str, Any], name: str = "Trade", **extra: Any) -> ParsedSchema:
    return parse_schema(
        json.dumps({"type": "record", "name": name, "fields": list(fields), **extra})
    )


def field(name: str, kind: Any, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": kind, **extra}


# -- parsing and normal form ---------------------------------------------------------------------


def test_normal_form_ignores_spelling() -> None:
    a = parse_schema('{"type":"record","name":"ns.R","fields":[{"name":"x","type":"int"}]}')
    b = parse_schema(
        """{ "fields": [ {"type": {"type": "int"}, "name": "x"} ],
             "namespace": "ns", "name": "R", "type": "record" }"""
    )
    assert a.normal_form == b.normal_form
    assert json.loads(a.text)["name"] == "R"


def test_normal_form_keeps_defaults_and_aliases() -> None:
    plain = record(field("x", "int"))
    assert plain.normal_form != record(field("x", "int", default=0)).normal_form
    assert plain.normal_form != record(field("x", "int", aliases=["y"])).normal_form


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "not json",
        '{"type":"nope"}',
        '{"type":"record","name":"R"}',
        '{"type":"enum"}',
        '{"type":"record"}',
        '{"type":"record","name":1,"fields":[]}',
    ],
)
def test_invalid_schemas_are_refused(text: str) -> None:
    with pytest.raises(InvalidSchemaError) as caught:
        parse_schema(text)
    assert isinstance(caught.value, SchemaError)
    assert caught.value.error_code == 42201
    assert "<class" not in str(caught.value)  # the parser's type reprs said in JSON's terms


@pytest.mark.parametrize(
    ("kind", "default"),
    [
        ("int", "zero"),
        ("int", 2**31),
        ("long", 1.5),
        ("boolean", 0),
        ("string", None),
        ({"type": "enum", "name": "Side", "symbols": ["BUY", "SELL"]}, "HOLD"),
        ({"type": "fixed", "name": "F4", "size": 4}, "abc"),
        ({"type": "array", "items": "int"}, ["a"]),
        ({"type": "map", "values": "long"}, {"a": "b"}),
        (["null", "int"], "x"),
        ({"type": "record", "name": "P", "fields": [{"name": "q", "type": "int"}]}, {}),
    ],
)
def test_invalid_defaults_are_refused(kind: Any, default: Any) -> None:
    # Apache Avro's Python parser accepts these; a reader would fail on them at run time.
    with pytest.raises(InvalidSchemaError, match="Invalid default"):
        record(field("x", kind, default=default))


@pytest.mark.parametrize(
    ("kind", "default"),
    [
        ("int", -(2**31)),
        ("double", 1),
        ("float", 0.5),
        ("bytes", "\u00ff"),
        (["null", "string"], None),
        (["null", "string"], "x"),  # any branch, as Java's Schema.isValidDefault
        ({"type": "enum", "name": "Side", "symbols": ["BUY", "SELL"]}, "SELL"),
        ({"type": "fixed", "name": "F2", "size": 2}, "ab"),
        ({"type": "array", "items": "int"}, [1, 2]),
        ({"type": "map", "values": "long"}, {"a": 1}),
        (
            {
                "type": "record",
                "name": "P",
                "fields": [
                    {"name": "q", "type": "int"},
                    {"name": "r", "type": "int", "default": 1},
                ],
            },
            {"q": 1},
        ),
    ],
)
def test_valid_defaults_are_accepted(kind: Any, default: Any) -> None:
    record(field("x", kind, default=default))


def test_replayed_schemas_skip_default_validation() -> None:
    text = json.dumps({"type": "record", "name": "R", "fields": [field("x", "int", default="z")]})
    assert parse_schema(text, as_new=False).text


# -- levels ----------------------------------------------------------------------------------------


def test_level_parse() -> None:
    assert CompatibilityLevel.parse("full_transitive") is CompatibilityLevel.FULL_TRANSITIVE
    with pytest.raises(InvalidCompatibilityLevelError) as caught:
        CompatibilityLevel.parse("sideways")
    assert isinstance(caught.value, ValidationError)
    assert caught.value.error_code == 42203


def test_level_directions() -> None:
    level = CompatibilityLevel
    assert level.BACKWARD.backward and not level.BACKWARD.forward
    assert level.FORWARD_TRANSITIVE.forward and level.FORWARD_TRANSITIVE.transitive
    assert level.FULL.backward and level.FULL.forward and not level.FULL.transitive
    assert not level.NONE.backward and not level.NONE.forward


V1 = record(field("price", "double"))
WITH_DEFAULT = record(field("price", "double"), field("venue", "string", default=""))
WITHOUT_DEFAULT = record(field("price", "double"), field("venue", "string"))


@pytest.mark.parametrize(
    ("level", "new", "compatible"),
    [
        (CompatibilityLevel.BACKWARD, WITH_DEFAULT, True),
        (CompatibilityLevel.BACKWARD, WITHOUT_DEFAULT, False),
        (CompatibilityLevel.FORWARD, WITHOUT_DEFAULT, True),  # old readers ignore the new field
        (CompatibilityLevel.FULL, WITH_DEFAULT, True),
        (CompatibilityLevel.FULL, WITHOUT_DEFAULT, False),
        (CompatibilityLevel.BACKWARD, record(field("price", "string")), False),
        (CompatibilityLevel.BACKWARD, record(field("price", "float")), False),
        (CompatibilityLevel.FORWARD, record(field("price", "float")), True),  # float → double
        (CompatibilityLevel.NONE, record(field("price", "string")), True),
    ],
)
def test_levels_against_one_version(
    level: CompatibilityLevel, new: ParsedSchema, compatible: bool
) -> None:
    assert (not check_compatibility(new, [V1], level)) is compatible


def test_transitive_checks_every_version() -> None:
    v1 = record(field("qty", "string"))
    v2 = record()  # dropped the field: reads v1 data fine
    v3 = record(field("qty", "int", default=0))  # reads v2 data (default), not v1 (string)
    assert not check_compatibility(v3, [v1, v2], CompatibilityLevel.BACKWARD)
    problems = check_compatibility(v3, [v1, v2], CompatibilityLevel.BACKWARD_TRANSITIVE)
    assert problems and "type_mismatch" in problems[0]
    assert not check_compatibility(v3, [], CompatibilityLevel.FULL_TRANSITIVE)


def test_relative_alias_of_a_renamed_record() -> None:
    # The Avro spec lets an alias be relative to the namespace; Java resolves it, and so must we
    # (avro.compatibility compares raw alias strings with the writer's full name).
    writer = parse_schema('{"type":"record","name":"Old","namespace":"md","fields":[]}')
    relative = parse_schema(
        '{"type":"record","name":"New","namespace":"md","aliases":["Old"],"fields":[]}'
    )
    full = parse_schema(
        '{"type":"record","name":"New","namespace":"md","aliases":["md.Old"],"fields":[]}'
    )
    other_ns = parse_schema(
        '{"type":"record","name":"New","namespace":"x","aliases":["Old"],"fields":[]}'
    )
    backward = CompatibilityLevel.BACKWARD
    assert not check_compatibility(relative, [writer], backward)
    assert not check_compatibility(full, [writer], backward)
    assert check_compatibility(other_ns, [writer], backward)
    # The stored text keeps the alias as it was written.
    assert json.loads(relative.text)["aliases"] == ["Old"]


def test_relative_alias_of_a_nested_enum() -> None:
    writer = record(field("side", {"type": "enum", "name": "Side", "symbols": ["B", "S"]}))
    reader = record(
        field("side", {"type": "enum", "name": "Way", "aliases": ["Side"], "symbols": ["B", "S"]}),
        namespace="md",
    )
    writer_ns = record(
        field("side", {"type": "enum", "name": "Side", "symbols": ["B", "S"]}), namespace="md"
    )
    assert not check_compatibility(reader, [writer_ns], CompatibilityLevel.BACKWARD)
    # Unqualified writer enum "Side" is not "md.Side".
    assert check_compatibility(reader, [writer], CompatibilityLevel.BACKWARD)

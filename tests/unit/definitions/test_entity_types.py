"""Join key types: what `featurestore registry apply` accepts, and what it refuses by name.

The processors key every row by the text of the event's entity field and the offline tables
hold join keys as text, so an entity is a String: Feast keys any other type otherwise, and
would find none of the rows the store writes.
"""

from __future__ import annotations

import warnings
from datetime import timedelta
from typing import Any

import pytest

from featurestore.definitions import Definitions
from featurestore.definitions import ValueType
from featurestore.definitions.feast_codec import from_feast
from featurestore.definitions.validate import validate_definitions
from featurestore.errors import ConfigurationError
from tests.unit.tick_views import TIMESTAMP_MICROS as TS
from tests.unit.tick_views import tick_count_definitions

FEAST_KEY_TYPES = ["Int64", "Int32", "Bytes", "UnixTimestamp", "Float64", "Float32", "Bool"]


def _feast_view(name: str, entity: Any, key_dtype: Any | None) -> Any:
    from feast import FeatureView as FeastView
    from feast import Field
    from feast.infra.offline_stores.contrib.postgres_offline_store.postgres_source import (
        PostgreSQLSource,
    )
    from feast.types import Float64

    schema = [Field(name="k", dtype=key_dtype)] if key_dtype is not None else []
    return FeastView(
        name=name,
        entities=[entity],
        ttl=timedelta(0),
        schema=[*schema, Field(name="x", dtype=Float64)],
        source=PostgreSQLSource(name=f"{name}_src", table=name, timestamp_field="ts"),
    )


def _feast_entity(value_type: Any = None) -> Any:
    from feast import Entity as FeastEntity

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Feast warns of an entity without a value type
        return FeastEntity(name="e", join_keys=["k"], value_type=value_type)


def _applied(entity: Any, *views: Any) -> Definitions:
    """What `registry apply` checks: the codec, then validation."""
    definitions = from_feast("p", [entity], list(views), [])
    validate_definitions(definitions)
    return definitions


def test_a_string_join_key_is_accepted() -> None:
    from feast import ValueType as FeastValueType
    from feast.types import String

    entity = _feast_entity(FeastValueType.STRING)
    assert _applied(entity, _feast_view("v", entity, String)).entities[0].value_type is (
        ValueType.STRING
    )


@pytest.mark.parametrize("type_name", FEAST_KEY_TYPES)
def test_any_other_join_key_type_is_refused_naming_the_entity_and_type(type_name: str) -> None:
    from feast import types

    dtype = getattr(types, type_name)
    entity = _feast_entity(dtype.to_value_type())
    with pytest.raises(
        ConfigurationError,
        match=rf"entity 'e': join key 'k' type {type_name} is not supported \(String: ",
    ):
        _applied(entity, _feast_view("v", entity, dtype))


def test_a_declared_type_counts_where_the_view_does_not_list_the_join_key() -> None:
    """Feast then keys the entity by its declared type; the codec read it as a String."""
    from feast import ValueType as FeastValueType

    entity = _feast_entity(FeastValueType.INT64)
    definitions = from_feast("p", [entity], [_feast_view("v", entity, None)], [])
    assert definitions.entities[0].value_type is ValueType.INT64
    with pytest.raises(ConfigurationError, match="entity 'e': join key 'k' type Int64"):
        validate_definitions(definitions)


def test_views_typing_one_join_key_differently_are_refused() -> None:
    from feast.types import Int64
    from feast.types import String

    entity = _feast_entity()
    views = [_feast_view("a", entity, String), _feast_view("b", entity, Int64)]
    with pytest.raises(
        ConfigurationError,
        match=r"entity 'e': join key 'k' is String in feature view 'a' but Int64 in 'b'",
    ):
        from_feast("p", [entity], views, [])


def test_a_join_key_that_is_no_scalar_is_refused_naming_the_entity() -> None:
    from feast import ValueType as FeastValueType
    from feast.types import Array
    from feast.types import String

    entity = _feast_entity(FeastValueType.STRING_LIST)
    with pytest.raises(
        ConfigurationError, match=r"entity 'e': join key 'k' has type Array\(String\)"
    ):
        from_feast("p", [entity], [_feast_view("v", entity, Array(String))], [])


@pytest.mark.parametrize(
    ("fields", "id_field", "message"),
    [
        (
            {"key": "long", "ts": TS, "x": "double"},
            None,
            "entity_field 'key' has Avro type long; the processors read it from string",
        ),
        (
            {"key": "string", "ts": "string", "x": "double"},
            None,
            "timestamp_field 'ts' has Avro type string; the processors read it from int or long",
        ),
        (
            {"key": "string", "ts": TS, "x": "double", "id": "long"},
            "id",
            "id_field 'id' has Avro type long; the processors read it from string",
        ),
        (
            {"key": "null", "ts": TS, "x": "double"},
            None,
            "entity_field 'key' has Avro type null; the processors read it from string",
        ),
    ],
    ids=["entity-long", "time-string", "id-long", "entity-null"],
)
def test_a_source_field_the_processors_cannot_decode_is_refused(
    fields: dict[str, Any], id_field: str | None, message: str
) -> None:
    """Otherwise every event is dead-lettered ("field 'key' is not string")."""
    with pytest.raises(ConfigurationError, match=rf"feature view 'w' source 'ticks': {message}"):
        validate_definitions(tick_count_definitions(fields, id_field=id_field))


def test_a_nullable_string_entity_field_is_accepted() -> None:
    validate_definitions(
        tick_count_definitions(
            {"key": ["null", "string"], "ts": TS, "x": "double", "id": "string"}, id_field="id"
        )
    )

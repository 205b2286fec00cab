"""Online keys of each join key type, compared byte for byte with Feast's own.

The layout keys a value by its own type (text as a String, a whole number as an Int64), not by
the view's: the catalogs refuse a view keyed by any other type, where no key would match.
"""

from __future__ import annotations

import warnings
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pyarrow as pa
import pytest

from featurestore.definitions import ValueType
from featurestore.errors import ConfigurationError
from featurestore.online.base import EntityKey
from featurestore.online.catalog import catalog_from_definitions
from featurestore.online.catalog import catalog_from_feast
from featurestore.online.layout import redis_key
from featurestore.online.redis import table_write_args
from tests.unit.tick_views import tick_count_definitions


def _feast_key(value: Any, feast_type: str) -> bytes:
    """Feast's Redis key of ``value`` for a join key of ``feast_type`` (version 3, as set)."""
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
    from feast.type_map import python_values_to_proto_values
    from feast.value_type import ValueType as FeastValueType

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (proto,) = python_values_to_proto_values([value], FeastValueType[feast_type])
    key = EntityKeyProto(join_keys=["key"], entity_values=[proto])
    return serialize_entity_key(key, entity_key_serialization_version=3) + b"p"


def test_the_processors_rows_are_keyed_as_feast_keys_a_string_join_key() -> None:
    """End to end short of Redis: the processors' rows, their write arguments, Feast's key."""
    import pandas as pd

    from processors.features.frame import compute_frame

    definitions = tick_count_definitions(key_type=ValueType.STRING)
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    events = pd.DataFrame({"key": ["AAPL", "7"], "ts": [t0, t0], "x": [1.0, 2.0]})
    frame = compute_frame(definitions, events)["w"]
    table = pa.Table.from_pandas(frame[["key", "event_timestamp", "n"]], preserve_index=False)
    stamps = table.column("event_timestamp").cast(pa.timestamp("us", tz="UTC"))
    table = table.set_column(1, "event_timestamp", stamps)
    written = table_write_args(table, "w", ["n"], "key", catalog_from_definitions(definitions))
    assert {key for key, _ in written} == {_feast_key("AAPL", "STRING"), _feast_key("7", "STRING")}


@pytest.mark.parametrize(
    ("value", "feast_type"),
    [("AAPL", "STRING"), ("", "STRING"), (7, "INT64"), (-(2**63), "INT64"), (2**63 - 1, "INT64")],
)
def test_a_value_of_its_join_key_s_type_is_keyed_as_feast_keys_it(
    value: str | int, feast_type: str
) -> None:
    assert redis_key(EntityKey.of(key=value), "p") == _feast_key(value, feast_type)


@pytest.mark.parametrize("key_type", [ValueType.INT32, ValueType.UNIX_TIMESTAMP, ValueType.BYTES])
def test_an_int32_key_would_be_keyed_otherwise_than_feast(key_type: ValueType) -> None:
    """Why the catalogs refuse these types: the same whole number, another key."""
    value = b"7" if key_type is ValueType.BYTES else 7
    assert redis_key(EntityKey.of(key=7), "p") != _feast_key(value, key_type.name)


@pytest.mark.parametrize(
    "key_type", [t for t in ValueType if t not in (ValueType.STRING, ValueType.INT64)]
)
def test_a_catalog_refuses_a_join_key_it_cannot_key_as_feast_does(key_type: ValueType) -> None:
    with pytest.raises(
        ConfigurationError,
        match=rf"feature view 'w': join key 'key' has type {key_type.value}, which the online"
        r" store cannot key as Feast does \(Int64 or String\)",
    ):
        catalog_from_definitions(tick_count_definitions(key_type=key_type))


@pytest.mark.parametrize("key_type", [ValueType.STRING, ValueType.INT64])
def test_a_catalog_keeps_a_string_or_int64_join_key(key_type: ValueType) -> None:
    catalog = catalog_from_definitions(tick_count_definitions(key_type=key_type))
    assert catalog.view("w").join_keys == ("key",)


class _FeastRegistry:
    """What :func:`catalog_from_feast` reads of a ``feast.FeatureStore``."""

    project = "p"

    def __init__(self, views: list[Any]) -> None:
        self._views = views

    def list_feature_views(self) -> list[Any]:
        return self._views

    def list_stream_feature_views(self) -> list[Any]:
        return []

    def list_feature_services(self) -> list[Any]:
        return []


def _feast_view(key_type: str) -> Any:
    from feast import Entity as FeastEntity
    from feast import FeatureView as FeastView
    from feast import Field
    from feast import types
    from feast.infra.offline_stores.contrib.postgres_offline_store.postgres_source import (
        PostgreSQLSource,
    )

    dtype = getattr(types, key_type)
    entity = FeastEntity(name="e", join_keys=["key"], value_type=dtype.to_value_type())
    return FeastView(
        name="w",
        entities=[entity],
        ttl=timedelta(0),
        schema=[Field(name="key", dtype=dtype), Field(name="x", dtype=types.Float64)],
        source=PostgreSQLSource(name="src", table="w", timestamp_field="ts"),
    )


def test_a_catalog_read_from_feast_refuses_an_int32_join_key() -> None:
    """`serve --registry-path` of another Feast repo: Feast wrote its rows under Int32 keys."""
    with pytest.raises(ConfigurationError, match="feature view 'w': join key 'key' has type Int32"):
        catalog_from_feast(_FeastRegistry([_feast_view("Int32")]))
    assert catalog_from_feast(_FeastRegistry([_feast_view("Int64")])).view("w").join_keys == (
        "key",
    )

"""The catalogs carry each join key's declared type, which requests are checked against."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from featurestore.definitions import ValueType
from featurestore.errors import ConfigurationError
from featurestore.online import FeatureSpec
from featurestore.online import FeatureViewSpec
from featurestore.online.catalog import catalog_from_definitions
from featurestore.online.catalog import catalog_from_feast
from featurestore.service.convert import join_key_types
from tests.unit.tick_views import tick_count_definitions

CLOSE = (FeatureSpec("close", ValueType.FLOAT64),)


@pytest.mark.parametrize("key_type", [ValueType.STRING, ValueType.INT64])
def test_a_catalog_from_definitions_declares_its_join_key_types(key_type: ValueType) -> None:
    view = catalog_from_definitions(tick_count_definitions(key_type=key_type)).view("w")
    assert (view.join_keys, view.join_key_types) == (("key",), (key_type,))


class _FeastRegistry:
    """What :func:`catalog_from_feast` reads of a ``feast.FeatureStore``: one view ``w``."""

    project = "p"

    def __init__(self, view: Any) -> None:
        self._view = view

    def list_feature_views(self) -> list[Any]:
        return [self._view]

    def list_stream_feature_views(self) -> list[Any]:
        return []

    def list_feature_services(self) -> list[Any]:
        return []


@pytest.mark.parametrize(
    ("feast_type", "key_type"), [("String", ValueType.STRING), ("Int64", ValueType.INT64)]
)
def test_a_catalog_from_feast_declares_its_join_key_types(
    feast_type: str, key_type: ValueType
) -> None:
    """Two join keys, the Feast schema listing them in another order than the entities."""
    from feast import Entity
    from feast import FeatureView
    from feast import Field
    from feast import types
    from feast.infra.offline_stores.contrib.postgres_offline_store.postgres_source import (
        PostgreSQLSource,
    )

    dtype = getattr(types, feast_type)
    view = FeatureView(
        name="w",
        entities=[
            Entity(name="e", join_keys=["key"], value_type=dtype.to_value_type()),
            Entity(name="v", join_keys=["venue"], value_type=types.String.to_value_type()),
        ],
        ttl=timedelta(0),
        schema=[
            Field(name="venue", dtype=types.String),
            Field(name="key", dtype=dtype),
            Field(name="x", dtype=types.Float64),
        ],
        source=PostgreSQLSource(name="src", table="w", timestamp_field="ts"),
    )
    spec = catalog_from_feast(_FeastRegistry(view)).view("w")
    assert dict(zip(spec.join_keys, spec.join_key_types, strict=True)) == {
        "key": key_type,
        "venue": ValueType.STRING,
    }
    assert [f.name for f in spec.features] == ["x"]


def test_a_view_needs_one_declared_type_per_join_key_or_none() -> None:
    with pytest.raises(ConfigurationError, match="feature view w: 1 join key types for 2 join"):
        FeatureViewSpec("w", ("a", "b"), CLOSE, None, (ValueType.STRING,))
    assert FeatureViewSpec("w", ("a", "b"), CLOSE, None).join_key_types == ()


def test_join_key_types_of_views_leave_out_undeclared_keys_and_take_the_first_type() -> None:
    views = [
        FeatureViewSpec("a", ("symbol",), CLOSE, None),  # undeclared
        FeatureViewSpec("b", ("symbol", "venue"), CLOSE, None, (ValueType.INT64, ValueType.STRING)),
        FeatureViewSpec("c", ("symbol",), CLOSE, None, (ValueType.STRING,)),
    ]
    assert join_key_types(views) == {"symbol": ValueType.INT64, "venue": ValueType.STRING}
    assert join_key_types(views[:1]) == {}

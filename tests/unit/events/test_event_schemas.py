from __future__ import annotations

from dataclasses import fields

import pytest

import featurestore.events as events
from featurestore.errors import SchemaError
from featurestore.events import Anomaly
from featurestore.events import Event
from featurestore.events import Metric
from featurestore.events import PredictionLog
from featurestore.events import Quote
from featurestore.events import Trade
from featurestore.events import bundled_schema
from featurestore.events import parse_schema_text
from featurestore.events.codec import codec_for_type


@pytest.mark.parametrize(
    ("name", "full_name"),
    [
        ("trade", "featurestore.v1.Trade"),
        ("anomaly", "featurestore.v1.Anomaly"),
        ("prediction_log", "featurestore.v1.PredictionLog"),
        ("quote", "featurestore.v1.Quote"),
        ("metric", "featurestore.v1.Metric"),
    ],
)
def test_bundled_schemas_parse(name: str, full_name: str) -> None:
    schema = bundled_schema(name)
    assert schema.full_name == full_name
    assert parse_schema_text(schema.text).full_name == full_name


def test_trade_schema_fields_and_logical_types() -> None:
    fields = {f["name"]: f for f in bundled_schema("trade").parsed["fields"]}
    assert set(fields) == {
        "symbol",
        "price",
        "size",
        "event_time",
        "exchange",
        "conditions",
        "trade_id",
        "currency",
        "source",
    }
    assert fields["price"]["type"] == "double"
    assert fields["event_time"]["type"]["logicalType"] == "timestamp-micros"
    # Fields beyond the first release carry defaults, so that old records still decode.
    assert fields["source"]["default"] == ""
    assert fields["currency"]["default"] == "USD"


def test_anomaly_features_are_a_map_of_doubles() -> None:
    fields = {f["name"]: f for f in bundled_schema("anomaly").parsed["fields"]}
    assert fields["features"]["type"] == {"type": "map", "values": "double"}


def test_invalid_schema_text_is_a_schema_error() -> None:
    with pytest.raises(SchemaError):
        parse_schema_text("{not json")
    with pytest.raises(SchemaError):
        parse_schema_text(
            '{"type": "record", "name": "X", "fields": [{"name": "a", "type": "nope"}]}'
        )
    with pytest.raises(SchemaError):
        parse_schema_text('"string"')
    with pytest.raises(SchemaError):
        bundled_schema("no_such_schema")


def test_public_surface() -> None:
    for name in events.__all__:
        assert hasattr(events, name), name


@pytest.mark.parametrize("event_type", [Trade, Quote, Metric, Anomaly, PredictionLog])
def test_each_event_field_is_the_schema_field_of_its_name(event_type: type[Event]) -> None:
    """The codec maps fields by name: the event and its bundled record have the same ones."""
    codec = codec_for_type(event_type)
    schema = bundled_schema(codec.schema_name)
    assert schema.full_name == codec.full_name
    assert {f["name"] for f in schema.parsed["fields"]} == {f.name for f in fields(event_type)}


def test_a_record_without_a_required_field_is_named() -> None:
    with pytest.raises(SchemaError, match="Metric record has no field 'metric_id'"):
        codec_for_type(Metric).from_wire({"entity": "h1", "event_time": 0, "value": 1.0})

from __future__ import annotations

from datetime import UTC
from datetime import datetime

import pytest

from featurestore.events import AvroDeserializer
from featurestore.events import AvroSerializer
from featurestore.events import InMemorySchemaStore
from featurestore.events import Metric
from featurestore.events import Quote
from featurestore.events import bundled_schema
from featurestore.events.registry import value_subject

T0 = datetime(2013, 10, 7, 13, 30, 0, 123456, tzinfo=UTC)


def test_quote_schema_fields() -> None:
    schema = bundled_schema("quote")
    assert schema.full_name == "featurestore.v1.Quote"
    fields = {f["name"]: f for f in schema.parsed["fields"]}
    assert list(fields)[:8] == [
        "symbol",
        "event_time",
        "bid_price",
        "bid_size",
        "ask_price",
        "ask_size",
        "exchange",
        "quote_id",
    ]
    assert fields["event_time"]["type"]["logicalType"] == "timestamp-micros"
    assert (fields["bid_price"]["type"], fields["ask_size"]["type"]) == ("double", "long")
    assert fields["exchange"]["type"] == ["null", "string"]
    assert fields["exchange"]["default"] is None
    assert (fields["currency"]["default"], fields["source"]["default"]) == ("USD", "")


def test_metric_schema_fields() -> None:
    schema = bundled_schema("metric")
    assert schema.full_name == "featurestore.v1.Metric"
    fields = {f["name"]: f for f in schema.parsed["fields"]}
    assert set(fields) == {"entity", "event_time", "value", "name", "tags", "metric_id", "source"}
    assert fields["event_time"]["type"]["logicalType"] == "timestamp-micros"
    assert fields["value"]["type"] == "double"
    assert fields["name"]["default"] == "value"
    assert fields["tags"]["type"] == {"type": "map", "values": "string"}
    assert fields["tags"]["default"] == {}


@pytest.mark.parametrize(
    "event",
    [
        Quote("IBM", T0, 180.0, 100, 180.05, 300, "q:1", "N", ("R",), "USD", "q.csv"),
        Quote("IBM", T0, 180.0, 0, 180.0, 0, "q:2"),
        Metric("host-1", T0, -0.25, "m:1", "cpu", {"region": "eu"}, "m.csv"),
        Metric("host-1", T0, 1e300, "m:2"),
    ],
)
def test_round_trip_under_the_topic_subject(event: Quote | Metric) -> None:
    store = InMemorySchemaStore()
    if isinstance(event, Quote):
        serializer = AvroSerializer.for_topic(store, "t", Quote)
        data = serializer.encode(event)
    else:
        metrics = AvroSerializer.for_topic(store, "t", Metric)
        data = metrics.encode(event)
    schema_id = store.register(
        value_subject("t"), bundled_schema(type(event).__name__.lower()).text
    )
    assert data[1:5] == schema_id.to_bytes(4, "big")
    assert AvroDeserializer(store).decode(data) == event

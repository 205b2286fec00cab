from __future__ import annotations

import copy
import json
import struct
from datetime import UTC
from datetime import datetime

import pytest

from featurestore.errors import NotFoundError
from featurestore.errors import SchemaError
from featurestore.events import Anomaly
from featurestore.events import AvroDeserializer
from featurestore.events import AvroSerializer
from featurestore.events import InMemorySchemaStore
from featurestore.events import PredictionLog
from featurestore.events import SerializationError
from featurestore.events import Trade
from featurestore.events import bundled_schema
from featurestore.events import parse_header
from featurestore.events import parse_schema_text
from featurestore.events.registry import value_subject

T0 = datetime(2013, 10, 7, 13, 30, 0, 123456, tzinfo=UTC)


def a_trade(**changes: object) -> Trade:
    base = {
        "symbol": "AIG",
        "price": 48.87,
        "size": 300,
        "event_time": T0,
        "exchange": "P",
        "trade_id": "f.csv:1",
        "conditions": ("20000020",),
        "source": "f.csv",
    }
    base.update(changes)
    return Trade(**base)  # type: ignore[arg-type]


def trade_v2_schema() -> str:
    """Trade v2: adds a field with a default (a backward-compatible change)."""
    raw = json.loads(bundled_schema("trade").text)
    raw = copy.deepcopy(raw)
    raw["fields"].append({"name": "venue_sequence", "type": ["null", "long"], "default": None})
    raw["fields"].append({"name": "tape", "type": "string", "default": "UNKNOWN"})
    return json.dumps(raw)


def test_trade_round_trip_in_confluent_framing() -> None:
    store = InMemorySchemaStore()
    serializer = AvroSerializer.for_topic(store, "trades", Trade)
    data = serializer.encode(a_trade())
    assert data[0] == 0
    assert struct.unpack(">I", data[1:5])[0] == serializer.schema_id
    assert parse_header(data) == serializer.schema_id
    assert AvroDeserializer(store).decode(data) == a_trade()


def test_serializer_reuses_its_buffer_without_leaking_bytes() -> None:
    store = InMemorySchemaStore()
    serializer = AvroSerializer.for_topic(store, "trades", Trade)
    long_one = serializer.encode(a_trade(symbol="BRK.B", exchange="N" * 50))
    short_one = serializer.encode(a_trade())
    decoder = AvroDeserializer(store)
    assert decoder.decode(short_one) == a_trade()
    assert decoder.decode(long_one) == a_trade(symbol="BRK.B", exchange="N" * 50)


def test_anomaly_and_prediction_round_trip() -> None:
    store = InMemorySchemaStore()
    anomaly = Anomaly(
        anomaly_id="iforest:3:AIG:1",
        symbol="AIG",
        event_time=T0,
        score=0.91,
        model_name="iforest",
        model_version="3",
        detected_at=T0,
        features={"vwap_1m": 48.9, "volume_1m": 12000.0},
        threshold=0.8,
    )
    prediction = PredictionLog(
        request_id="r-1",
        model_name="xgb",
        model_version="7",
        entity={"symbol": "IBM"},
        prediction=0.42,
        request_time=T0,
        response_time=T0,
        features={"vwap_1m": 184.2, "missing": None},
        feature_time=T0,
    )
    decoder = AvroDeserializer(store)
    anomaly_data = AvroSerializer.for_topic(store, "t", Anomaly).encode(anomaly)
    prediction_data = AvroSerializer.for_topic(store, "t", PredictionLog).encode(prediction)
    assert decoder.decode(anomaly_data) == anomaly
    assert decoder.decode(prediction_data) == prediction


def test_same_schema_same_id_and_subject_naming() -> None:
    store = InMemorySchemaStore()
    first = AvroSerializer.for_topic(store, "trades", Trade)
    second = AvroSerializer.for_topic(store, "trades", Trade)
    assert first.schema_id == second.schema_id
    assert value_subject("trades") == "trades-value"


def test_schema_must_describe_the_event_type() -> None:
    with pytest.raises(SchemaError):
        AvroSerializer.for_topic(InMemorySchemaStore(), "t", Trade, bundled_schema("anomaly"))


def test_v1_writer_decodes_into_v2_reader_with_defaults() -> None:
    store = InMemorySchemaStore()
    v1 = AvroSerializer.for_topic(store, "trades", Trade)
    data = v1.encode(a_trade())
    reader = parse_schema_text(trade_v2_schema())
    schema_id, record = AvroDeserializer(store, reader).decode_wire(data)
    assert schema_id == v1.schema_id
    assert record["venue_sequence"] is None
    assert record["tape"] == "UNKNOWN"
    assert record["symbol"] == "AIG"


def test_mixed_writer_versions_in_one_topic_decode() -> None:
    store = InMemorySchemaStore()
    v1 = AvroSerializer.for_topic(store, "trades", Trade)
    v2 = AvroSerializer.for_topic(store, "trades", Trade, parse_schema_text(trade_v2_schema()))
    assert v1.schema_id != v2.schema_id
    wire = v1.codec.to_wire(a_trade(trade_id="b"))
    old = v1.encode(a_trade(trade_id="a"))
    new = v2.encode_wire({**wire, "venue_sequence": 7, "tape": "A"})
    decoder = AvroDeserializer(store)  # reader: today's bundled Trade (v1)
    assert [decoder.decode(d).trade_id for d in (old, new)] == ["a", "b"]  # type: ignore[union-attr]
    v2_reader = AvroDeserializer(store, parse_schema_text(trade_v2_schema()))
    assert v2_reader.decode_wire(new)[1]["venue_sequence"] == 7
    assert v2_reader.decode_wire(old)[1]["tape"] == "UNKNOWN"


def test_bad_framing_and_unknown_ids() -> None:
    store = InMemorySchemaStore()
    decoder = AvroDeserializer(store)
    with pytest.raises(SerializationError, match="shorter"):
        decoder.decode(b"\x00\x00")
    with pytest.raises(SerializationError, match="magic"):
        decoder.decode(b"\x01\x00\x00\x00\x01abc")
    with pytest.raises(NotFoundError):
        decoder.decode(b"\x00\x00\x00\x00\x63abc")
    data = AvroSerializer.for_topic(store, "trades", Trade).encode(a_trade())
    with pytest.raises(SerializationError):
        decoder.decode(data[:-3])


def test_event_that_does_not_fit_the_schema() -> None:
    serializer = AvroSerializer.for_topic(InMemorySchemaStore(), "trades", Trade)
    with pytest.raises(SerializationError):
        serializer.encode(a_trade(size="many"))

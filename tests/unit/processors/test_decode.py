"""Decoding Kafka records: writer schemas by id, mixed versions, keys, dead letters."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from featurestore.events import AvroDeserializer, AvroSerializer, InMemorySchemaStore, Trade
from featurestore.events.codec import TRADE_CODEC
from featurestore.events.schemas import bundled_schema, parse_schema_text
from processors.decode import READER_SCHEMA, KafkaRecords, TradeDecoder, decode_records

T = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)


def _serializers() -> tuple[InMemorySchemaStore, AvroSerializer[Trade], AvroSerializer[Trade]]:
    store = InMemorySchemaStore()
    v1 = AvroSerializer.for_topic(store, "t", Trade)
    raw = json.loads(bundled_schema("trade").text)
    raw["fields"].append({"name": "venue_seq", "type": "long", "default": 0})
    schema = parse_schema_text(json.dumps(raw))
    v2 = AvroSerializer(TRADE_CODEC, schema, store.register("t-value", schema.text))
    return store, v1, v2


def _frame(
    values: Sequence[bytes | None],
    key: bytes | None = b"IBM",
    offsets: list[int] | None = None,
    keys: Sequence[bytes | None] | None = None,
) -> KafkaRecords:
    n = len(values)
    return KafkaRecords.of(
        list(keys) if keys is not None else [key] * n,
        values,
        [2] * n,
        offsets or list(range(10, 10 + n)),
        [1000 + i for i in range(n)],
    )


def _trade(i: int, symbol: str = "IBM", price: float = 10.0) -> Trade:
    return Trade(symbol, price, 100 + i, T.replace(second=i), "Q", f"id-{i}")


def test_mixed_schema_versions_decode_in_log_order() -> None:
    store, v1, v2 = _serializers()
    wire = TRADE_CODEC.to_wire(_trade(1))
    values = [v1.encode(_trade(0)), v2.encode_wire({**wire, "venue_seq": 7}), v1.encode(_trade(2))]
    records = _frame(values, offsets=[12, 10, 11])  # arrives shuffled; log order is by offset
    decoded = decode_records(records, TradeDecoder(store))
    assert decoded.dead == []
    assert list(decoded.trades.offset) == [10, 11, 12]
    assert decoded.trades.trade_id == ["id-1", "id-2", "id-0"]
    assert list(decoded.trades.size) == [101.0, 102.0, 100.0]
    assert decoded.trades.event_us[0] == int(T.replace(second=1).timestamp() * 1_000_000)
    assert list(decoded.trades.kafka_ms) == [1001, 1002, 1000]


def test_unusable_records_are_dead_lettered_with_a_reason() -> None:
    store, v1, _ = _serializers()
    values = [
        b"",
        b"garbage",
        b"\x00\x00\x00\x03\xe7abc",  # schema id 999, unknown
        v1.encode(_trade(1, symbol="AAPL")),  # keyed IBM
        v1.encode(_trade(2, price=-1.0)),
        v1.encode(_trade(3)),
    ]
    decoded = decode_records(_frame(values), TradeDecoder(store))
    reasons = [d.reason for d in decoded.dead]
    assert len(decoded.trades) == 1 and decoded.trades.trade_id == ["id-3"]
    assert reasons[0].startswith("undecodable: empty")
    assert reasons[1].startswith("undecodable") and "magic" in reasons[1]
    assert reasons[2].startswith("undecodable") and "999" in reasons[2]
    assert reasons[3].startswith("key-mismatch")
    assert reasons[4].startswith("invalid")
    assert [d.offset for d in decoded.dead] == [10, 11, 12, 13, 14]
    late = decoded.dead_letter(0, "late")
    assert (late.offset, late.partition, late.key, late.reason) == (15, 2, b"IBM", "late")


def test_the_fast_path_equals_fastavro_resolution_and_unusual_writers_fall_back() -> None:
    store, v1, v2 = _serializers()
    raw = json.loads(bundled_schema("trade").text)
    for f in raw["fields"]:
        if f["name"] == "size":
            f["type"] = ["null", "long"]  # a union: resolved by fastavro, not the fast path
    union = parse_schema_text(json.dumps(raw))
    v3 = AvroSerializer(TRADE_CODEC, union, store.register("t-value", union.text))
    wire = TRADE_CODEC.to_wire(_trade(4))
    values = [v1.encode(_trade(1)), v2.encode_wire({**wire, "venue_seq": 3}), v3.encode_wire(wire)]
    fast = decode_records(_frame(values), TradeDecoder(store))
    generic = decode_records(_frame(values), AvroDeserializer(store, READER_SCHEMA))
    assert fast.dead == generic.dead == []
    for name in ("event_us", "price", "size", "kafka_ms", "offset"):
        assert list(getattr(fast.trades, name)) == list(getattr(generic.trades, name))
    assert fast.trades.trade_id == generic.trades.trade_id == ["id-1", "id-4", "id-4"]


def test_records_of_several_symbols_keep_their_keys_and_log_order() -> None:
    store, v1, _ = _serializers()
    values = [
        v1.encode(_trade(0, symbol="AIG")),
        v1.encode(_trade(1)),
        v1.encode(_trade(2, symbol="AIG")),
        v1.encode(_trade(3)),
        v1.encode(_trade(4)),
    ]
    keys = [b"AIG", b"IBM", b"AIG", None, b"IBM"]
    decoded = decode_records(_frame(values, keys=keys), TradeDecoder(store))
    assert decoded.symbols == ["AIG", "IBM", "AIG", "IBM"]
    assert [d.reason.split(":")[0] for d in decoded.dead] == ["key-mismatch"]
    assert decoded.dead[0].offset == 13
    groups = decoded.by_symbol()
    assert {s: i.tolist() for s, i in groups.items()} == {"AIG": [0, 2], "IBM": [1, 3]}
    ibm = decoded.trades.take(groups["IBM"])
    assert ibm.trade_id == ["id-1", "id-4"] and list(ibm.offset) == [11, 14]

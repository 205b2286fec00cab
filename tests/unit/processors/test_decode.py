"""Decoding Kafka records: writer schemas by id, mixed versions, keys, dead letters."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC
from datetime import datetime

from featurestore.events import AvroSerializer
from featurestore.events import InMemorySchemaStore
from featurestore.events import Trade
from featurestore.events.codec import TRADE_CODEC
from featurestore.events.schemas import bundled_schema
from featurestore.events.schemas import parse_schema_text
from processors.decode import DEAD_LETTER_CODES
from processors.decode import DecodedRecords
from processors.decode import EventDecoder
from processors.decode import KafkaRecords
from processors.decode import decode_records
from processors.features.plan import SourcePlan

T = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)


def _serializers() -> tuple[InMemorySchemaStore, AvroSerializer[Trade], AvroSerializer[Trade]]:
    store = InMemorySchemaStore()
    v1 = AvroSerializer.for_topic(store, "t", Trade)
    raw = json.loads(bundled_schema("trade").text)
    raw["fields"].append({"name": "venue_seq", "type": "long", "default": 0})
    schema = parse_schema_text(json.dumps(raw))
    v2 = AvroSerializer(TRADE_CODEC, schema, store.register("t-value", schema.text))
    return store, v1, v2


def _nullable_writer(store: InMemorySchemaStore, field: str) -> AvroSerializer[Trade]:
    """A writer of the trade schema with ``field`` made nullable, registered in ``store``."""
    raw = json.loads(bundled_schema("trade").text)
    for f in raw["fields"]:
        if f["name"] == field:
            f["type"] = ["null", f["type"]]
    union = parse_schema_text(json.dumps(raw))
    return AvroSerializer(TRADE_CODEC, union, store.register("t-value", union.text))


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


SOURCE = SourcePlan(
    topic="t", entity_field="symbol", timestamp_field="event_time", id_field="trade_id",
    lateness_us=0, fields=("price", "size"), columns=(), prevs=(),
)  # fmt: skip


def _decode(store: InMemorySchemaStore, records: KafkaRecords) -> DecodedRecords:
    return decode_records(records, EventDecoder(store, SOURCE), SOURCE)


def test_mixed_schema_versions_decode_in_log_order() -> None:
    store, v1, v2 = _serializers()
    wire = TRADE_CODEC.to_wire(_trade(1))
    values = [v1.encode(_trade(0)), v2.encode_wire({**wire, "venue_seq": 7}), v1.encode(_trade(2))]
    decoded = _decode(store, _frame(values))
    assert decoded.dead == []
    assert decoded.events.event_id == ["id-0", "id-1", "id-2"]
    assert list(decoded.events.fields["size"]) == [100.0, 101.0, 102.0]
    assert list(decoded.events.offset) == [10, 11, 12]
    assert decoded.events.event_us[0] == int(T.timestamp() * 1_000_000)


def test_unusable_records_are_dead_lettered_with_a_reason() -> None:
    store, v1, _ = _serializers()
    values = [
        b"",
        b"garbage",
        b"\x00\x00\x00\x03\xe7abc",  # schema id 999, unknown
        v1.encode(_trade(1, symbol="AAPL")),  # keyed IBM
        v1.encode(_trade(2, price=float("inf"))),
        v1.encode(_trade(3)),
    ]
    decoded = _decode(store, _frame(values))
    reasons = [d.reason for d in decoded.dead]
    assert len(decoded.events) == 1 and decoded.events.event_id == ["id-3"]
    assert reasons[0].startswith("undecodable: empty")
    assert reasons[1].startswith("undecodable") and "magic" in reasons[1]
    assert reasons[2].startswith("undecodable") and "999" in reasons[2]
    assert reasons[3].startswith("key-mismatch")
    assert reasons[4] == "invalid: price is inf"
    assert [d.offset for d in decoded.dead] == [10, 11, 12, 13, 14]
    late = decoded.dead_letter(0, "late")
    assert (late.offset, late.partition, late.key, late.reason) == (15, 2, b"IBM", "late")
    # The metrics count by code: a reason's detail would make a series of each dead letter.
    codes = [d.code for d in [*decoded.dead, late]]
    assert codes == ["undecodable"] * 3 + ["key-mismatch", "invalid", "late"]
    assert set(codes) == set(DEAD_LETTER_CODES)


def test_a_writer_without_a_field_the_definitions_read_is_dead_lettered() -> None:
    store = InMemorySchemaStore()
    raw = json.loads(bundled_schema("trade").text)
    raw["fields"] = [f for f in raw["fields"] if f["name"] != "size"]
    schema = parse_schema_text(json.dumps(raw))
    schema_id = store.register("t-value", schema.text)
    wire = {k: v for k, v in TRADE_CODEC.to_wire(_trade(1)).items() if k != "size"}
    value = AvroSerializer(TRADE_CODEC, schema, schema_id).encode_wire(wire)
    decoded = _decode(store, _frame([value]))
    assert len(decoded.events) == 0
    assert decoded.dead[0].reason == f"undecodable: schema id {schema_id} has no field 'size'"


def test_nullable_fields_decode_and_a_null_stays_null() -> None:
    store = InMemorySchemaStore()
    v3 = _nullable_writer(store, "size")
    wire = TRADE_CODEC.to_wire(_trade(4))
    decoded = _decode(store, _frame([v3.encode_wire(wire), v3.encode_wire({**wire, "size": None})]))
    assert decoded.dead == []
    size = decoded.events.fields["size"]
    assert size[0] == 104.0 and size[1] != size[1]  # NaN: null


def test_records_of_several_entities_keep_their_keys_and_log_order() -> None:
    store, v1, _ = _serializers()
    values = [
        v1.encode(_trade(0, symbol="AIG")),
        v1.encode(_trade(1)),
        v1.encode(_trade(2, symbol="AIG")),
        v1.encode(_trade(3)),
        v1.encode(_trade(4)),
    ]
    keys = [b"AIG", b"IBM", b"AIG", None, b"IBM"]
    decoded = _decode(store, _frame(values, keys=keys))
    assert list(decoded.events.entity) == ["AIG", "IBM", "AIG", "IBM"]
    assert [d.reason.split(":")[0] for d in decoded.dead] == ["key-mismatch"]
    assert decoded.dead[0].offset == 13
    assert list(decoded.events.offset) == [10, 11, 12, 14]


def test_both_ways_of_reading_give_the_same_events_and_dead_letters() -> None:
    """Records read many at a time and those read one by one (text outside ASCII, a body cut
    short, a writer with a union the columnar reader leaves to fastavro) decode alike."""
    store, v1, v2 = _serializers()
    wire = TRADE_CODEC.to_wire(_trade(1))
    cut = v1.encode(_trade(5))
    values = [
        v1.encode(_trade(0)),
        v2.encode_wire({**wire, "venue_seq": 3}),
        v1.encode(Trade("IBM", 11.0, 7, T, "Q", "id-é")),  # non-ASCII id: one by one
        v1.encode(_trade(3, symbol="IB")),  # keyed IBM: a prefix is not the entity
        v1.encode(_trade(4, symbol="IBMX")),  # nor is a longer one
        cut[: len(cut) - 3],  # cut short
        v1.encode(Trade("ÉTÉ", 12.0, 8, T, "Q", "id-8")),  # keyed by its own non-ASCII text
        v1.encode(_trade(9)),
    ]
    keys = [b"IBM"] * 6 + ["ÉTÉ".encode(), b"IBM"]
    decoded = _decode(store, _frame(values, keys=keys))
    assert decoded.events.event_id == ["id-0", "id-1", "id-é", "id-8", "id-9"]
    assert decoded.events.entity == ["IBM", "IBM", "IBM", "ÉTÉ", "IBM"]
    assert list(decoded.events.fields["price"]) == [10.0, 10.0, 11.0, 12.0, 10.0]
    reasons = {d.offset: d.reason for d in decoded.dead}
    assert reasons[13] == "key-mismatch: record of 'IB' keyed 'IBM'"
    assert reasons[14] == "key-mismatch: record of 'IBMX' keyed 'IBM'"
    assert reasons[15].startswith("undecodable: cannot decode a record of schema id")
    assert sorted(reasons) == [13, 14, 15]


def test_a_null_entity_is_a_key_mismatch() -> None:
    store = InMemorySchemaStore()
    writer = _nullable_writer(store, "symbol")
    wire = TRADE_CODEC.to_wire(_trade(1))
    decoded = _decode(store, _frame([writer.encode_wire({**wire, "symbol": None})]))
    assert [d.reason for d in decoded.dead] == ["key-mismatch: record of None keyed 'IBM'"]

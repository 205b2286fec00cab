"""Dead letters read back: headers → :class:`DeadLetterRecord`, and each kind of value.

The headers come from the real producers: ingest's :class:`RecordRouter` (no broker needed) and
the processors' :meth:`PartitionJob.send_dead_letters` (into a producer that records what it is
given), so that a producer renaming a header fails here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from typing import Any
from typing import cast

from confluent_kafka import TIMESTAMP_CREATE_TIME
from confluent_kafka import TIMESTAMP_NOT_AVAILABLE
from confluent_kafka import Message

from featurestore import events
from featurestore.config import load_settings
from featurestore.definitions import market_definitions
from featurestore.events import AvroDeserializer
from featurestore.events import AvroSerializer
from featurestore.events import DeadLetterOrigin
from featurestore.events import InMemorySchemaStore
from featurestore.events import Trade
from featurestore.events import decode_value
from featurestore.events import frame_header
from featurestore.events import parse_dead_letter
from featurestore.events.dead_letters import HEX_PREVIEW_BYTES
from featurestore.events.dead_letters import dead_letter_json
from featurestore.events.dead_letters import dead_letter_text
from featurestore.ingest import RecordRouter
from featurestore.ingest.sources.base import SourceRecord
from processors.decode import DeadLetter
from processors.partition_job import PartitionJob
from processors.partition_job import PartitionResources
from processors.views import MaterializedViews

T0 = datetime(2024, 5, 1, 12, 0, 5, tzinfo=UTC)
T0_MS = int(T0.timestamp() * 1000)
TRADE = Trade("AAPL", 190.5, 100, T0, "X", "t-1", (), "USD", "f.csv")


def message(
    value: bytes | None,
    headers: list[tuple[str, str | bytes | None]] | None = None,
    *,
    key: bytes | None = None,
    offset: int = 7,
    timestamp: tuple[int, int] = (TIMESTAMP_CREATE_TIME, T0_MS),
) -> Message:
    return Message(
        topic="dead-letter",
        partition=0,
        offset=offset,
        key=key,
        value=value,
        headers=headers,
        timestamp=timestamp,
    )


@dataclass
class RecordingProducer:
    """The dead letters' producer interface (``produce``, ``flush``), keeping what it is given."""

    sent: list[dict[str, Any]] = field(default_factory=list)

    def produce(self, topic: str, value: bytes, **kwargs: Any) -> None:
        self.sent.append({"topic": topic, "value": value, **kwargs})

    def flush(self, timeout_s: float) -> int:
        return 0


@dataclass
class Resources:
    producer_: RecordingProducer = field(default_factory=RecordingProducer)

    def producer(self) -> RecordingProducer:
        return self.producer_


def processor_dead_letters(letters: list[DeadLetter]) -> list[Message]:
    """The messages the features processor sends for ``letters`` (read from trades)."""
    settings = load_settings({"FEATURESTORE_CONFIG": ""})
    job = PartitionJob(settings, MaterializedViews.resolve(market_definitions("p"), "trades"), "f")
    res = Resources()
    assert job.send_dead_letters(cast(PartitionResources, res), letters) == len(letters)
    return [
        message(sent["value"], sent["headers"], key=sent["key"], offset=i)
        for i, sent in enumerate(res.producer_.sent)
    ]


def test_an_ingest_dead_letter_has_its_reason_source_line_and_text() -> None:
    router = RecordRouter({"trade": "trades"}, "dead-letter", InMemorySchemaStore())
    line = b"AAPL,2024-05-01T12:00:01Z,NaN,100"
    fields = {"symbol": "AAPL", "event_time": "2024-05-01T12:00:01Z", "price": "NaN", "size": "1"}
    out = router.route(SourceRecord("trades.csv", 3, fields, raw=line))
    assert out.topic == "dead-letter"

    letter = parse_dead_letter(message(out.value, list(out.headers), key=out.key))

    assert letter.reason is not None and letter.reason.startswith(f"{out.reason_code}: ")
    assert letter.code == out.reason_code
    assert letter.origin == DeadLetterOrigin(topic="trades", source="trades.csv", line=3)
    assert letter.origin.describe() == "trades, ingest of trades.csv line 3"
    assert (letter.offset, letter.timestamp, letter.key) == (7, T0, b"AAPL")
    value = decode_value(letter.value, AvroDeserializer(InMemorySchemaStore()))
    assert (value.kind, value.text, value.length) == ("text", line.decode(), len(line))


def test_an_ingest_dead_letter_without_a_topic_of_its_kind_has_no_origin_topic() -> None:
    router = RecordRouter({"trade": "trades"}, "dead-letter", InMemorySchemaStore())
    out = router.route(SourceRecord("q.csv", 2, {}, raw=b"q", kind="quote"))

    letter = parse_dead_letter(message(out.value, list(out.headers)))

    assert letter.code == "no_topic"
    assert letter.origin == DeadLetterOrigin(topic=None, source="q.csv", line=2)


def test_a_processor_dead_letter_has_its_origin_and_its_avro_event() -> None:
    store = InMemorySchemaStore()
    avro = AvroSerializer.for_topic(store, "trades", Trade).encode(TRADE)
    letters = [DeadLetter(b"AAPL", avro, 2, 5512, T0_MS, "late")]

    [sent] = processor_dead_letters(letters)
    letter = parse_dead_letter(sent)

    assert (letter.reason, letter.code, letter.key) == ("late", "late", b"AAPL")
    assert letter.timestamp == T0  # the refused record's
    assert letter.origin == DeadLetterOrigin("trades", partition=2, offset=5512, processor="f")
    assert letter.origin.describe() == "trades partition 2 offset 5512, processor f"
    value = decode_value(letter.value, AvroDeserializer(store))
    assert (value.kind, value.schema_id, value.schema_name) == ("avro", 1, "featurestore.v1.Trade")
    assert value.record is not None
    assert (value.record["symbol"], value.record["price"], value.record["event_time"]) == (
        "AAPL",
        190.5,
        T0,
    )


def test_a_processor_dead_letter_of_an_empty_record_is_empty() -> None:
    letters = [DeadLetter(None, None, 1, 12, T0_MS, "undecodable: empty value")]

    [sent] = processor_dead_letters(letters)
    letter = parse_dead_letter(sent)

    assert letter.code == "undecodable"
    assert decode_value(letter.value, None).kind == "empty"
    assert "value: empty" in dead_letter_text(letter, decode_value(letter.value, None))


def test_a_value_that_is_not_utf8_is_a_hex_preview_with_its_length() -> None:
    raw = bytes(range(200, 256)) * 2

    value = decode_value(raw, AvroDeserializer(InMemorySchemaStore()))

    assert (value.kind, value.length) == ("binary", 112)
    assert value.hex_preview == raw[:HEX_PREVIEW_BYTES].hex()
    assert value.to_json() == {
        "kind": "binary",
        "length": 112,
        "hex": raw[:HEX_PREVIEW_BYTES].hex(),
        "truncated": True,
    }
    assert value.describe() == f"112 bytes, not text: {raw[:HEX_PREVIEW_BYTES].hex()}..."


def test_a_framed_value_of_an_unknown_schema_id_says_so_and_is_shown_raw() -> None:
    raw = frame_header(999) + b"garbage"

    value = decode_value(raw, AvroDeserializer(InMemorySchemaStore()))

    assert value.kind == "binary"
    assert value.not_avro == "schema id 999 is not in the registry"
    assert value.to_json()["not_avro"] == "schema id 999 is not in the registry"
    assert "framed like Avro, but schema id 999 is not in the registry" in value.describe()


def test_a_framed_value_whose_body_misfits_its_schema_is_not_avro() -> None:
    store = InMemorySchemaStore()
    avro = AvroSerializer.for_topic(store, "trades", Trade).encode(TRADE)

    short = decode_value(avro[:-3], AvroDeserializer(store))
    longer = decode_value(avro + b"xyz", AvroDeserializer(store))

    assert short.kind != "avro" and short.not_avro is not None
    assert "featurestore.v1.Trade (schema id 1)" in short.not_avro
    assert longer.kind != "avro"
    assert longer.not_avro == "3 bytes follow a featurestore.v1.Trade record (schema id 1)"


def test_without_a_registry_a_framed_value_is_not_decoded() -> None:
    store = InMemorySchemaStore()
    avro = AvroSerializer.for_topic(store, "trades", Trade).encode(TRADE)

    value = decode_value(avro, None)

    assert value.kind in {"text", "binary"} and value.not_avro is None


def test_text_with_line_breaks_is_one_line_on_a_terminal_and_whole_in_json() -> None:
    raw = "a,b\nc\td\x00é".encode()

    value = decode_value(raw, None)

    assert (value.kind, value.text) == ("text", "a,b\nc\td\x00é")
    assert value.describe() == "text a,b\\nc\\td\\x00é"
    assert value.to_json() == {"kind": "text", "length": len(raw), "text": "a,b\nc\td\x00é"}


def test_a_long_text_is_cut_on_a_terminal() -> None:
    value = decode_value(b"x" * 1000, None)

    assert value.describe(width=10) == "text xxxxxxxxxx... (1000 characters)"
    assert value.to_json()["text"] == "x" * 1000


def test_a_record_without_headers_is_still_a_dead_letter() -> None:
    letter = parse_dead_letter(message(b"hello", None, timestamp=(TIMESTAMP_NOT_AVAILABLE, -1)))

    assert (letter.reason, letter.code, letter.timestamp) == (None, None, None)
    assert letter.origin == DeadLetterOrigin()
    text = dead_letter_text(letter, decode_value(letter.value, None))
    assert text.splitlines() == [
        "partition 0 offset 7  no timestamp  (no x-dead-letter-reason header)",
        "  from unknown",
        "  value: text hello",
    ]


def test_unreadable_headers_leave_their_fields_empty_and_the_rest_readable() -> None:
    headers: list[tuple[str, str | bytes | None]] = [
        ("x-dead-letter-reason", b"invalid: price \xff"),
        ("x-dead-letter-reason", b"second"),
        ("x-original-topic", b"trades"),
        ("x-original-partition", b"two"),
        ("x-original-offset", b" 41 "),
        ("x-processor", b"features"),
    ]

    letter = parse_dead_letter(message(b"v", headers))

    assert letter.reason == "invalid: price \\xff"
    assert letter.code == "invalid"
    assert letter.origin == DeadLetterOrigin(
        topic="trades", partition=None, offset=41, processor="features"
    )


def test_the_json_line_has_place_time_reason_origin_and_value() -> None:
    store = InMemorySchemaStore()
    avro = AvroSerializer.for_topic(store, "trades", Trade).encode(TRADE)
    headers: list[tuple[str, str | bytes | None]] = [
        ("x-dead-letter-reason", b"invalid: price is nan"),
        ("x-original-topic", b"trades"),
        ("x-original-partition", b"1"),
        ("x-original-offset", b"9"),
        ("x-processor", b"features"),
    ]
    letter = parse_dead_letter(message(avro, headers, key=b"AAPL"))

    row = json.loads(dead_letter_json(letter, decode_value(letter.value, AvroDeserializer(store))))

    assert {k: v for k, v in row.items() if k != "value"} == {
        "topic": "dead-letter",
        "partition": 0,
        "offset": 7,
        "timestamp": "2024-05-01T12:00:05.000Z",
        "key": "AAPL",
        "reason": "invalid: price is nan",
        "code": "invalid",
        "origin": {
            "topic": "trades",
            "partition": 1,
            "offset": 9,
            "processor": "features",
            "source": None,
            "line": None,
        },
    }
    assert row["value"]["kind"] == "avro"
    assert row["value"]["schema"] == "featurestore.v1.Trade"
    assert row["value"]["record"]["event_time"] == "2024-05-01T12:00:05+00:00"


def test_the_events_package_exports_the_dead_letter_reader() -> None:
    for name in ("DeadLetterRecord", "DeadLetterValue", "parse_dead_letter", "decode_value"):
        assert name in events.__all__

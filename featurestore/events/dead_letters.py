"""What a dead letter is: a record of the dead-letter topic, read back with its reason and origin.

A dead letter is not an event. Its value is the original record's bytes, whatever failed: a
Confluent-framed Avro event that a processor refused (``late``, ``invalid: ...``), a CSV line or
a JSON object that ingest refused, bytes that are neither, or nothing. What it means travels in
its Kafka headers, written by two producers:

- both: ``x-dead-letter-reason`` (``<code>: <detail>``, or ``late`` alone) and
  ``x-original-topic`` (the topic a processor read; for ingest the event topic of the record's
  kind, empty when the run sends none);
- processors (``PartitionJob.send_dead_letters``): ``x-original-partition``,
  ``x-original-offset`` and ``x-processor`` (its name); the Kafka timestamp is the refused
  record's;
- ingest (``featurestore.ingest.routing``): ``x-source`` (the file or generator read) and
  ``x-source-line`` (the line or row in it); the Kafka timestamp is the time it was sent.

:func:`parse_dead_letter` turns a Kafka message into a :class:`DeadLetterRecord` (no I/O);
:func:`decode_value` says what its value is, looking an Avro value's writer schema up in the
registry. A header that is missing or unreadable leaves its field ``None``: a dead letter is
always shown, never reported as an error.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from typing import Any
from typing import Literal

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE
from confluent_kafka import Message
from fastavro import schemaless_reader
from fastavro.read import SchemaResolutionError

from featurestore.errors import NotFoundError
from featurestore.errors import SchemaError
from featurestore.events.serde import AvroDeserializer
from featurestore.events.wire import HEADER_SIZE
from featurestore.events.wire import MAGIC_BYTE
from featurestore.events.wire import parse_header

__all__ = [
    "HEX_PREVIEW_BYTES",
    "ORIGINAL_OFFSET_HEADER",
    "ORIGINAL_PARTITION_HEADER",
    "ORIGINAL_TOPIC_HEADER",
    "PROCESSOR_HEADER",
    "REASON_HEADER",
    "SOURCE_HEADER",
    "SOURCE_LINE_HEADER",
    "DeadLetterOrigin",
    "DeadLetterRecord",
    "DeadLetterValue",
    "dead_letter_json",
    "dead_letter_text",
    "decode_value",
    "parse_dead_letter",
]

REASON_HEADER = "x-dead-letter-reason"
ORIGINAL_TOPIC_HEADER = "x-original-topic"
ORIGINAL_PARTITION_HEADER = "x-original-partition"
ORIGINAL_OFFSET_HEADER = "x-original-offset"
PROCESSOR_HEADER = "x-processor"
SOURCE_HEADER = "x-source"
SOURCE_LINE_HEADER = "x-source-line"

HEX_PREVIEW_BYTES = 32
"""How many leading bytes of a value that is neither Avro nor text are shown (as hex)."""

# What fastavro raises on a body that does not fit its schema.
_DECODE_ERRORS = (SchemaResolutionError, EOFError, ValueError, TypeError, IndexError, KeyError)
_LINE_BREAKS = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


@dataclass(frozen=True, slots=True)
class DeadLetterOrigin:
    """Where the refused record came from (``None``: its producer does not say)."""

    topic: str | None = None
    """The event topic it was read from (processors) or meant for (ingest)."""
    partition: int | None = None
    offset: int | None = None
    processor: str | None = None
    """The processor that refused it; ``None`` for ingest."""
    source: str | None = None
    """The file or generator ingest read it from; ``None`` for a processor."""
    line: int | None = None
    """The line (or row) of :attr:`source`."""

    def describe(self) -> str:
        """One phrase: ``trades partition 2 offset 5512, processor features``, or ``unknown``."""
        place = self.topic or ""
        if self.partition is not None:
            place += f" partition {self.partition}"
        if self.offset is not None:
            place += f" offset {self.offset}"
        parts = [place.strip()] if place.strip() else []
        if self.processor is not None:
            parts.append(f"processor {self.processor}")
        if self.source is not None:
            at = f" line {self.line}" if self.line is not None else ""
            parts.append(f"ingest of {self.source}{at}")
        return ", ".join(parts) or "unknown"


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    """One record of a dead-letter topic: where it sits, why it is there, and its raw value."""

    topic: str
    partition: int
    offset: int
    timestamp: datetime | None
    """The record's Kafka timestamp (processors keep the refused record's; ingest's is the
    time it was sent); ``None`` when Kafka has none."""
    key: bytes | None
    value: bytes | None
    reason: str | None
    """The ``x-dead-letter-reason`` header: ``<code>: <detail>`` (``late`` alone)."""
    origin: DeadLetterOrigin

    @property
    def code(self) -> str | None:
        """The reason's kind (``late``, ``invalid``, ``unparsable``, ...): what metrics count."""
        if self.reason is None:
            return None
        return self.reason.partition(":")[0].strip() or None


@dataclass(frozen=True, slots=True)
class DeadLetterValue:
    """What a dead letter's value is, decoded as far as it can be."""

    kind: Literal["avro", "text", "binary", "empty"]
    length: int
    """The value's size in bytes."""
    text: str | None = None
    """The value as text (``kind == "text"``)."""
    schema_id: int | None = None
    schema_name: str | None = None
    record: dict[str, Any] | None = None
    """The Avro record as its writer schema reads it (``kind == "avro"``)."""
    hex_preview: str | None = None
    """The first :data:`HEX_PREVIEW_BYTES` bytes in hex (``kind == "binary"``)."""
    not_avro: str | None = None
    """Why a value framed like Confluent Avro did not decode (then it is text or binary)."""

    def to_json(self) -> dict[str, Any]:
        """The JSON object of the value (fields that do not apply to its kind left out)."""
        out: dict[str, Any] = {"kind": self.kind, "length": self.length}
        if self.kind == "avro":
            out |= {"schema_id": self.schema_id, "schema": self.schema_name}
            out["record"] = self.record
        elif self.kind == "text":
            out["text"] = self.text
        elif self.kind == "binary":
            out["hex"] = self.hex_preview
            out["truncated"] = self.length > HEX_PREVIEW_BYTES
        if self.not_avro is not None:
            out["not_avro"] = self.not_avro
        return out

    def describe(self, width: int = 300) -> str:
        """One line for a terminal, at most about ``width`` characters of content."""
        if self.kind == "empty":
            return "empty"
        if self.kind == "avro":
            body = json.dumps(self.record, default=_json_default, ensure_ascii=False)
            return f"Avro {self.schema_name} (schema id {self.schema_id}) {_cut(body, width)}"
        if self.kind == "text":
            assert self.text is not None
            framed = f" (framed like Avro, but {self.not_avro})" if self.not_avro else ""
            return f"text{framed} {_cut(_one_line(self.text), width)}"
        more = "..." if self.length > HEX_PREVIEW_BYTES else ""
        framed = f" (framed like Avro, but {self.not_avro})" if self.not_avro else ""
        return f"{self.length} bytes, not text{framed}: {self.hex_preview}{more}"


def parse_dead_letter(message: Message) -> DeadLetterRecord:
    """The dead letter of a consumed Kafka message (its headers read, its value kept raw)."""
    headers = _headers(message.headers())
    kind, ms = message.timestamp()
    key = message.key()
    value = message.value()
    return DeadLetterRecord(
        topic=message.topic() or "",
        partition=message.partition() or 0,
        offset=message.offset() or 0,
        timestamp=None if kind == TIMESTAMP_NOT_AVAILABLE or ms < 0 else _utc(ms),
        key=key if isinstance(key, bytes) else None,
        value=value if isinstance(value, bytes) else None,
        reason=headers.get(REASON_HEADER),
        origin=DeadLetterOrigin(
            topic=headers.get(ORIGINAL_TOPIC_HEADER) or None,
            partition=_int(headers.get(ORIGINAL_PARTITION_HEADER)),
            offset=_int(headers.get(ORIGINAL_OFFSET_HEADER)),
            processor=headers.get(PROCESSOR_HEADER),
            source=headers.get(SOURCE_HEADER),
            line=_int(headers.get(SOURCE_LINE_HEADER)),
        ),
    )


def decode_value(value: bytes | None, decoder: AvroDeserializer | None) -> DeadLetterValue:
    """What ``value`` is: Confluent Avro (by its writer schema), else UTF-8 text, else bytes.

    Args:
        value: a dead letter's value.
        decoder: looks writer schemas up by id; ``None`` does not try Avro.

    Raises:
        BackendUnavailableError: the registry cannot be reached (an unknown id is no error).
    """
    if not value:
        return DeadLetterValue("empty", 0)
    not_avro = None
    if decoder is not None and value[0] == MAGIC_BYTE and len(value) >= HEADER_SIZE:
        decoded = _avro(value, decoder)
        if isinstance(decoded, DeadLetterValue):
            return decoded
        not_avro = decoded
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return DeadLetterValue(
            "binary", len(value), hex_preview=value[:HEX_PREVIEW_BYTES].hex(), not_avro=not_avro
        )
    return DeadLetterValue("text", len(value), text=text, not_avro=not_avro)


def dead_letter_json(record: DeadLetterRecord, value: DeadLetterValue) -> str:
    """One line of JSON: the record's place, time, key, reason, code, origin and value."""
    origin = record.origin
    row = {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": _iso(record.timestamp),
        "key": None if record.key is None else record.key.decode("utf-8", "backslashreplace"),
        "reason": record.reason,
        "code": record.code,
        "origin": {
            "topic": origin.topic,
            "partition": origin.partition,
            "offset": origin.offset,
            "processor": origin.processor,
            "source": origin.source,
            "line": origin.line,
        },
        "value": value.to_json(),
    }
    return json.dumps(row, default=_json_default, ensure_ascii=False)


def dead_letter_text(record: DeadLetterRecord, value: DeadLetterValue) -> str:
    """Three lines for a terminal: place, time and reason; origin and key; value."""
    key = "" if record.key is None else f", key {record.key.decode('utf-8', 'backslashreplace')}"
    reason = record.reason if record.reason is not None else f"(no {REASON_HEADER} header)"
    return (
        f"partition {record.partition} offset {record.offset}"
        f"  {_iso(record.timestamp) or 'no timestamp'}  {_one_line(reason)}\n"
        f"  from {record.origin.describe()}{key}\n"
        f"  value: {value.describe()}"
    )


def _avro(value: bytes, decoder: AvroDeserializer) -> DeadLetterValue | str:
    """The Avro value, or why the framed ``value`` is not one (unknown id, body that misfits)."""
    schema_id = parse_header(value)
    try:
        writer = decoder.writer_schema(schema_id)
    except NotFoundError:
        return f"schema id {schema_id} is not in the registry"
    except SchemaError as exc:
        return f"schema id {schema_id} is not a usable schema: {exc}"
    body = io.BytesIO(value[HEADER_SIZE:])
    try:
        record = schemaless_reader(body, writer.parsed, None)
    except _DECODE_ERRORS as exc:
        return f"the body does not fit {writer.full_name} (schema id {schema_id}): {exc}"
    left = len(value) - HEADER_SIZE - body.tell()
    if left:
        return f"{left} bytes follow a {writer.full_name} record (schema id {schema_id})"
    if not isinstance(record, dict):
        return f"schema id {schema_id} does not describe a record"
    return DeadLetterValue(
        "avro", len(value), schema_id=schema_id, schema_name=writer.full_name, record=record
    )


def _headers(
    pairs: Mapping[str, str | bytes | None] | Sequence[tuple[str, str | bytes | None]] | None,
) -> dict[str, str]:
    """Header values as text (the first of a repeated name; bytes not UTF-8 escaped)."""
    items = pairs.items() if isinstance(pairs, Mapping) else pairs or ()
    out: dict[str, str] = {}
    for name, raw in items:
        if name in out or raw is None:
            continue
        out[name] = raw if isinstance(raw, str) else raw.decode("utf-8", "backslashreplace")
    return out


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def _utc(ms: int) -> datetime | None:
    try:
        return datetime.fromtimestamp(ms / 1000, UTC)
    except (OverflowError, ValueError, OSError):
        return None  # past year 9999: not a time


def _iso(at: datetime | None) -> str | None:
    if at is None:
        return None
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _one_line(text: str) -> str:
    """Line breaks, tabs and other control characters escaped, so one value is one line."""
    return "".join(
        _LINE_BREAKS.get(ch, f"\\x{ord(ch):02x}" if ord(ch) < 32 or ord(ch) == 127 else ch)
        for ch in text
    )


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else f"{text[:width]}... ({len(text)} characters)"


def _json_default(value: object) -> object:
    """JSON for what Avro records hold besides JSON's types: times, bytes, decimals."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)

"""Avro serde in the Confluent wire format, on fastavro.

Writing: one serializer per (topic, schema); the schema is registered once and parsed once, and
one ``BytesIO`` is reused for every record, with the 5-byte header left in place.

Reading: each record is decoded with *its own* writer schema, fetched by the id in its header
(once per id), and resolved into a reader schema: by default the bundled schema of the same
record name, so that a topic holding several versions of ``Trade`` decodes into today's
``Trade``. Resolution fills fields the writer lacked from the reader's defaults.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any
from typing import Generic
from typing import TypeVar

from fastavro import schemaless_reader
from fastavro import schemaless_writer
from fastavro.read import SchemaResolutionError

from featurestore.errors import SchemaError
from featurestore.events.codec import Codec
from featurestore.events.codec import codec_for
from featurestore.events.codec import codec_for_type
from featurestore.events.model import Anomaly
from featurestore.events.model import Event
from featurestore.events.model import Metric
from featurestore.events.model import PredictionLog
from featurestore.events.model import Quote
from featurestore.events.model import Trade
from featurestore.events.registry import SchemaStore
from featurestore.events.registry import value_subject
from featurestore.events.schemas import AvroSchema
from featurestore.events.schemas import bundled_schema
from featurestore.events.schemas import parse_schema_text
from featurestore.events.wire import HEADER_SIZE
from featurestore.events.wire import SerializationError
from featurestore.events.wire import frame_header
from featurestore.events.wire import parse_header

__all__ = ["AvroDeserializer", "AvroSerializer"]

E = TypeVar("E", Trade, Quote, Metric, Anomaly, PredictionLog)

# What fastavro raises on a body that does not fit its schema.
_DECODE_ERRORS = (SchemaResolutionError, EOFError, ValueError, TypeError, IndexError, KeyError)
_ENCODE_ERRORS = (ValueError, TypeError, AttributeError, KeyError, OverflowError)


class AvroSerializer(Generic[E]):
    """Encodes events of one type for one topic."""

    def __init__(self, codec: Codec[E], schema: AvroSchema, schema_id: int) -> None:
        """Use :meth:`for_topic`, which registers the schema; this takes a known id."""
        self.codec: Codec[E] = codec
        self.schema = schema
        self.schema_id = schema_id
        self._parsed = schema.parsed
        self._buffer = io.BytesIO()
        self._buffer.write(frame_header(schema_id))

    @classmethod
    def for_topic(
        cls,
        store: SchemaStore,
        topic: str,
        event_type: type[E],
        schema: AvroSchema | None = None,
    ) -> AvroSerializer[E]:
        """Register ``schema`` (the bundled one by default) under the topic's value subject.

        Raises:
            SchemaError: the registry rejects the schema as incompatible.
            BackendUnavailableError: the registry cannot be reached.

        """
        codec: Codec[E] = codec_for_type(event_type)
        schema = schema or bundled_schema(codec.schema_name)
        if schema.full_name != codec.full_name:
            raise SchemaError(f"schema {schema.full_name} does not describe {codec.full_name}")
        return cls(codec, schema, store.register(value_subject(topic), schema.text))

    def encode(self, event: E) -> bytes:
        """Return the framed Avro bytes of an event.

        Raises:
            SerializationError: the event does not fit the schema.

        """
        return self.encode_wire(self.codec.to_wire(event))

    def encode_wire(self, record: Mapping[str, Any]) -> bytes:
        """Return the framed Avro bytes of a wire dict (already in the schema's shape)."""
        buffer = self._buffer
        buffer.seek(HEADER_SIZE)
        buffer.truncate()
        try:
            schemaless_writer(buffer, self._parsed, record)
        except _ENCODE_ERRORS as exc:
            raise SerializationError(f"cannot encode {self.schema.full_name}: {exc}") from exc
        return buffer.getvalue()


class AvroDeserializer:
    """Decodes framed records with their writer schema into a reader schema."""

    def __init__(self, store: SchemaStore, reader: AvroSchema | None = None) -> None:
        """Decode into ``reader``, or by default into the bundled schema of the writer's name.

        Args:
            store: where writer schemas are looked up by id.
            reader: the schema every record is resolved into; ``None`` picks, per record name,
                the schema bundled with this version of the store.

        """
        self._store = store
        self._reader = reader
        self._writers: dict[int, AvroSchema] = {}

    def writer_schema(self, schema_id: int) -> AvroSchema:
        """Return the writer schema of an id (fetched and parsed once)."""
        schema = self._writers.get(schema_id)
        if schema is None:
            schema = parse_schema_text(self._store.schema_text(schema_id))
            self._writers[schema_id] = schema
        return schema

    def _reader_for(self, writer: AvroSchema) -> AvroSchema:
        if self._reader is not None:
            return self._reader
        return bundled_schema(codec_for(writer.full_name).schema_name)

    def decode_wire(self, data: bytes) -> tuple[int, dict[str, Any]]:
        """Return the schema id and the wire dict (in the reader schema's shape) of a framed record.

        Raises:
            SerializationError: bad framing, or a body that does not match its writer schema or
                cannot be resolved into the reader schema.
            NotFoundError: the schema id is unknown to the registry.
            BackendUnavailableError: the registry cannot be reached.

        """
        schema_id = parse_header(data)
        writer = self.writer_schema(schema_id)
        reader = self._reader_for(writer)
        body = io.BytesIO(memoryview(data)[HEADER_SIZE:])
        try:
            record = schemaless_reader(body, writer.parsed, reader.parsed)
        except _DECODE_ERRORS as exc:
            raise SerializationError(
                f"cannot decode a {writer.full_name} record of schema id {schema_id}"
                f" into {reader.full_name}: {exc}"
            ) from exc
        if not isinstance(record, dict):
            raise SerializationError(f"schema id {schema_id} does not describe a record")
        return schema_id, record

    def decode(self, data: bytes) -> Event:
        """Return the domain event of a framed record."""
        _, record = self.decode_wire(data)
        name = self._reader.full_name if self._reader else self._writer_name(data)
        event: Event = codec_for(name).from_wire(record)
        return event

    def _writer_name(self, data: bytes) -> str:
        return self.writer_schema(parse_header(data)).full_name

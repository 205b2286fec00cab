"""The event model of the store: domain events, their Avro schemas and the wire serde.

Domain events are frozen dataclasses (:class:`Trade`, :class:`Quote`, :class:`Metric`,
:class:`Anomaly`, :class:`PredictionLog`); the Avro wire dicts exist only inside the serde.
"""

from __future__ import annotations

from featurestore.events.codec import from_micros, to_micros
from featurestore.events.dead_letters import (
    DeadLetterOrigin,
    DeadLetterRecord,
    DeadLetterValue,
    decode_value,
    parse_dead_letter,
)
from featurestore.events.model import Anomaly, Event, Metric, PredictionLog, Quote, Trade
from featurestore.events.registry import (
    ConfluentSchemaStore,
    InMemorySchemaStore,
    SchemaStore,
    value_subject,
)
from featurestore.events.replay import (
    Decoded,
    LoggedEvent,
    UndecodableRecord,
    replay_messages,
    replay_topic,
)
from featurestore.events.schemas import AvroSchema, bundled_schema, parse_schema_text
from featurestore.events.serde import AvroDeserializer, AvroSerializer
from featurestore.events.wire import SerializationError, frame_header, parse_header

__all__ = [
    "Anomaly",
    "AvroDeserializer",
    "AvroSchema",
    "AvroSerializer",
    "ConfluentSchemaStore",
    "DeadLetterOrigin",
    "DeadLetterRecord",
    "DeadLetterValue",
    "Decoded",
    "Event",
    "InMemorySchemaStore",
    "LoggedEvent",
    "Metric",
    "PredictionLog",
    "Quote",
    "SchemaStore",
    "SerializationError",
    "Trade",
    "UndecodableRecord",
    "bundled_schema",
    "decode_value",
    "frame_header",
    "from_micros",
    "parse_dead_letter",
    "parse_header",
    "parse_schema_text",
    "replay_messages",
    "replay_topic",
    "to_micros",
    "value_subject",
]

"""The event model of the store: domain events, their Avro schemas and the wire serde.

Domain events are frozen dataclasses (:class:`Trade`, :class:`Quote`, :class:`Metric`,
:class:`Anomaly`, :class:`PredictionLog`); the Avro wire dicts exist only inside the serde.
"""

from __future__ import annotations

from featurestore.events.codec import from_micros
from featurestore.events.codec import to_micros
from featurestore.events.dead_letters import DeadLetterOrigin
from featurestore.events.dead_letters import DeadLetterRecord
from featurestore.events.dead_letters import DeadLetterValue
from featurestore.events.dead_letters import decode_value
from featurestore.events.dead_letters import parse_dead_letter
from featurestore.events.model import Anomaly
from featurestore.events.model import Event
from featurestore.events.model import Metric
from featurestore.events.model import PredictionLog
from featurestore.events.model import Quote
from featurestore.events.model import Trade
from featurestore.events.registry import ConfluentSchemaStore
from featurestore.events.registry import InMemorySchemaStore
from featurestore.events.registry import SchemaStore
from featurestore.events.registry import value_subject
from featurestore.events.replay import Decoded
from featurestore.events.replay import LoggedEvent
from featurestore.events.replay import UndecodableRecord
from featurestore.events.replay import replay_messages
from featurestore.events.replay import replay_topic
from featurestore.events.schemas import AvroSchema
from featurestore.events.schemas import bundled_schema
from featurestore.events.schemas import parse_schema_text
from featurestore.events.serde import AvroDeserializer
from featurestore.events.serde import AvroSerializer
from featurestore.events.wire import SerializationError
from featurestore.events.wire import frame_header
from featurestore.events.wire import parse_header

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

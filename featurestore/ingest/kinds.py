"""The kinds of event ingest sends, and for each: its type, validation, Kafka key and topic.

A source record names its kind (:attr:`SourceRecord.kind`); the ingest loop looks the kind up
here to validate the record, encode it with the kind's bundled Avro schema and key it, so one
symbol's trades and quotes, and one entity's metrics, each stay ordered in their partition.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from typing import Generic
from typing import TypeVar

from featurestore.config import Settings
from featurestore.config import TopicSettings
from featurestore.events.codec import codec_for_type
from featurestore.events.model import Metric
from featurestore.events.model import Quote
from featurestore.events.model import Trade
from featurestore.events.schemas import AvroSchema
from featurestore.events.schemas import bundled_schema
from featurestore.ingest.sources.base import RecordKind
from featurestore.ingest.sources.base import SourceRecord
from featurestore.ingest.validate import validate_metric
from featurestore.ingest.validate import validate_quote
from featurestore.ingest.validate import validate_trade

__all__ = [
    "EVENT_KINDS",
    "METRICS",
    "QUOTES",
    "TRADES",
    "EventKind",
    "IngestEvent",
    "own_event_schemas",
    "register_event_schemas",
]

IngestEvent = Trade | Quote | Metric
"""An event ingest sends."""
E = TypeVar("E", Trade, Quote, Metric)


@dataclass(frozen=True, slots=True)
class EventKind(Generic[E]):
    """How records of one kind become events on their topic."""

    name: RecordKind
    event_type: type[E]
    validate: Callable[[SourceRecord], E]
    """Turns a record into an event or raises ``RecordRejectedError`` saying why not."""
    key_field: str
    """The field whose value keys the event in Kafka."""
    key: Callable[[E], str]
    """The Kafka key of a validated event (the value of :attr:`key_field`)."""
    default_topic: Callable[[TopicSettings], str]
    """The topic of the kind in the settings."""


TRADES: EventKind[Trade] = EventKind(
    "trade", Trade, validate_trade, "symbol", lambda t: t.symbol, lambda s: s.trades
)
QUOTES: EventKind[Quote] = EventKind(
    "quote", Quote, validate_quote, "symbol", lambda q: q.symbol, lambda s: s.quotes
)
METRICS: EventKind[Metric] = EventKind(
    "metric", Metric, validate_metric, "entity", lambda m: m.entity, lambda s: s.metrics
)
EVENT_KINDS: Mapping[RecordKind, EventKind[Any]] = {k.name: k for k in (TRADES, QUOTES, METRICS)}


def _own_schemas(settings: Settings) -> list[tuple[str, EventKind[Any], AvroSchema]]:
    """Each kind's topic, the kind, and its bundled schema (what its producers register)."""
    return [
        (
            kind.default_topic(settings.topics),
            kind,
            bundled_schema(codec_for_type(kind.event_type).schema_name),
        )
        for kind in EVENT_KINDS.values()
    ]


def own_event_schemas(settings: Settings) -> dict[str, str]:
    """The schema text :func:`register_event_schemas` registers, by topic (what a plan tests)."""
    return {topic: schema.text for topic, _, schema in _own_schemas(settings)}


def register_event_schemas(settings: Settings) -> dict[str, int]:
    """Register each kind's bundled schema under its topic's subject; returns topic -> id.

    Applying feature definitions refuses a topic without a schema, and a topic's first
    producer registers it: a fresh stack registers them up front (idempotent).
    """
    from featurestore.events import AvroSerializer
    from featurestore.events import ConfluentSchemaStore

    out = {}
    with ConfluentSchemaStore.from_settings(settings.schema_registry) as store:
        for topic, kind, schema in _own_schemas(settings):
            out[topic] = AvroSerializer.for_topic(store, topic, kind.event_type, schema).schema_id
    return out

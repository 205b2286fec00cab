"""Where one source record goes: its event topic, Avro-encoded and keyed, or the dead letters.

:meth:`RecordRouter.route` is the whole decision of the ingest loop for one record, and a plain
function of the record: the loop (:class:`~featurestore.ingest.pipeline.Ingestor`) only paces and
produces what it returns, so the rule "every record read ends on its topic or on the dead-letter
topic with its reason" is testable without a broker. A record is dead-lettered when the source
already rejects it (an unparsable or unreadable line), when validation rejects it, when its event
does not fit the topic's schema, or when the run sends no topic of its kind; the dead letter is
the record's original bytes with ``x-dead-letter-reason`` (``<code>: <detail>``), ``x-source``,
``x-source-line`` and ``x-original-topic`` headers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from featurestore.events.codec import to_micros
from featurestore.events.dead_letters import ORIGINAL_TOPIC_HEADER
from featurestore.events.dead_letters import REASON_HEADER
from featurestore.events.dead_letters import SOURCE_HEADER
from featurestore.events.dead_letters import SOURCE_LINE_HEADER
from featurestore.events.registry import SchemaStore
from featurestore.events.serde import AvroSerializer
from featurestore.events.wire import SerializationError
from featurestore.ingest.kinds import EVENT_KINDS
from featurestore.ingest.kinds import EventKind
from featurestore.ingest.sources.base import RecordKind
from featurestore.ingest.sources.base import SourceRecord
from featurestore.ingest.validate import RecordRejectedError

__all__ = ["DEAD_LETTER_REASON", "Outgoing", "RecordRouter"]

DEAD_LETTER_REASON = REASON_HEADER
"""The header of a dead letter's reason (:mod:`featurestore.events.dead_letters` names them all)."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """The Kafka message one source record becomes."""

    topic: str
    value: bytes
    key: bytes | None
    event_time: datetime | None = None
    """The event's time (its Kafka timestamp, and what a paced replay waits for); ``None`` for
    a dead letter, which is sent at once."""
    headers: tuple[tuple[str, bytes], ...] = ()
    reason_code: str | None = None
    """The dead letter's reason code (``unparsable``, ``missing_field``, ...); ``None`` for an
    event."""

    @property
    def timestamp_ms(self) -> int:
        """The Kafka timestamp: the event time in ms; 0 (the producer's clock) without one."""
        return 0 if self.event_time is None else to_micros(self.event_time) // 1000


@dataclass(frozen=True, slots=True)
class _Route:
    """Where the records of one kind go, and how they are encoded."""

    kind: EventKind[Any]
    topic: str
    serializer: AvroSerializer[Any]


class RecordRouter:
    """Turns source records into the messages of their event topics or of the dead letters."""

    def __init__(
        self, topics: Mapping[RecordKind, str], dead_letter_topic: str, store: SchemaStore
    ) -> None:
        """Register each kind's schema under its topic's subject in ``store``.

        Raises:
            SchemaError: the registry refuses a schema as incompatible with its topic's.
            BackendUnavailableError: the registry cannot be reached.
        """
        self.dead_letter_topic = dead_letter_topic
        self._routes: dict[RecordKind, _Route] = {}
        for name, topic in topics.items():
            kind = EVENT_KINDS[name]
            serializer = AvroSerializer.for_topic(store, topic, kind.event_type)
            self._routes[name] = _Route(kind, topic, serializer)

    def serializer(self, kind: RecordKind) -> AvroSerializer[Any]:
        """Return the serializer of a kind's topic (its schema id is the one registered)."""
        return self._routes[kind].serializer

    def route(self, record: SourceRecord) -> Outgoing:
        """The message ``record`` becomes: its event, or its dead letter with the reason."""
        route = self._routes.get(record.kind)
        try:
            if route is None:
                raise RecordRejectedError("no_topic", f"this run sends no {record.kind} records")
            event = route.kind.validate(record)
            value = route.serializer.encode(event)
        except RecordRejectedError as exc:
            return self._dead_letter(record, exc.code, exc.reason, route)
        except SerializationError as exc:
            return self._dead_letter(record, "unserializable", f"unserializable: {exc}", route)
        key = route.kind.key(event).encode()
        return Outgoing(route.topic, value, key, event.event_time)

    def _dead_letter(
        self, record: SourceRecord, code: str, reason: str, route: _Route | None
    ) -> Outgoing:
        key = record.fields.get(route.kind.key_field) if route is not None else None
        headers = (
            (DEAD_LETTER_REASON, _utf8(reason)),
            (SOURCE_HEADER, _utf8(record.source)),
            (SOURCE_LINE_HEADER, str(record.line).encode()),
            (ORIGINAL_TOPIC_HEADER, _utf8(route.topic if route is not None else "")),
        )
        return Outgoing(
            self.dead_letter_topic,
            record.raw_bytes(),
            _utf8(key) if isinstance(key, str) else None,
            headers=headers,
            reason_code=code,
        )


def _utf8(text: str) -> bytes:
    """UTF-8 of any str; a file name that was not UTF-8 keeps its bytes as escapes."""
    return text.encode("utf-8", "backslashreplace")

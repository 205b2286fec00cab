"""Keeping the log free of copies: ids already sent by this process, and ids already in the log.

The vendor's WebSocket and its REST API deliver the same trade with the same event id
(:mod:`featurestore.ingest.vendor.records`). Two places can hold an id before it is sent:

- this process sent it a moment ago (:class:`RecentIds`): a REST backfill of the span a
  reconnect missed overlaps what the WebSocket delivered just before the break (and the
  records in flight are not in the log yet);
- an earlier run wrote it to the log (:func:`logged_ids`): a backfill or a heal over a range
  that is partly there already. The topic is read from the first offset whose Kafka timestamp
  (the event time, as ingest writes it) is at or after the range's start: every record of the
  range lies at or after that offset, whatever was appended since.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Collection
from datetime import datetime
from datetime import timedelta

from confluent_kafka import Consumer
from confluent_kafka import KafkaException
from confluent_kafka import TopicPartition

from featurestore.error_maps import kafka_error
from featurestore.error_maps import kafka_errors
from featurestore.errors import NotFoundError
from featurestore.errors import ValidationError
from featurestore.events.model import Quote
from featurestore.events.model import Trade
from featurestore.events.registry import SchemaStore
from featurestore.events.replay import read_to_ends
from featurestore.events.serde import AvroDeserializer
from featurestore.kafka_connection import KafkaConnection
from featurestore.kafka_connection import create_client
from featurestore.topics import partitions_of

__all__ = ["RecentIds", "event_id", "logged_ids"]


def event_id(event: object) -> str | None:
    """The id of a trade or a quote; None for other events."""
    if isinstance(event, Trade):
        return event.trade_id
    if isinstance(event, Quote):
        return event.quote_id
    return None


class RecentIds:
    """The ids sent in the last ``window`` of event time, oldest forgotten first.

    Ten minutes covers what the log may not show yet (records in flight, seconds) and a break's
    overlap (the ids just before the break; none newer arrive until the span is sent); older
    ranges are checked against the log itself. The memory is one id per record of the window
    (at 5,000 records/s, 3 million ids).
    """

    def __init__(self, window: timedelta = timedelta(minutes=10)) -> None:
        """Remember ids for ``window`` of event time."""
        self.window = window
        self._ids: OrderedDict[str, datetime] = OrderedDict()
        self._newest: datetime | None = None

    def __len__(self) -> int:
        """The number of ids remembered."""
        return len(self._ids)

    def __contains__(self, event_id: object) -> bool:
        """Whether ``event_id`` was sent within the window."""
        return event_id in self._ids

    def add(self, event_id: str, event_time: datetime) -> bool:
        """Remember an id; False when it was already there (the record is a copy)."""
        if event_id in self._ids:
            return False
        self._ids[event_id] = event_time
        if self._newest is None or event_time > self._newest:
            self._newest = event_time
            horizon = event_time - self.window
            while self._ids:
                oldest_id, oldest_time = next(iter(self._ids.items()))
                if oldest_time >= horizon:
                    break
                del self._ids[oldest_id]
        return True


def logged_ids(
    kafka: KafkaConnection,
    store: SchemaStore,
    topic: str,
    symbols: Collection[str],
    start: datetime,
    end: datetime,
    *,
    timeout_s: float = 30.0,
) -> set[str]:
    """The ids of the trades or quotes of ``symbols`` in ``[start, end)`` already in ``topic``.

    Only records keyed by one of the symbols are decoded. A topic that does not exist yet holds
    nothing.

    Raises:
        BackendUnavailableError: Kafka does not answer.
    """
    keys = {s.upper().encode() for s in symbols}
    consumer = create_client(
        Consumer,
        kafka.consumer(
            f"featurestore-vendor-ids-{uuid.uuid4().hex}",
            **{"enable.auto.commit": False, "enable.partition.eof": True},
        ),
    )
    decoder = AvroDeserializer(store)
    found: set[str] = set()
    try:
        with kafka_errors(f"listing {topic}", kafka):
            try:
                partitions = partitions_of(consumer, topic, timeout_s)
            except NotFoundError:
                return found
        start_ms = int(start.timestamp() * 1000)
        wanted = [TopicPartition(topic, p, start_ms) for p in partitions]
        try:
            firsts = consumer.offsets_for_times(wanted, timeout=timeout_s)
            remaining: dict[int, int] = {}
            assignment = []
            for tp in firsts:
                _, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, tp.partition), timeout=timeout_s
                )
                if tp.offset >= 0 and tp.offset < high:
                    assignment.append(TopicPartition(topic, tp.partition, tp.offset))
                    remaining[tp.partition] = high
        except KafkaException as exc:
            raise kafka_error(exc, f"offsets of {topic}", kafka) from exc
        if not assignment:
            return found
        consumer.assign(assignment)
        for message in read_to_ends(consumer, kafka, topic, remaining):
            value = message.value()
            if message.key() not in keys or value is None:
                continue
            try:
                event = decoder.decode(value)
            except (ValidationError, NotFoundError):
                continue  # not an event of ours: it cannot hold one of the ids
            found_id = event_id(event)
            when = getattr(event, "event_time", None)
            if found_id is not None and when is not None and start <= when < end:
                found.add(found_id)
    finally:
        consumer.close()
    return found

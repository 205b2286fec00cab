"""Reading a topic back from offset 0, decoding each record with its own writer schema.

This is how everything derived from the log is rebuilt. :func:`replay_topic` reads every
partition from its first offset up to the end offsets taken when it starts (a bounded, finite
read), or keeps following new records with ``follow=True``. It uses no consumer group offsets:
an ephemeral group id, no commits, explicit assignment.

The pieces every reader of an event topic shares are here too: :func:`read_to_ends` (records up
to end offsets), :func:`data_messages` (what a consume call returned, end-of-partition events
skipped and errors raised) and :func:`event_of` (a record's event of one type, or None).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import TypeVar

from confluent_kafka import Consumer
from confluent_kafka import KafkaError
from confluent_kafka import KafkaException
from confluent_kafka import Message
from confluent_kafka import TopicPartition

from featurestore.error_maps import kafka_error
from featurestore.error_maps import kafka_errors
from featurestore.errors import NotFoundError
from featurestore.errors import ValidationError
from featurestore.events.model import Event
from featurestore.events.registry import SchemaStore
from featurestore.events.schemas import AvroSchema
from featurestore.events.serde import AvroDeserializer
from featurestore.events.wire import parse_header
from featurestore.kafka_connection import CLIENT_LOG
from featurestore.kafka_connection import KafkaConnection
from featurestore.kafka_connection import create_client
from featurestore.topics import partitions_of

__all__ = [
    "Decoded",
    "LoggedEvent",
    "UndecodableRecord",
    "data_messages",
    "end_offsets",
    "event_of",
    "read_to_ends",
    "replay_messages",
    "replay_topic",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """One decoded event and where it sits in the log."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    timestamp_ms: int
    schema_id: int
    """The writer schema id the record was encoded with."""
    event: Event


@dataclass(frozen=True, slots=True)
class UndecodableRecord:
    """A record of the topic that is not a decodable event (it is reported, not skipped)."""

    topic: str
    partition: int
    offset: int
    reason: str
    value: bytes | None


Decoded = LoggedEvent | UndecodableRecord
"""What a replay yields per record."""


def replay_topic(
    kafka: KafkaConnection,
    store: SchemaStore,
    topic: str,
    *,
    follow: bool = False,
    since: datetime | None = None,
    reader: AvroSchema | None = None,
    timeout_s: float = 30.0,
    batch: int = 1000,
) -> Iterator[Decoded]:
    """Yield every record of ``topic`` from its first offset, partition by partition in order.

    Args:
        kafka: the Kafka cluster (``settings.kafka.connection``).
        store: where writer schemas are looked up by id.
        topic: the topic to read.
        follow: keep waiting for new records instead of stopping at the start's end offsets.
        since: start each partition at its first record whose Kafka timestamp is at or after
            this (aware) time, instead of its first offset.
        reader: the reader schema; by default the bundled schema of each record's name.
        timeout_s: how long metadata and offset requests may take.
        batch: records fetched per consume call.

    Raises:
        NotFoundError: the topic does not exist.
        BackendUnavailableError: Kafka cannot be reached.
    """
    decoder = AvroDeserializer(store, reader)
    messages = replay_messages(
        kafka, topic, follow=follow, since=since, timeout_s=timeout_s, batch=batch
    )
    for message in messages:
        yield _decode(decoder, topic, message)


def replay_messages(
    kafka: KafkaConnection,
    topic: str,
    *,
    follow: bool = False,
    since: datetime | None = None,
    timeout_s: float = 30.0,
    batch: int = 1000,
) -> Iterator[Message]:
    """Yield every record of ``topic`` as Kafka gave it (undecoded), as :func:`replay_topic` reads.

    For readers of records that are not events, such as the dead letters
    (:mod:`featurestore.events.dead_letters`), whose meaning is in their headers.

    Raises:
        NotFoundError: the topic does not exist.
        BackendUnavailableError: Kafka cannot be reached.
    """
    consumer = _reading_consumer(
        kafka,
        f"featurestore-replay-{uuid.uuid4().hex}",
        **{"auto.offset.reset": "earliest", "enable.partition.eof": True},
    )
    try:
        ends = _assign_from_start(consumer, kafka, topic, timeout_s, since)
        yield from read_to_ends(consumer, kafka, topic, ends, batch=batch, follow=follow)
    except KafkaException as exc:
        raise kafka_error(exc, f"reading {topic}", kafka) from exc
    finally:
        consumer.close()


def read_to_ends(
    consumer: Consumer,
    kafka: KafkaConnection,
    topic: str,
    ends: dict[int, int],
    *,
    batch: int = 1000,
    follow: bool = False,
) -> Iterator[Message]:
    """The records of ``consumer``'s assignment of ``topic``, until every partition is read.

    ``ends`` is ``{partition: end offset}`` of the partitions still to read: a partition leaves
    it at its last record before the end, or when the consumer (``enable.partition.eof``) says
    it reached the end. With ``follow`` the records keep coming after that.

    Raises:
        FeatureStoreError: a record's error, translated (:func:`kafka_error`).
    """
    while follow or ends:
        for message in consumer.consume(batch, timeout=1.0):
            error = message.error()
            partition = message.partition() or 0
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    ends.pop(partition, None)
                    continue
                raise kafka_error(error, f"reading {topic}", kafka)
            offset = message.offset() or 0
            if partition in ends and offset >= ends[partition] - 1:
                del ends[partition]
            yield message


def data_messages(messages: Iterable[Message], topic: str) -> Iterator[Message]:
    """The messages of ``topic`` that hold records: end-of-partition events skipped.

    Raises:
        FeatureStoreError: a message's error, translated (:func:`kafka_error`).
    """
    for message in messages:
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                continue
            raise kafka_error(error, f"reading {topic}")
        yield message


def event_of(decoder: AvroDeserializer, message: Message, event_type: type[T]) -> T | None:
    """The record's event when it is an ``event_type``; None for any other record.

    A record that does not decode (bad framing or body, a schema id the registry does not know)
    is logged and skipped, as is one without a value.
    """
    value = message.value()
    if value is None:
        return None
    try:
        event = decoder.decode(value)
    except (ValidationError, NotFoundError) as exc:
        logger.warning(
            "skipping undecodable record at offset %s of %s: %s",
            message.offset(),
            message.topic(),
            exc,
        )
        return None
    return event if isinstance(event, event_type) else None


def end_offsets(kafka: KafkaConnection, topic: str, timeout_s: float = 10.0) -> dict[int, int]:
    """``{partition: end offset}`` of a topic (the offset its next record will get).

    Raises:
        NotFoundError: the topic does not exist.
        BackendUnavailableError: Kafka does not answer.
    """
    consumer = _reading_consumer(kafka, "featurestore-end-offsets")
    try:
        with kafka_errors(f"listing {topic}", kafka):
            partitions = partitions_of(consumer, topic, timeout_s)
        ends = {}
        for partition in partitions:
            try:
                _, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=timeout_s
                )
            except KafkaException as exc:
                raise kafka_error(exc, f"offsets of {topic}", kafka) from exc
            ends[partition] = high
        return ends
    finally:
        consumer.close()


def _reading_consumer(kafka: KafkaConnection, group_id: str, **extra: Any) -> Consumer:
    """A command's consumer that only reads: it commits nothing, and logs through CLIENT_LOG."""
    config = kafka.consumer(
        group_id, **{"enable.auto.commit": False, "logger": CLIENT_LOG, **extra}
    )
    return create_client(Consumer, config)


def _assign_from_start(
    consumer: Consumer,
    kafka: KafkaConnection,
    topic: str,
    timeout_s: float,
    since: datetime | None = None,
) -> dict[int, int]:
    """Assign every partition at its start; return {partition: end offset} to reach.

    The start is the low watermark, or with ``since`` the first offset whose record timestamp is
    at or after it (the end offset where there is none).
    """
    with kafka_errors(f"listing {topic}", kafka):
        partitions = partitions_of(consumer, topic, timeout_s)
    starts: dict[int, int] = {}
    ends: dict[int, int] = {}
    for partition in partitions:
        low, high = consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=timeout_s
        )
        starts[partition], ends[partition] = low, high
    if since is not None:
        at_ms = _epoch_ms(since)
        asked = [TopicPartition(topic, p, at_ms) for p in partitions]
        for found in consumer.offsets_for_times(asked, timeout=timeout_s):
            # -1: no record at or after the time; nothing to read before the end
            offset = ends[found.partition] if found.offset < 0 else found.offset
            starts[found.partition] = max(starts[found.partition], offset)
    consumer.assign([TopicPartition(topic, p, starts[p]) for p in partitions])
    return {p: end for p, end in ends.items() if end > starts[p]}


def _epoch_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValidationError(f"since: {moment.isoformat()} has no UTC offset", field="since")
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def _decode(decoder: AvroDeserializer, topic: str, message: Message) -> Decoded:
    value = message.value()
    partition = message.partition() or 0
    offset = message.offset() or 0
    if value is None:
        return UndecodableRecord(topic, partition, offset, "empty value (tombstone)", None)
    try:
        event = decoder.decode(value)
        schema_id = parse_header(value)
    except (ValidationError, NotFoundError) as exc:
        return UndecodableRecord(topic, partition, offset, str(exc), value)
    _, timestamp_ms = message.timestamp()
    key = message.key()
    return LoggedEvent(
        topic=topic,
        partition=partition,
        offset=offset,
        key=key if isinstance(key, bytes) else None,
        timestamp_ms=timestamp_ms,
        schema_id=schema_id,
        event=event,
    )

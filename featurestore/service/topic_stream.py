"""Live subscriptions to one Kafka topic of Avro events, each resumable from a token.

The machinery behind every streaming RPC (StreamAnomalies, StreamPredictions): the RPCs differ
only in the event type they decode and in the filter a subscriber passes.

Fan-out: one Kafka consumer per subscription, explicitly assigned every partition at the
subscription's own position, polled on a thread of its own. A subscriber that reads slowly only
stops polling its own consumer: Kafka keeps the records, librdkafka's prefetch per consumer is
capped (``queued.max.messages.kbytes``), and no other subscriber or RPC waits for it. The cost is a
consumer (a thread and a broker connection) per subscription, so the number of subscriptions to
a topic is capped (:attr:`ServiceSettings.max_stream_subscriptions`; beyond it
RESOURCE_EXHAUSTED, which clients retry later).

Records that are not of the event type or cannot be decoded are skipped (and logged); they still
advance the position, so the resume token never points before them again. Positions and tokens:
:mod:`featurestore.service.stream_position`.

A stream never jumps silently: a token whose offset retention has deleted (records between it and
the partition's start would be lost), one past a partition's end or naming a partition the topic
lacks (the topic was recreated, or the token is another cluster's) is refused with OUT_OF_RANGE
(:class:`PositionOutOfRangeError`), and so is a live stream whose unread records retention deletes
under it (the consumer's ``auto.offset.reset`` is ``error``, not a jump to the end). Partitions a
token lacks (added since it was made) start at their beginning.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import AsyncIterator
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from typing import Generic
from typing import TypeVar

import grpc
from confluent_kafka import Consumer
from confluent_kafka import KafkaError
from confluent_kafka import KafkaException
from confluent_kafka import Message
from confluent_kafka import TopicPartition
from opentelemetry import trace

from featurestore.error_maps import kafka_error
from featurestore.errors import BackendUnavailableError
from featurestore.errors import FeatureStoreError
from featurestore.events import AvroDeserializer
from featurestore.events import SchemaStore
from featurestore.events.replay import data_messages
from featurestore.events.replay import event_of
from featurestore.kafka_connection import KafkaConnection
from featurestore.kafka_connection import create_client
from featurestore.service.stream_position import StreamPosition
from featurestore.topics import partitions_of

__all__ = [
    "PositionOutOfRangeError",
    "StartAt",
    "Streamed",
    "TooManySubscriptionsError",
    "TopicSubscriptions",
    "start_from_request",
]

E = TypeVar("E")

_POLL_S = 0.2
_BATCH = 500
_PREFETCH_KB = 1024


class TooManySubscriptionsError(FeatureStoreError):
    """The server holds as many subscriptions as it is configured for; retry later."""

    retryable = True
    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class PositionOutOfRangeError(FeatureStoreError):
    """A position the topic no longer (or never) holds; resuming from it would skip records.

    Not retryable: the same token fails again. Start from a time or from now instead.
    """

    grpc_code = grpc.StatusCode.OUT_OF_RANGE


_RESTART = "start again from a time or from now"


@dataclass(frozen=True)
class StartAt:
    """Where a subscription starts: now (all fields None), at a time, or at a token's position."""

    time: datetime | None = None
    """The first record whose Kafka timestamp is at or after this time, in every partition."""
    position: StreamPosition | None = None
    """Exactly this position; partitions it lacks start at their beginning."""


def start_from_request(request: Any, subscriptions: TopicSubscriptions[Any]) -> StartAt:
    """Where a stream request asks to start (now when it does not say).

    Reads the ``start`` oneof (``latest``, ``start_time`` or ``resume_token``) that
    StreamAnomalies and StreamPredictions requests share.
    """
    from featurestore.service.convert import timestamp_from_proto

    which = request.WhichOneof("start")
    if which == "resume_token":
        return StartAt(position=subscriptions.position_of(request.resume_token))
    if which == "start_time":
        return StartAt(time=timestamp_from_proto(request.start_time, "start_time"))
    return StartAt()


@dataclass(frozen=True, slots=True)
class Streamed(Generic[E]):
    """An event and the token that resumes just after it; a checkpoint when ``event`` is None.

    Checkpoints carry the position only: one when the stream starts (so that a client that
    started "from now" and loses the connection before any event resumes where it started), and
    one after ``checkpoint_s`` in which records advanced the position but none matched.
    """

    event: E | None
    resume_token: str


@dataclass(frozen=True, slots=True)
class _Record(Generic[E]):
    partition: int
    offset: int
    event: E | None


class _Reader(Generic[E]):
    """A consumer of one subscription; every method blocks and runs on the subscription's thread."""

    def __init__(
        self,
        kafka: KafkaConnection,
        topic: str,
        store: SchemaStore,
        event_type: type[E],
        timeout_s: float,
    ) -> None:
        self.topic = topic
        self._event_type = event_type
        self._timeout_s = timeout_s
        self._decoder = AvroDeserializer(store)
        self._consumer = create_client(
            Consumer,
            kafka.consumer(
                f"featurestore-{topic}-stream-{uuid.uuid4().hex}",
                **{
                    "enable.auto.commit": False,
                    "enable.auto.offset.store": False,
                    # Never a silent jump to the end: an offset retention deleted is an error.
                    "auto.offset.reset": "error",
                    "queued.max.messages.kbytes": _PREFETCH_KB,
                    "socket.connection.setup.timeout.ms": max(1000, int(timeout_s * 1000)),
                },
            ),
        )

    def open(self, start: StartAt) -> StreamPosition:
        """Assign every partition at the start position; return that position."""
        try:
            partitions = partitions_of(self._consumer, self.topic, self._timeout_s)
            offsets = self._start_offsets(partitions, start)
        except KafkaException as exc:
            raise kafka_error(exc, f"opening topic {self.topic}") from exc
        self._consumer.assign([TopicPartition(self.topic, p, o) for p, o in offsets.items()])
        return StreamPosition(self.topic, offsets)

    def _start_offsets(self, partitions: list[int], start: StartAt) -> dict[int, int]:
        marks = {
            p: self._consumer.get_watermark_offsets(
                TopicPartition(self.topic, p), timeout=self._timeout_s
            )
            for p in partitions
        }
        if start.position is not None:
            return _resumed_offsets(self.topic, start.position.next_offsets, marks)
        if start.time is not None:
            # Kafka reads a negative time as "latest"/"earliest": a time before 1970 precedes
            # every record, so it starts at the beginning as 0 does.
            ms = max(int(start.time.timestamp() * 1000), 0)
            found = self._consumer.offsets_for_times(
                [TopicPartition(self.topic, p, ms) for p in partitions], timeout=self._timeout_s
            )
            # -1: no record at or after the time in that partition; start at its end.
            return {tp.partition: tp.offset if tp.offset >= 0 else marks[tp.partition][1]
                    for tp in found}  # fmt: skip
        return {p: high for p, (_, high) in marks.items()}

    def read(self) -> list[_Record[E]]:
        """The records that arrive within a short wait (none when there are none)."""
        first = self._consumer.poll(_POLL_S)
        if first is None:
            return []
        messages = [first, *self._consumer.consume(_BATCH, timeout=0)]
        for message in messages:
            _raise_if_records_lost(message, self.topic)
        return [
            _Record(
                message.partition() or 0,
                message.offset() or 0,
                event_of(self._decoder, message, self._event_type),
            )
            for message in data_messages(messages, self.topic)
        ]

    def close(self) -> None:
        """Close the consumer (no offsets are committed: positions live in tokens)."""
        self._consumer.close()


def _resumed_offsets(
    topic: str, known: dict[int, int], marks: dict[int, tuple[int, int]]
) -> dict[int, int]:
    """Where a token resumes in each partition (``marks``: its low and high watermarks).

    Raises:
        PositionOutOfRangeError: the token names a partition the topic lacks, an offset retention
            deleted, or one past a partition's end.
    """
    foreign = sorted(set(known) - set(marks))
    if foreign:
        held = "partition 0" if len(marks) == 1 else f"partitions 0-{len(marks) - 1}"
        raise PositionOutOfRangeError(
            f"resume_token: the token names partition {foreign[0]} but topic {topic!r} has only"
            f" {held}: the topic was recreated or the token is another cluster's; {_RESTART}"
        )
    for p, (low, high) in sorted(marks.items()):
        offset = known.get(p, low)
        if offset < low:
            raise PositionOutOfRangeError(
                f"resume_token: expired: partition {p} of topic {topic!r} now starts at offset"
                f" {low} (retention deleted older records), so the {low - offset} records from"
                f" the token's offset {offset} on are gone; {_RESTART}"
            )
        if offset > high:
            raise PositionOutOfRangeError(
                f"resume_token: partition {p} of topic {topic!r} ends at offset {high}, before"
                f" the token's offset {offset}: the topic was recreated or the token is another"
                f" cluster's; {_RESTART}"
            )
    return {p: known.get(p, low) for p, (low, _) in marks.items()}


def _raise_if_records_lost(message: Message, topic: str) -> None:
    """Raise when the consumer could not read on from its offset (``auto.offset.reset=error``)."""
    error = message.error()
    if error is None or error.code() != KafkaError._AUTO_OFFSET_RESET:
        return
    raise PositionOutOfRangeError(
        f"partition {message.partition()} of topic {topic!r} no longer holds the offset this"
        f" stream was to read next (retention deleted records it had not read yet); {_RESTART}"
    )


class TopicSubscriptions(Generic[E]):
    """Opens subscriptions to the ``event_type`` events of one topic, a bounded number at once.

    At most ``max_subscriptions`` are open at a time; ``what`` names the events in messages
    ("anomaly", "prediction").
    """

    def __init__(
        self,
        kafka: KafkaConnection,
        topic: str,
        store: SchemaStore,
        event_type: type[E],
        *,
        what: str,
        max_subscriptions: int,
        timeout_s: float,
        checkpoint_s: float = 1.0,
        tracer: trace.Tracer | None = None,
    ) -> None:
        """Read ``topic``'s ``event_type`` events (schemas from ``store``), some readers at once."""
        self.topic = topic
        self.event_type = event_type
        self.what = what
        self._tracer = tracer
        """When set, opening a subscription (consumer, partitions, start offsets) is a span."""
        self._new_reader: Callable[[], _Reader[E]] = functools.partial(
            _Reader, kafka, topic, store, event_type, timeout_s
        )
        """A new subscription's consumer (it blocks: called on the subscription's thread)."""
        self._checkpoint_s = checkpoint_s
        self._max = max_subscriptions
        self._open = 0
        self._draining = False

    @property
    def open_subscriptions(self) -> int:
        """How many subscriptions are being served now."""
        return self._open

    def drain(self) -> None:
        """End every stream (UNAVAILABLE: clients resume elsewhere with their last token)."""
        self._draining = True

    def position_of(self, token: str) -> StreamPosition:
        """Parse a client's resume token for this topic."""
        return StreamPosition.from_token(token, self.topic)

    def _span(self) -> AbstractContextManager[object]:
        if self._tracer is None:
            return nullcontext()
        attributes = {
            "messaging.system": "kafka",
            "messaging.operation.type": "receive",
            "messaging.destination.name": self.topic,
        }
        return self._tracer.start_as_current_span(
            f"subscribe {self.topic}", kind=trace.SpanKind.CONSUMER, attributes=attributes
        )

    async def subscribe(
        self, start: StartAt, accepts: Callable[[E], bool]
    ) -> AsyncIterator[Streamed[E]]:
        """Yield the events ``accepts`` from ``start`` on, until the caller stops iterating."""
        if self._draining:
            raise BackendUnavailableError("the server is shutting down; resume on another")
        if self._open >= self._max:
            raise TooManySubscriptionsError(
                f"the server already serves {self._max} {self.what} streams; retry later"
            )
        self._open += 1
        loop = asyncio.get_running_loop()
        thread = ThreadPoolExecutor(1, thread_name_prefix=f"{self.what}-stream")
        reader: _Reader[E] | None = None
        try:
            with self._span():
                reader = await loop.run_in_executor(thread, self._new_reader)
                position = await loop.run_in_executor(thread, reader.open, start)
            yield Streamed(None, position.token())
            last_sent, moved = loop.time(), False
            while not self._draining:
                for record in await loop.run_in_executor(thread, reader.read):
                    position.advance(record.partition, record.offset)
                    moved = True
                    if record.event is not None and accepts(record.event):
                        yield Streamed(record.event, position.token())
                        last_sent, moved = loop.time(), False
                if moved and loop.time() - last_sent >= self._checkpoint_s:
                    yield Streamed(None, position.token())
                    last_sent, moved = loop.time(), False
            raise BackendUnavailableError(
                "the server is shutting down; resume with the last token on another"
            )
        finally:
            self._open -= 1
            if reader is not None:
                # Queued behind a read still running on the thread; never awaited, so that a
                # cancelled call returns at once.
                thread.submit(reader.close)
            thread.shutdown(wait=False)

"""PredictionLog events to the predictions topic, at almost no cost to the call that logs them.

It runs in the prediction log's writer process (:mod:`.writer`), which the gRPC server hands
each Predict call to once its response is written. Logging one call's rows is: encode them
column-wise (:mod:`.encoding`, ~0.15 ms for 100 rows where building
and fastavro-encoding events took ~3-10 ms on this machine),
then hand each record to librdkafka's ``produce``, which only copies it into librdkafka's queue
(~1 µs a record); batching, sending and retries happen on librdkafka's own C threads. The
general path (inline features) logs :class:`PredictionLog` objects with the fastavro serializer.

Neither happens in the call's callback: the calls' rows are gathered and handed over together
every ``hand_over_s`` (5 ms by default, librdkafka's own ``linger.ms``; at once past
``hand_over_records``), in the order logged. Logging each call as it came cost Predict's p99
0.5-4 ms at one entity on this machine (bench/RESULTS.md, predict): a ``produce`` into an idle
queue wakes librdkafka's threads, ~10-20 µs and a context switch on 2 cores, per call; gathered,
one hand-over serves all the calls of its 5 ms, and an unchanged batch's rows are encoded once
(:mod:`.encoding`). The writer process passes 0: the server has already gathered each frame's
calls for 5 ms, so a frame's calls are handed over as soon as it is read.

Complete, not best effort: every answered Predict is logged once. The producer is idempotent
(``enable.idempotence``: a retried batch is not written twice, each partition keeps its order).
Until the schema is registered (done once, on a worker thread; retried while the registry is
down) the calls' rows wait in memory; when librdkafka's queue is full (Kafka slow or away) the
records wait in a backlog that a background task hands over as the queue drains. Both are
bounded (``max_waiting`` records): past that, records are dropped and counted (``dropped``) with
a warning, rather than the server's memory growing without end. Kafka refusing a record after
its retries (``message.timeout.ms``) is counted in ``failed``; only failures are reported back
by librdkafka (``delivery.report.only.error``), so the success path runs no Python per record.

With a ``tracer`` each call's records are sent in a producer span, a child of the span of the
call that logged them, and carry that context in their Kafka headers.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka import KafkaError
from confluent_kafka import Producer
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.context import get_current

from featurestore.events import AvroSerializer
from featurestore.events import PredictionLog
from featurestore.events import SchemaStore
from featurestore.kafka_connection import KafkaConnection
from featurestore.kafka_connection import create_client
from featurestore.prediction_log.encoding import PredictionLogEncoder
from featurestore.prediction_log.encoding import PredictionRows
from featurestore.telemetry import kafka_headers

__all__ = ["PredictionLogger", "entity_key", "prediction_key"]

logger = logging.getLogger(__name__)

_MAX_WAITING = 200_000
_FLUSH_S = 5.0
_HAND_OVER_S = 0.005
_HAND_OVER_RECORDS = 5_000
_RETRY_S = (0.5, 30.0)
"""Registering the schema again: first and longest wait."""
_MAX_KEYS = 100_000

Headers = list[tuple[str, str | bytes | None]]


def entity_key(pairs: Iterable[tuple[str, object]]) -> bytes:
    """The Kafka key of an entity's predictions: ``k=v`` pairs sorted by key, comma-joined.

    One entity's predictions share a partition, so a stream of them is in the order logged.
    """
    return ",".join(f"{k}={v}" for k, v in sorted(pairs)).encode()


def prediction_key(event: PredictionLog) -> bytes:
    """The Kafka key of a logged prediction (:func:`entity_key` of its entity)."""
    return entity_key(event.entity.items())


@dataclass(frozen=True)
class _Rows:
    """A fast-path call's rows, waiting for the schema id."""

    model: tuple[str, str, tuple[str, ...]]
    rows: PredictionRows
    context: Context | None


@dataclass(frozen=True)
class _Events:
    """A general-path call's events, waiting for the schema id."""

    events: Sequence[PredictionLog]
    context: Context | None


@dataclass(frozen=True)
class _Ready:
    producer: Producer
    serializer: AvroSerializer[PredictionLog]


async def _until_done(task: asyncio.Task[None] | None, deadline: float) -> None:
    """Wait for ``task`` until the loop's clock reads ``deadline`` (it goes on after)."""
    if task is not None and not task.done():
        timeout = max(0.0, deadline - asyncio.get_running_loop().time())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), timeout)


class PredictionLogger:
    """Logs predictions to ``topic`` without making a caller wait (module docstring)."""

    def __init__(
        self,
        kafka: KafkaConnection,
        topic: str,
        store: SchemaStore,
        *,
        tracer: trace.Tracer | None = None,
        max_waiting: int = _MAX_WAITING,
        queue_records: int = 500_000,
        hand_over_s: float = _HAND_OVER_S,
        hand_over_records: int = _HAND_OVER_RECORDS,
    ) -> None:
        """Log to ``topic`` of ``kafka`` (schema registered in ``store``).

        ``queue_records``: librdkafka's queue (``queue.buffering.max.messages``); past it the
        backlog holds them. With ingest's 500,000 (~150 MB of records at most) the queue and the
        backlog ride out ~5 s of a broker that takes nothing at 130,000 records/s (Predict at 100
        entities on this machine); with 100,000 a 2.4 s stall of the local broker (its metadata
        log's fsync behind the page cache's writeback) dropped 205,000 records in one bench run.
        """
        self.topic = topic
        self._tracer = tracer
        self._store = store
        self._max_waiting = max_waiting
        self._config = kafka.producer(**{
            "linger.ms": 5,
            # Uncompressed, the 130,000 records/s of Predict at 100 entities outran the broker
            # on 2 cores: librdkafka's queue and the backlog filled and ~388,000 records were
            # dropped in one bench run. With lz4 none were, and the broker used 40 % less CPU
            # (bench/RESULTS.md, predict, 2026-12-04 18:23-18:42 UTC).
            "compression.type": "lz4",
            "enable.idempotence": True,
            "queue.buffering.max.messages": queue_records,
            "message.timeout.ms": 30_000,
            "delivery.report.only.error": True,
            "on_delivery": self._delivered,
        })  # fmt: skip
        self._ready: _Ready | None = None
        self._hand_over_s = hand_over_s
        self._hand_over_records = hand_over_records
        self._gathered: list[_Rows | _Events] = []
        self._gathered_records = 0
        self._hand_over_at: asyncio.TimerHandle | None = None
        self._opening: asyncio.Task[None] | None = None
        self._waiting: list[_Rows | _Events] = []
        self._waiting_records = 0
        self._backlog: collections.deque[tuple[bytes, bytes, Headers | None]] = collections.deque()
        self._draining: asyncio.Task[None] | None = None
        self._encoders: dict[tuple[str, str, tuple[str, ...]], PredictionLogEncoder] = {}
        self._keys: dict[tuple[tuple[str, ...], tuple[object, ...]], bytes] = {}
        self._queued = 0
        self._undelivered = 0
        self._unencodable = 0
        self.dropped = 0
        """Records dropped because too many were waiting (Kafka or the registry away)."""

    @property
    def failed(self) -> int:
        """Records Kafka did not take after its retries, or that could not be encoded."""
        return self._undelivered + self._unencodable

    @property
    def sent(self) -> int:
        """Records acknowledged by Kafka."""
        in_flight = 0 if self._ready is None else len(self._ready.producer)
        return self._queued - self._undelivered - in_flight

    def log_rows(
        self,
        model_name: str,
        model_version: str,
        features: tuple[str, ...],
        rows: PredictionRows,
        context: Context | None = None,
    ) -> None:
        """Log one call's predictions, a row each (Predict's fast path); never blocks.

        ``context``: the trace context of the call (default: the current one).
        """
        if self._tracer is None:
            context = None
        elif context is None:
            context = get_current()
        model = (model_name, model_version, features)
        item = _Rows(model, rows, context)
        if self._ready is None:
            self._wait(item, len(rows.request_ids))
            return
        self._gather(item, len(rows.request_ids))

    def log(self, events: Sequence[PredictionLog], context: Context | None = None) -> None:
        """Log predictions given as events (Predict's general path); never blocks.

        ``context``: the trace context of the call (default: the current one).
        """
        if self._tracer is None:
            context = None
        elif context is None:
            context = get_current()
        item = _Events(events, context)
        if self._ready is None:
            self._wait(item, len(events))
            return
        self._gather(item, len(events))

    def _gather(self, item: _Rows | _Events, records: int) -> None:
        """Keep a call's records for the next hand-over (see the module docstring)."""
        self._gathered.append(item)
        self._gathered_records += records
        if self._gathered_records >= self._hand_over_records:
            self._hand_over()
        elif self._hand_over_at is None:
            loop = asyncio.get_running_loop()
            self._hand_over_at = loop.call_later(self._hand_over_s, self._hand_over)

    def _hand_over(self) -> None:
        """Encode the gathered calls' records and hand them to librdkafka, in order."""
        if self._hand_over_at is not None:
            self._hand_over_at.cancel()
            self._hand_over_at = None
        gathered, self._gathered, self._gathered_records = self._gathered, [], 0
        ready = self._ready
        assert ready is not None or not gathered
        for item in gathered:
            assert ready is not None
            try:
                if isinstance(item, _Rows):
                    self._write_rows(ready, item.model, item.rows, item.context)
                else:
                    self._write_events(ready, item.events, item.context)
            except Exception:  # one call's records must not cost the others theirs
                logger.exception("prediction log: a call's records not logged")

    def _wait(self, item: _Rows | _Events, records: int) -> None:
        if self._opening is None:
            self._opening = asyncio.get_running_loop().create_task(self._open())
        if self._waiting_records + self._backlog_size() + records > self._max_waiting:
            self._drop(records)
            return
        self._waiting.append(item)
        self._waiting_records += records

    def _drop(self, records: int) -> None:
        self.dropped += records
        logger.warning("prediction log: %d records waiting already; dropped %d", len(self), records)

    def __len__(self) -> int:
        """Records not yet handed to librdkafka (waiting: schema, hand-over, or backlog)."""
        return self._waiting_records + self._gathered_records + self._backlog_size()

    def _backlog_size(self) -> int:
        return len(self._backlog)

    async def _open(self) -> None:
        """Register the schema and start the producer (retried), then write what waited."""
        wait = _RETRY_S[0]
        while True:
            try:
                self._ready = await asyncio.to_thread(self._connect)
                break
            except Exception as exc:  # the registry may be away: keep the rows, try again
                logger.warning(
                    "prediction log: cannot register its schema (%s); %d records waiting, "
                    "again in %.1f s",
                    exc,
                    self._waiting_records,
                    wait,
                )
                await asyncio.sleep(wait)
                wait = min(2 * wait, _RETRY_S[1])
        waiting, self._waiting, self._waiting_records = self._waiting, [], 0
        for item in waiting:
            if isinstance(item, _Rows):
                self._write_rows(self._ready, item.model, item.rows, item.context)
            else:
                self._write_events(self._ready, item.events, item.context)

    def _connect(self) -> _Ready:
        serializer = AvroSerializer.for_topic(self._store, self.topic, PredictionLog)
        return _Ready(create_client(Producer, self._config), serializer)

    def _write_rows(
        self,
        ready: _Ready,
        model: tuple[str, str, tuple[str, ...]],
        rows: PredictionRows,
        context: Context | None,
    ) -> None:
        encoder = self._encoders.get(model)
        if encoder is None:
            encoder = self._encoders[model] = PredictionLogEncoder(
                ready.serializer.schema_id, *model
            )
        try:
            values = encoder.encode(rows)
        except ValueError as exc:  # rows that do not fit the model: a bug to say, not to raise
            self._unencodable += len(rows.request_ids)
            logger.error("prediction log: %d rows not encoded: %s", len(rows.request_ids), exc)
            return
        keys = self._entity_keys(rows.join_keys, rows.entity_values)
        self._send(ready, values, keys, context)

    def _entity_keys(
        self, join_keys: tuple[str, ...], entities: Sequence[tuple[object, ...]]
    ) -> list[bytes]:
        cache = self._keys
        if len(cache) > _MAX_KEYS:
            cache.clear()
        out = []
        for values in entities:
            key = cache.get((join_keys, values))
            if key is None:
                key = cache[(join_keys, values)] = entity_key(zip(join_keys, values, strict=True))
            out.append(key)
        return out

    def _write_events(
        self, ready: _Ready, events: Sequence[PredictionLog], context: Context | None
    ) -> None:
        values = []
        for event in events:
            try:
                values.append(ready.serializer.encode(event))
            except ValueError as exc:  # SerializationError: an event that does not fit
                self._unencodable += len(events)
                logger.error("prediction log: %d events not encoded: %s", len(events), exc)
                return
        self._send(ready, values, [prediction_key(e) for e in events], context)

    def _send(
        self, ready: _Ready, values: list[bytes], keys: list[bytes], context: Context | None
    ) -> None:
        if self._tracer is None or context is None:
            self._produce(ready.producer, values, keys, None)
            return
        attributes: dict[str, str | int] = {
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.destination.name": self.topic,
            "messaging.batch.message_count": len(values),
        }
        with self._tracer.start_as_current_span(
            f"send {self.topic}",
            context=context,
            kind=trace.SpanKind.PRODUCER,
            attributes=attributes,
        ):
            self._produce(ready.producer, values, keys, kafka_headers())

    def _produce(
        self, producer: Producer, values: list[bytes], keys: list[bytes], headers: Headers | None
    ) -> None:
        """Hand the records to librdkafka; what its full queue refuses waits in the backlog."""
        topic = self.topic
        produce = producer.produce
        start, end = 0, len(values)
        if not self._backlog:  # else these wait behind it: one entity's records stay in order
            try:
                while start < end:
                    produce(topic, values[start], keys[start], headers=headers)
                    start += 1
            except BufferError:
                pass
            self._queued += start
            producer.poll(0)  # serves failures' reports; nothing to do for the delivered
        if start < end:
            if end - start > self._max_waiting - len(self):
                self._drop(end - start)
                return
            self._backlog.extend((values[i], keys[i], headers) for i in range(start, end))
            if self._draining is None or self._draining.done():
                self._draining = asyncio.get_running_loop().create_task(self._drain(producer))

    async def _drain(self, producer: Producer) -> None:
        """Hand the backlog to librdkafka as its queue makes room."""
        backlog = self._backlog
        while backlog:
            await asyncio.to_thread(producer.poll, 0.05)
            while backlog:
                value, key, headers = backlog[0]
                try:
                    producer.produce(self.topic, value, key, headers=headers)
                except BufferError:
                    break
                backlog.popleft()
                self._queued += 1

    def _delivered(self, error: KafkaError | None, _message: object) -> None:
        if error is not None:
            self._undelivered += 1
            logger.warning("prediction log record not delivered: %s", error.str())

    async def flush(self, timeout_s: float = _FLUSH_S) -> int:
        """Wait until logged records are acknowledged (bounded); returns those left."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        self._hand_over()
        await _until_done(self._opening, deadline)
        # Read only now: writing the rows that waited for the schema may have started it.
        await _until_done(self._draining, deadline)
        if self._ready is None:
            return len(self)
        left: int = await asyncio.to_thread(
            self._ready.producer.flush, max(0.0, deadline - loop.time())
        )
        return left + len(self)

    async def close(self) -> None:
        """Flush (bounded), then stop the background tasks."""
        left = await self.flush()
        if left:
            logger.warning("%d prediction log records not delivered at shutdown", left)
        for task in (self._opening, self._draining):
            if task is not None:
                task.cancel()
        if self._hand_over_at is not None:
            self._hand_over_at.cancel()

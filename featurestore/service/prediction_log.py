"""PredictionLog events to the predictions topic, off the RPC path.

:meth:`PredictionLogger.log` only appends to a bounded in-memory queue and returns; a background
task encodes the events (Avro, Confluent wire format, schema registered once) and hands them to
confluent-kafka's producer on a worker thread. When Kafka is slow or away the queue fills up and
further events are dropped and counted (``dropped``) rather than slowing Predict down: the
prediction has been served already, and the log is best effort by design. Delivery failures are
counted in ``failed``. On close the queue is drained and the producer flushed (bounded).

With a ``tracer`` each batch is sent in a producer span, a child of the span of the call that
logged it (its context travels with the batch through the queue), and every record carries that
context in its Kafka headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka import KafkaError, Message, Producer
from opentelemetry import trace
from opentelemetry.context import Context, get_current

from featurestore.events import AvroSerializer, PredictionLog, SchemaStore
from featurestore.kafka_connection import KafkaConnection
from featurestore.telemetry import kafka_headers

__all__ = ["PredictionLogger", "prediction_key"]

logger = logging.getLogger(__name__)


def prediction_key(event: PredictionLog) -> bytes:
    """The Kafka key of a prediction: its entity, ``k=v`` pairs sorted by key.

    One entity's predictions share a partition, so a stream of them is in the order logged.
    """
    return ",".join(f"{k}={v}" for k, v in sorted(event.entity.items())).encode()


@dataclass(frozen=True)
class _Batch:
    events: Sequence[PredictionLog]
    context: Context | None
    """The trace context of the call that logged the events, when tracing."""


_QUEUE_BATCHES = 1000
_FLUSH_S = 5.0


class PredictionLogger:
    """Logs predictions to ``topic`` without ever making a caller wait."""

    def __init__(
        self,
        kafka: KafkaConnection,
        topic: str,
        store: SchemaStore,
        *,
        tracer: trace.Tracer | None = None,
    ) -> None:
        """Log to ``topic`` of ``kafka`` (schemas registered in ``store``)."""
        self.topic = topic
        self._tracer = tracer
        self._store = store
        self._config = kafka.producer(**{
            "linger.ms": 5,
            "queue.buffering.max.messages": 100_000,
            "message.timeout.ms": 30_000,
        })  # fmt: skip
        self._producer: Producer | None = None
        self._serializer: AvroSerializer[PredictionLog] | None = None
        self._queue: asyncio.Queue[_Batch] = asyncio.Queue(_QUEUE_BATCHES)
        self._task: asyncio.Task[None] | None = None
        self.sent = 0
        """Events acknowledged by Kafka."""
        self.failed = 0
        """Events Kafka did not take (or that could not be encoded)."""
        self.dropped = 0
        """Events dropped because the queue was full."""

    def log(self, events: Sequence[PredictionLog]) -> None:
        """Queue events for the log; never blocks."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        try:
            self._queue.put_nowait(_Batch(events, None if self._tracer is None else get_current()))
        except asyncio.QueueFull:
            self.dropped += len(events)
            logger.warning("prediction log queue full: dropped %d events", len(events))

    async def _run(self) -> None:
        while True:
            batch = await self._queue.get()
            try:
                if self._tracer is None or batch.context is None:
                    await asyncio.to_thread(self._produce, batch.events, [])
                else:
                    await asyncio.to_thread(self._produce_traced, self._tracer, batch)
            except Exception:  # the log never takes the server down; say why it lost events
                self.failed += len(batch.events)
                logger.exception("could not log %d predictions", len(batch.events))
            finally:
                self._queue.task_done()

    def _produce_traced(self, tracer: trace.Tracer, batch: _Batch) -> None:
        attributes: dict[str, str | int] = {
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.destination.name": self.topic,
            "messaging.batch.message_count": len(batch.events),
        }
        with tracer.start_as_current_span(
            f"send {self.topic}",
            context=batch.context,
            kind=trace.SpanKind.PRODUCER,
            attributes=attributes,
        ):
            self._produce(batch.events, kafka_headers())

    def _produce(
        self, events: Sequence[PredictionLog], headers: list[tuple[str, str | bytes | None]]
    ) -> None:
        if self._producer is None:
            self._producer = Producer(self._config)
        producer = self._producer
        if self._serializer is None:
            self._serializer = AvroSerializer.for_topic(self._store, self.topic, PredictionLog)
        for event in events:
            value = self._serializer.encode(event)
            key = prediction_key(event)
            while True:
                try:
                    producer.produce(
                        self.topic, value, key, headers=headers, on_delivery=self._delivered
                    )
                    break
                except BufferError:
                    producer.poll(0.05)
        producer.poll(0)

    def _delivered(self, error: KafkaError | None, message: Message) -> None:
        if error is None:
            self.sent += 1
        else:
            self.failed += 1
            logger.warning("prediction log event not delivered: %s", error.str())

    async def flush(self, timeout_s: float = _FLUSH_S) -> int:
        """Wait until queued events are handed to Kafka and acknowledged; returns those left."""
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), timeout_s)
        if self._producer is None:
            return 0
        left: int = await asyncio.to_thread(self._producer.flush, timeout_s)
        return left

    async def close(self) -> None:
        """Flush (bounded), then stop the background task."""
        left = await self.flush()
        if left:
            logger.warning("%d prediction log events not delivered at shutdown", left)
        if self._task is not None:
            self._task.cancel()

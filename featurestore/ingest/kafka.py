"""Kafka plumbing for ingest: the idempotent producer, waiting for brokers, creating topics.

Errors of confluent-kafka are translated here: an unreachable broker becomes
:class:`~featurestore.errors.BackendUnavailableError` (retryable) with a message that names
the bootstrap servers; a record that could not be delivered is counted and surfaced in
:class:`DeliveryReport`, never swallowed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from confluent_kafka import KafkaError
from confluent_kafka import KafkaException
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from featurestore.error_maps import kafka_error
from featurestore.errors import BackendUnavailableError
from featurestore.errors import ConfigurationError
from featurestore.ingest.metrics import LATENCY_SAMPLE
from featurestore.kafka_connection import KafkaConnection
from featurestore.kafka_connection import create_client

__all__ = [
    "DeliveryReport",
    "EventProducer",
    "producer_config",
    "wait_for_brokers",
]

logger = logging.getLogger(__name__)

Headers = list[tuple[str, str | bytes | None]]


def producer_config(kafka: KafkaConnection, *, delivery_timeout_s: float = 120.0) -> dict[str, Any]:
    """Return the settings of an idempotent producer tuned for throughput.

    ``acks=all`` with idempotence keeps each partition's order across retries, so one symbol's
    trades stay ordered; batching (``linger.ms``, ``batch.size``, lz4) trades a few ms of latency
    for throughput. librdkafka retries transient errors (a broker away) by itself until
    ``delivery.timeout.ms``, after which the record's delivery fails and is reported.

    A keyed record goes to the partition Java's producer would choose (``murmur2_random``:
    murmur2 of the key, as Java's default partitioner; librdkafka's own default hashes with
    CRC32), so one entity's events share a partition whichever client wrote them. Unkeyed
    records go to a random partition.
    """
    return kafka.producer(**{
        "partitioner": "murmur2_random",
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 20,
        "batch.size": 1_000_000,
        "batch.num.messages": 10_000,
        "compression.type": "lz4",
        "queue.buffering.max.messages": 500_000,
        "delivery.timeout.ms": int(delivery_timeout_s * 1000),
        "retry.backoff.ms": 200,
        "retry.backoff.max.ms": 5_000,
        "reconnect.backoff.ms": 200,
        "reconnect.backoff.max.ms": 5_000,
        "socket.connection.setup.timeout.ms": 10_000,
    })  # fmt: skip


def wait_for_brokers(
    kafka: KafkaConnection,
    *,
    timeout_s: float = 60.0,
    on_wait: Callable[[str], None] | None = None,
) -> AdminClient:
    """Return an admin client once the cluster answers, retrying with backoff until timeout.

    Args:
        kafka: the cluster and how to authenticate.
        timeout_s: how long to keep trying.
        on_wait: called with a human message before each wait (the CLI prints it); without
            it the message is logged as a warning.

    Raises:
        BackendUnavailableError: no broker answered within ``timeout_s``.
        ConfigurationError: the brokers refused the credentials or the certificate (a retry
            cannot help).
    """
    refused: list[str] = []

    def on_error(error: KafkaError) -> None:
        if kafka.refusal(error.str()) is not None:
            refused.append(error.str())

    # librdkafka's own per-connection errors are quietened: this loop reports the wait itself.
    admin = create_client(
        AdminClient,
        kafka.admin(**{"reconnect.backoff.max.ms": 2_000, "log_level": 2, "error_cb": on_error}),
    )
    deadline = time.monotonic() + timeout_s
    delay = 0.5
    attempt = 0
    while True:
        attempt += 1
        remaining = deadline - time.monotonic()
        try:
            admin.list_topics(timeout=max(0.5, min(2.0, remaining)))
            return admin
        except KafkaException as exc:
            admin.poll(0)  # serves error_cb
            if refused:
                raise kafka.refusal(refused[-1]) or ConfigurationError(refused[-1]) from exc
            if time.monotonic() + delay >= deadline:
                raise BackendUnavailableError(
                    f"{kafka.describe()} did not answer within {timeout_s:.0f} s"
                    f" ({attempt} attempts): {exc.args[0]}"
                ) from exc
            message = f"{kafka.describe()} is not reachable (attempt {attempt}); retrying"
            if on_wait is not None:
                on_wait(message)  # the caller reports it (the CLI prints it): once, not twice
            else:
                logger.warning(message)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


@dataclass
class DeliveryReport:
    """What the broker acknowledged, per topic, and what it did not."""

    delivered: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    """The first delivery errors, verbatim (at most 20 kept)."""

    def count(self, topic: str) -> int:
        """Return how many records of ``topic`` were acknowledged."""
        return self.delivered.get(topic, 0)

    @property
    def total_failed(self) -> int:
        """Return how many records failed delivery, all topics together."""
        return sum(self.failed.values())


class EventProducer:
    """An idempotent producer that counts acknowledgements and keeps delivery errors."""

    def __init__(self, config: dict[str, Any]) -> None:
        """Create the producer from :func:`producer_config` settings."""
        self.report = DeliveryReport()
        self._broker_down = False
        self.on_latency: Callable[[float], None] | None = None
        """Called with the produce latency of one acknowledged record in :data:`LATENCY_SAMPLE`."""
        self._acknowledged = 0
        self._produced = 0
        self._closed = False
        self._producer = create_client(Producer, {**config, "error_cb": self._on_error})

    def _on_error(self, error: KafkaError) -> None:
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            if not self._broker_down:
                logger.warning("all Kafka brokers are down; records are buffered and retried")
            self._broker_down = True
        elif error.fatal():
            logger.error("fatal producer error: %s", error.str())
            self.report.errors.append(f"fatal: {error.str()}")
        else:
            logger.debug("producer: %s", error.str())

    def _on_delivery(self, error: KafkaError | None, message: Any) -> None:
        topic = message.topic()
        if error is None:
            self.report.delivered[topic] = self.report.delivered.get(topic, 0) + 1
            self._broker_down = False
            self._acknowledged += 1
            if self.on_latency is not None and self._acknowledged % LATENCY_SAMPLE == 1:
                latency = message.latency()
                if latency is not None:
                    self.on_latency(latency)
            return
        self.report.failed[topic] = self.report.failed.get(topic, 0) + 1
        if len(self.report.errors) < 20:
            self.report.errors.append(f"{topic}: {error.str()}")

    def produce(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None = None,
        headers: Headers | None = None,
        timestamp_ms: int = 0,
    ) -> None:
        """Queue one record; when the local queue is full, serve deliveries and try again."""
        while True:
            try:
                self._producer.produce(
                    topic,
                    value,
                    key,
                    on_delivery=self._on_delivery,
                    headers=headers,
                    timestamp=timestamp_ms,
                )
                self._produced += 1
                return
            except BufferError:
                self._producer.poll(0.05)
            except KafkaException as exc:
                raise kafka_error(exc, f"producing to {topic}") from exc

    def poll(self, timeout_s: float = 0.0) -> None:
        """Serve delivery callbacks, waiting up to ``timeout_s``."""
        self._producer.poll(timeout_s)

    def flush(self, timeout_s: float) -> int:
        """Wait until every queued record is delivered or failed; return how many are left."""
        deadline = time.monotonic() + timeout_s
        left = len(self._producer)
        while left and time.monotonic() < deadline:
            left = self._producer.flush(min(1.0, max(0.0, deadline - time.monotonic())))
        return int(left)

    def close(self, timeout_s: float) -> int:
        """Flush for up to ``timeout_s``, then release the client; return how many were left.

        Records still queued then are purged (each counted failed in :attr:`report`), so that
        closing never waits out the delivery timeout on a broker that is away. Until it is
        closed, the client's threads and broker connections live on, however long it takes the
        garbage collector to find it: its callbacks and it refer to each other.
        """
        if self._closed:
            return 0
        left = 0
        if self.flush(timeout_s):
            # Records, not the client's queue length: librdkafka's also counts the callbacks
            # waiting to be served (an error_cb of the broker that is away), which are not.
            left = self._produced - self._acknowledged - self.report.total_failed
            self._producer.purge()
            self._producer.flush(0)  # serves the purged records' delivery reports
        self._closed = True
        self._producer.close()
        return left

"""The registry's log in a compacted Kafka topic.

One partition keeps a total order; ``cleanup.policy=compact`` keeps the latest record per key,
which is all a replay needs. Writes go through an idempotent producer with ``acks=all`` and are
flushed before the registry applies them, so nothing is served that is not durable.

Single writer: exactly one registry process may write a given topic. It reads the topic once at
start-up and from then on trusts its own writes; a second writer's records would only be seen
after a restart.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator, Sequence

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from featurestore.errors import FeatureStoreError
from featurestore.schema_registry.errors import StoreError, StoreTimeoutError
from featurestore.schema_registry.records import LogRecord, decode_record, encode_record
from featurestore.topics import TopicSpec, ensure_topics

__all__ = ["KafkaRecordLog"]

_log = logging.getLogger(__name__)


class KafkaRecordLog:
    """A :class:`~featurestore.schema_registry.log.RecordLog` in one compacted Kafka topic."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        replication_factor: int | None = None,
        min_insync_replicas: int | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        """Prepare clients; nothing connects until the first call.

        Args:
            bootstrap: Kafka bootstrap servers.
            topic: The registry's topic (``settings.topics.schemas``).
            replication_factor: Replicas of the topic when this log creates it
                (``settings.kafka.replication_factor``; None: the smaller of 3 and the brokers).
            min_insync_replicas: Its ``min.insync.replicas`` (None: the factor less one, at
                least 1), so that an acknowledged write survives the loss of a broker.
            timeout_s: How long a write, a read or the topic creation may take.
        """
        self._bootstrap = bootstrap
        self._topic = topic
        self._replication_factor = replication_factor
        self._min_insync_replicas = min_insync_replicas
        self._timeout_s = timeout_s
        self._producer: Producer | None = None

    @property
    def topic(self) -> str:
        """The topic this log lives in."""
        return self._topic

    def ensure_topic(self) -> None:
        """Create the topic (1 partition, compacted, replicated as configured) unless it exists.

        Raises:
            StoreError: Kafka is unreachable or refused, or the replication does not fit it.
        """
        admin = AdminClient({"bootstrap.servers": self._bootstrap})
        spec = TopicSpec(self._topic, 1, {"cleanup.policy": "compact"})
        try:
            created = ensure_topics(
                admin,
                [spec],
                replication_factor=self._replication_factor,
                min_insync_replicas=self._min_insync_replicas,
                timeout_s=self._timeout_s,
            )
        except FeatureStoreError as exc:
            raise StoreError(f"Cannot create topic {self._topic}: {exc}") from exc
        except Exception as exc:  # a concurrent.futures timeout
            raise StoreError(f"Cannot create topic {self._topic}: {exc!r}") from exc
        if created:
            _log.info("created schema log topic %s", self._topic)

    def read_all(self) -> Iterator[LogRecord]:
        """Every record from offset 0 up to the end offset observed when reading starts.

        Raises:
            StoreError: Kafka is unreachable or the end is not reached in time.
        """
        consumer = Consumer(
            {
                "bootstrap.servers": self._bootstrap,
                "group.id": f"schema-registry-loader-{uuid.uuid4()}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "isolation.level": "read_committed",
            }
        )
        try:
            partition = TopicPartition(self._topic, 0)
            try:
                low, high = consumer.get_watermark_offsets(partition, timeout=self._timeout_s)
            except KafkaException as exc:
                raise StoreError(f"Cannot read topic {self._topic}: {exc}") from exc
            if high is None or low is None or high <= low:
                return
            consumer.assign([TopicPartition(self._topic, 0, OFFSET_BEGINNING)])
            deadline = time.monotonic() + self._timeout_s
            while time.monotonic() < deadline:
                message = consumer.poll(0.5)
                if message is None:
                    continue
                error = message.error()
                offset = message.offset() or 0
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        if offset >= high:
                            return
                        continue
                    raise StoreError(f"Cannot read topic {self._topic}: {error}")
                record = decode_record(message.key() or b"", message.value())
                if record is not None:
                    yield record
                if offset >= high - 1:
                    return
            raise StoreTimeoutError(
                f"Did not reach the end ({high}) of topic {self._topic} in {self._timeout_s}s"
            )
        finally:
            consumer.close()

    def append(self, records: Sequence[LogRecord]) -> None:
        """Produce the records in order and wait until all are acknowledged by all replicas.

        Raises:
            StoreError: A record was refused.
            StoreTimeoutError: Not all were acknowledged in time; they may still land.
        """
        producer = self._get_producer()
        failures: list[str] = []

        def on_delivery(error: KafkaError | None, _message: object) -> None:
            if error is not None:
                failures.append(str(error))

        try:
            for record in records:
                key, value = encode_record(record)
                producer.produce(self._topic, key=key, value=value, on_delivery=on_delivery)
        except (KafkaException, BufferError) as exc:
            raise StoreError(f"Cannot write to topic {self._topic}: {exc}") from exc
        remaining = producer.flush(self._timeout_s)
        if failures:
            raise StoreError(f"Cannot write to topic {self._topic}: {'; '.join(failures)}")
        if remaining:
            raise StoreTimeoutError(
                f"{remaining} record(s) not acknowledged by {self._topic} in {self._timeout_s}s"
            )

    def _get_producer(self) -> Producer:
        if self._producer is None:
            self._producer = Producer(
                {
                    "bootstrap.servers": self._bootstrap,
                    "acks": "all",
                    "enable.idempotence": True,
                    "linger.ms": 0,
                }
            )
        return self._producer

    def close(self) -> None:
        """Flush and drop the producer."""
        if self._producer is not None:
            self._producer.flush(self._timeout_s)
            self._producer = None

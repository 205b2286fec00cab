"""Publishing anomalies to the anomalies topic, and the processors' rolling-row hook.

Events are Avro in the Confluent wire format (the store's serde, schema registered under
``<topic>-value``), keyed by symbol so that one symbol's anomalies stay ordered, with the Kafka
timestamp set to the scored row's event time.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from featurestore.config import Settings
from featurestore.errors import BackendUnavailableError
from featurestore.events import (
    Anomaly,
    AvroSerializer,
    ConfluentSchemaStore,
    SchemaStore,
    to_micros,
)
from featurestore.ingest.kafka import EventProducer, producer_config
from featurestore.kafka_connection import KafkaConnection
from models.scoring import AnomalyScorer

__all__ = ["AnomalyPublisher", "ScoringHook"]


class AnomalyPublisher:
    """Sends :class:`Anomaly` events to one topic."""

    def __init__(self, kafka: KafkaConnection, store: SchemaStore, topic: str) -> None:
        self.topic = topic
        self._serializer = AvroSerializer.for_topic(store, topic, Anomaly)
        # A broker away for minutes is waited out: flush() is called again, nothing re-sent.
        self._producer = EventProducer(producer_config(kafka, delivery_timeout_s=600.0))
        self._failed_before = 0

    @classmethod
    def from_settings(cls, settings: Settings, topic: str | None = None) -> AnomalyPublisher:
        """A publisher to ``settings.topics.anomalies`` (or ``topic``)."""
        store = ConfluentSchemaStore.from_settings(settings.schema_registry)
        return cls(settings.kafka.connection, store, topic or settings.topics.anomalies)

    def publish(self, anomalies: Iterable[Anomaly]) -> int:
        """Queue the events (delivery is asynchronous; :meth:`flush` waits). Returns the count."""
        count = 0
        for anomaly in anomalies:
            self._producer.produce(
                self.topic,
                self._serializer.encode(anomaly),
                key=anomaly.symbol.encode(),
                timestamp_ms=to_micros(anomaly.event_time) // 1000,
            )
            count += 1
        self._producer.poll(0)
        return count

    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait until every queued event is acknowledged.

        Raises:
            BackendUnavailableError: events are still undelivered after ``timeout_s``, or some
                failed.
        """
        left = self._producer.flush(timeout_s)
        report = self._producer.report
        failed = report.total_failed - self._failed_before
        self._failed_before = report.total_failed  # each failure is reported once
        if left or failed:
            raise BackendUnavailableError(
                f"{left} anomalies undelivered and {failed} failed on "
                f"{self.topic}: {'; '.join(report.errors[:3])}"
            )

    @property
    def delivered(self) -> int:
        """Events the broker acknowledged so far."""
        return self._producer.report.count(self.topic)


class ScoringHook:
    """The processors' rolling-row hook: score each batch's new rows and publish the anomalies.

    ``start_stream(settings, options, hooks=[ScoringHook(scorer, publisher)],
    hook_view=models.scoring.ROW_VIEW)``.
    """

    def __init__(self, scorer: AnomalyScorer, publisher: AnomalyPublisher) -> None:
        self.scorer = scorer
        self.publisher = publisher

    def __call__(self, rows: pd.DataFrame) -> None:
        """Score, publish, and wait for delivery (a failed batch is replayed by Spark)."""
        if rows.empty:
            return
        if self.publisher.publish(self.scorer.score_rows(rows)):
            self.publisher.flush()

"""Publishing model outputs (anomalies, predictions) to their topics; the processors' row hook.

Events are Avro in the Confluent wire format (the store's serde, schema registered under
``<topic>-value``). Anomalies are keyed by symbol so that one symbol's anomalies stay ordered,
with the Kafka timestamp set to the scored row's event time; predictions are keyed by entity as
Predict's log keys them, stamped when published (the time StreamPredictions' start_time means).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from typing import Generic
from typing import TypeVar

import pandas as pd

from featurestore.config import Settings
from featurestore.errors import BackendUnavailableError
from featurestore.events import Anomaly
from featurestore.events import AvroSerializer
from featurestore.events import ConfluentSchemaStore
from featurestore.events import PredictionLog
from featurestore.events import SchemaStore
from featurestore.events import to_micros
from featurestore.ingest.kafka import EventProducer
from featurestore.ingest.kafka import producer_config
from featurestore.kafka_connection import KafkaConnection
from featurestore.prediction_log import prediction_key
from models.scoring import AnomalyScorer

__all__ = ["AnomalyPublisher", "EventPublisher", "PredictionPublisher", "ScoringHook"]

E = TypeVar("E", Anomaly, PredictionLog)


class EventPublisher(Generic[E]):
    """Sends events of one type to one topic.

    Each record's key is ``key(event)``; its Kafka timestamp ``timestamp_ms(event)`` when given,
    else the time it is produced.
    """

    what = "events"
    """What the events are called in error messages."""

    def __init__(
        self,
        kafka: KafkaConnection,
        store: SchemaStore,
        topic: str,
        event_type: type[E],
        key: Callable[[E], bytes],
        timestamp_ms: Callable[[E], int] | None = None,
    ) -> None:
        """Register ``event_type``'s schema for ``topic`` and open the producer.

        The producer's delivery timeout is 10 minutes: a broker away for minutes is waited out
        by calling :meth:`flush` again, without sending anything twice.
        """
        self.topic = topic
        self._serializer: AvroSerializer[E] = AvroSerializer.for_topic(store, topic, event_type)
        self._key: Callable[[E], bytes] = key
        self._timestamp_ms: Callable[[E], int] | None = timestamp_ms
        self._producer = EventProducer(producer_config(kafka, delivery_timeout_s=600.0))
        self._failed_before = 0

    def publish(self, events: Iterable[E]) -> int:
        """Queue the events (delivery is asynchronous; :meth:`flush` waits). Returns the count."""
        count = 0
        for event in events:
            self._producer.produce(
                self.topic,
                self._serializer.encode(event),
                key=self._key(event),
                timestamp_ms=0 if self._timestamp_ms is None else self._timestamp_ms(event),
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
                f"{left} {self.what} undelivered and {failed} failed on "
                f"{self.topic}: {'; '.join(report.errors[:3])}"
            )

    @property
    def delivered(self) -> int:
        """Events the broker acknowledged so far."""
        return self._producer.report.count(self.topic)

    def close(self, timeout_s: float = 10.0) -> None:
        """Release the producer, after waiting up to ``timeout_s`` for what it still holds."""
        self._producer.close(timeout_s)


class PredictionPublisher(EventPublisher[PredictionLog]):
    """Sends :class:`PredictionLog` events (the prediction feed's) to the predictions topic."""

    what = "predictions"

    def __init__(self, kafka: KafkaConnection, store: SchemaStore, topic: str) -> None:
        """Keyed as Predict's own log is (:func:`prediction_key`).

        A reader of the topic (StreamPredictions, the recorder) treats the feed's records and
        Predict's alike.
        """
        super().__init__(kafka, store, topic, PredictionLog, prediction_key)

    @classmethod
    def from_settings(cls, settings: Settings, topic: str | None = None) -> PredictionPublisher:
        """A publisher to ``settings.topics.predictions`` (or ``topic``)."""
        with ConfluentSchemaStore.from_settings(settings.schema_registry) as store:
            return cls(settings.kafka.connection, store, topic or settings.topics.predictions)


class AnomalyPublisher(EventPublisher[Anomaly]):
    """Sends :class:`Anomaly` events to one topic."""

    what = "anomalies"

    def __init__(self, kafka: KafkaConnection, store: SchemaStore, topic: str) -> None:
        """Keyed by symbol, stamped with the anomaly's event time.

        One partition per symbol keeps a symbol's anomalies in order, and the event time as the
        record's timestamp lets StreamAnomalies start from a time.
        """
        super().__init__(
            kafka,
            store,
            topic,
            Anomaly,
            lambda anomaly: anomaly.symbol.encode(),
            lambda anomaly: to_micros(anomaly.event_time) // 1000,
        )

    @classmethod
    def from_settings(cls, settings: Settings, topic: str | None = None) -> AnomalyPublisher:
        """A publisher to ``settings.topics.anomalies`` (or ``topic``)."""
        with ConfluentSchemaStore.from_settings(settings.schema_registry) as store:
            return cls(settings.kafka.connection, store, topic or settings.topics.anomalies)


class ScoringHook:
    """The processors' rolling-row hook: score each batch's new rows and publish the anomalies.

    ``start_processor(settings, options, ProcessorWiring(hooks=[ScoringHook(scorer, publisher)],
    hook_view=models.scoring.ROW_VIEW))``.
    """

    def __init__(self, scorer: AnomalyScorer, publisher: AnomalyPublisher) -> None:
        """``scorer`` should be started (:meth:`AnomalyScorer.start`) to follow promotions."""
        self.scorer = scorer
        self.publisher = publisher

    def __call__(self, rows: pd.DataFrame) -> None:
        """Score, publish, and wait for delivery (a failed batch is replayed by Spark)."""
        if rows.empty:
            return
        if self.publisher.publish(self.scorer.score_rows(rows)):
            self.publisher.flush()

"""Anomalies produced the way any producer would: confluent-kafka + Confluent's own Avro serde."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField
from confluent_kafka.serialization import SerializationContext

from featurestore.config import Settings
from featurestore.events import bundled_schema
from featurestore.topics import TopicSpec
from featurestore.topics import ensure_topics

BASE_TIME = datetime(2024, 5, 1, 14, 30, tzinfo=UTC)


def create_topic(settings: Settings, topic: str, partitions: int = 3) -> None:
    admin = AdminClient(settings.kafka.connection.admin())
    ensure_topics(admin, [TopicSpec(topic, partitions)])


def delete_topic(settings: Settings, topic: str) -> None:
    admin = AdminClient(settings.kafka.connection.admin())
    for future in admin.delete_topics([topic], operation_timeout=30).values():
        future.result(30)


def anomaly_record(i: int, symbol: str, score: float) -> dict[str, Any]:
    event_time = BASE_TIME + timedelta(seconds=i)
    return {
        "anomaly_id": f"a{i:05d}",
        "symbol": symbol,
        "event_time": event_time,
        "score": score,
        "threshold": 0.5 if i % 2 else None,
        "model_name": "iforest",
        "model_version": "3",
        "features": {"rolling_1m__vwap_5m": 100.0 + i},
        "detected_at": event_time + timedelta(milliseconds=250),
    }


class AnomalyProducer:
    """Produces Anomaly records keyed by symbol, stamped with their event time."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.topic = topic
        config = {"url": settings.schema_registry.url}
        user_info = settings.schema_registry.basic_auth_user_info
        if user_info is not None:  # a secured stack's registry
            config["basic.auth.user.info"] = user_info.get_secret_value()
        self._registry = SchemaRegistryClient(config)
        self._serialize = AvroSerializer(self._registry, bundled_schema("anomaly").text)
        self._producer = Producer(settings.kafka.connection.producer(**{"linger.ms": 0}))

    def send(self, record: dict[str, Any], *, stamp: datetime | None = None) -> None:
        context = SerializationContext(self.topic, MessageField.VALUE)
        when = stamp or record["event_time"]
        self._producer.produce(
            self.topic,
            self._serialize(record, context),
            record["symbol"].encode(),
            timestamp=int(when.timestamp() * 1000),
        )
        self._producer.poll(0)

    def send_raw(self, value: bytes, key: bytes) -> None:
        self._producer.produce(self.topic, value, key)

    def flush(self) -> None:
        assert self._producer.flush(30) == 0

    def close(self) -> None:
        """Flush, then close the registry client (its HTTP connections)."""
        try:
            self.flush()
        finally:
            self._registry.close()

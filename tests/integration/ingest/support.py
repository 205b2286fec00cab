"""Reading a topic back raw, for tests that count what ingest delivered."""

from __future__ import annotations

import uuid
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from featurestore.config import Settings

__all__ = ["read_raw"]


def read_raw(
    settings: Settings, topic: str
) -> list[tuple[int, bytes | None, bytes, dict[str, bytes]]]:
    """Every record of a topic (partition, key, value, headers), up to the end offsets now."""
    consumer = Consumer(
        settings.kafka.connection.consumer(f"t-{uuid.uuid4().hex}", **{"enable.auto.commit": False})
    )
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        ends = {}
        assignment = []
        for p in meta.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            assignment.append(TopicPartition(topic, p, low))
            if high > low:
                ends[p] = high
        consumer.assign(assignment)
        out: list[Any] = []
        while ends:
            for m in consumer.consume(1000, timeout=5):
                assert m.error() is None, m.error()
                out.append((m.partition(), m.key(), m.value(), dict(m.headers() or [])))
                if (m.offset() or 0) >= ends.get(m.partition() or 0, 0) - 1:
                    ends.pop(m.partition(), None)
        return out
    finally:
        consumer.close()

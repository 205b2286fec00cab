"""Ingestors on the stack, and a topic read back raw: for tests that count what ingest sent."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
from typing import Any

from confluent_kafka import Consumer
from confluent_kafka import TopicPartition

from featurestore.config import Settings
from featurestore.events import ConfluentSchemaStore
from featurestore.ingest import IngestOptions
from featurestore.ingest import Ingestor
from featurestore.ingest import RecordKind

__all__ = ["read_raw", "stack_ingestors"]

MakeIngestor = Callable[[Mapping[RecordKind, str], str], Ingestor]


@contextmanager
def stack_ingestors(stack: Settings) -> Iterator[MakeIngestor]:
    """``make(topics, dead_letter_topic)``: ingestors on the stack, all closed on leaving."""
    made: list[Ingestor] = []
    with ConfluentSchemaStore.from_settings(stack.schema_registry) as store:

        def make(topics: Mapping[RecordKind, str], dead_letter_topic: str) -> Ingestor:
            options = IngestOptions(
                kafka=stack.kafka.connection,
                topics=dict(topics),
                dead_letter_topic=dead_letter_topic,
                partitions=stack.kafka.default_partitions,
                connect_timeout_s=20,
                delivery_timeout_s=30,
            )
            made.append(Ingestor(options, store))
            return made[-1]

        try:
            yield make
        finally:
            for ingestor in made:
                ingestor.close()


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

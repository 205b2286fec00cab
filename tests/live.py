"""Small helpers of the tests that start live processes of their own."""

from __future__ import annotations

from featurestore.config import Settings


def topic_exists(settings: Settings, topic: str) -> bool:
    """Whether the stack's Kafka has ``topic`` (an ingest creates it as it starts)."""
    from confluent_kafka.admin import AdminClient

    meta = AdminClient({"bootstrap.servers": settings.kafka.bootstrap}).list_topics(timeout=5)
    return topic in meta.topics

"""Small helpers of the tests that start live processes of their own."""

from __future__ import annotations

from featurestore.config import Settings


def topic_exists(settings: Settings, topic: str) -> bool:
    """Whether the stack's Kafka has ``topic`` (an ingest creates it as it starts)."""
    from confluent_kafka.admin import AdminClient

    meta = AdminClient(settings.kafka.connection.admin()).list_topics(timeout=5)
    return topic in meta.topics


def topic_has_schema(settings: Settings, topic: str) -> bool:
    """Whether the registry has ``topic``'s value schema: an ingest creates the topic first and
    registers its schema with the first records, and applying definitions checks it."""
    from featurestore.errors import NotFoundError
    from featurestore.events import ConfluentSchemaStore

    with ConfluentSchemaStore.from_settings(settings.schema_registry) as store:
        try:
            store.latest_schema_text(f"{topic}-value")
        except NotFoundError:
            return False
    return topic_exists(settings, topic)

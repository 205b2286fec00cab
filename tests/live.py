"""Small helpers of the tests that start live processes of their own."""

from __future__ import annotations

import socket

from featurestore.config import Settings


def free_port() -> int:
    """A TCP port free on loopback now (a child process binds it next)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def topic_exists(settings: Settings, topic: str) -> bool:
    """Whether the stack's Kafka has ``topic`` (an ingest creates it as it starts)."""
    from confluent_kafka.admin import AdminClient

    meta = AdminClient({"bootstrap.servers": settings.kafka.bootstrap}).list_topics(timeout=5)
    return topic in meta.topics

"""Kafka topics of the event log, created with the settings the design asks for.

Event topics keep everything (``retention.ms=-1``): they are the system of record, and every
store is rebuilt by replaying them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from featurestore.config import Settings
from featurestore.errors import BackendUnavailableError

__all__ = ["TopicSpec", "ensure_event_topics", "ensure_topics", "event_topic_specs"]

KEEP_FOREVER: Mapping[str, str] = {"retention.ms": "-1", "retention.bytes": "-1"}


@dataclass(frozen=True)
class TopicSpec:
    """A topic to create when it is absent."""

    name: str
    partitions: int
    config: Mapping[str, str] = field(default_factory=lambda: dict(KEEP_FOREVER))


def event_topic_specs(settings: Settings) -> list[TopicSpec]:
    """The topics every deployment has: trades, anomalies, predictions and dead letters."""
    topics = settings.topics
    partitions = settings.kafka.default_partitions
    return [
        TopicSpec(topics.trades, partitions),
        TopicSpec(topics.anomalies, partitions),
        TopicSpec(topics.predictions, partitions),
        TopicSpec(topics.dead_letter, 1),
    ]


def ensure_topics(
    settings: Settings, specs: Iterable[TopicSpec], timeout: float = 30.0
) -> list[str]:
    """Create the topics that do not exist yet; existing ones are left as they are.

    Returns:
        The names of the topics this call created.

    Raises:
        BackendUnavailableError: the brokers could not be reached or refused the creation.
    """
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap})
    try:
        existing = set(admin.list_topics(timeout=timeout).topics)
    except KafkaException as exc:
        raise BackendUnavailableError(f"Kafka at {settings.kafka.bootstrap}: {exc}") from exc
    wanted = [
        NewTopic(
            spec.name,
            num_partitions=spec.partitions,
            replication_factor=1,
            config=dict(spec.config),
        )
        for spec in specs
        if spec.name not in existing
    ]
    if not wanted:
        return []
    created: list[str] = []
    for name, future in admin.create_topics(wanted, request_timeout=timeout).items():
        try:
            future.result(timeout=timeout)
            created.append(name)
        except KafkaException as exc:
            error = exc.args[0]
            if isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            raise BackendUnavailableError(f"creating topic {name}: {exc}") from exc
    return created


def ensure_event_topics(settings: Settings) -> list[str]:
    """Create the standard event topics where missing."""
    return ensure_topics(settings, event_topic_specs(settings))

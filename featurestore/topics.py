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
from featurestore.errors import BackendUnavailableError, ConfigurationError

__all__ = ["TopicSpec", "ensure_event_topics", "ensure_topics", "event_topic_specs"]

KEEP_FOREVER: Mapping[str, str] = {"retention.ms": "-1", "retention.bytes": "-1"}


@dataclass(frozen=True)
class TopicSpec:
    """A topic to create when it is absent."""

    name: str
    partitions: int
    config: Mapping[str, str] = field(default_factory=lambda: dict(KEEP_FOREVER))


def event_topic_specs(settings: Settings) -> list[TopicSpec]:
    """The topics every deployment has: the event topics and the dead-letter topic."""
    topics = settings.topics
    partitions = settings.kafka.default_partitions
    return [
        TopicSpec(topics.trades, partitions),
        TopicSpec(topics.quotes, partitions),
        TopicSpec(topics.metrics, partitions),
        TopicSpec(topics.anomalies, partitions),
        TopicSpec(topics.predictions, partitions),
        TopicSpec(topics.dead_letter, 1),
    ]


def ensure_topics(
    admin: AdminClient, specs: Iterable[TopicSpec], *, timeout_s: float = 30.0
) -> list[str]:
    """Create the topics that do not exist yet; existing ones are left as they are.

    The replication factor is the smaller of 3 and the number of brokers, so the same call fits
    a single local node and a cluster.

    Returns:
        The names of the topics this call created.

    Raises:
        BackendUnavailableError: the cluster cannot be reached.
        ConfigurationError: the broker refuses a topic (bad name, policy).
    """
    try:
        metadata = admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise BackendUnavailableError(f"cannot list Kafka topics: {exc.args[0]}") from exc
    missing = {spec.name: spec for spec in specs if spec.name not in metadata.topics}
    if not missing:
        return []
    replication = max(1, min(3, len(metadata.brokers)))
    futures = admin.create_topics(
        [
            NewTopic(
                spec.name,
                num_partitions=spec.partitions,
                replication_factor=replication,
                config=dict(spec.config),
            )
            for spec in missing.values()
        ],
        request_timeout=timeout_s,
    )
    created = []
    for name, future in futures.items():
        try:
            future.result(timeout=timeout_s)
            created.append(name)
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            if error.retriable():
                raise BackendUnavailableError(f"creating topic {name}: {error.str()}") from exc
            raise ConfigurationError(f"creating topic {name}: {error.str()}") from exc
    return sorted(created)


def ensure_event_topics(settings: Settings) -> list[str]:
    """Create the standard event topics where missing."""
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap})
    return ensure_topics(admin, event_topic_specs(settings))

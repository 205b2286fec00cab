"""Kafka topics of the event log, created with the settings the design asks for.

Event topics keep everything (``retention.ms=-1``): they are the system of record, and every
store is rebuilt by replaying them. Every topic the store creates is replicated as
:class:`Replication` says: by default 3 times with 2 in sync on a cluster (a write acknowledged
with ``acks=all`` is on 2 brokers; one broker may die without loss or refusal), once on a
single node; or as ``FEATURESTORE_KAFKA__REPLICATION_FACTOR`` and ``..._MIN_INSYNC_REPLICAS`` say,
checked against the brokers the cluster has.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field

from confluent_kafka import Consumer
from confluent_kafka import KafkaError
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from featurestore.config import Settings
from featurestore.error_maps import kafka_error
from featurestore.errors import BackendUnavailableError
from featurestore.errors import ConfigurationError
from featurestore.errors import NotFoundError
from featurestore.kafka_connection import create_client

__all__ = [
    "Replication",
    "TopicSpec",
    "ensure_event_topics",
    "ensure_topics",
    "event_topic_specs",
    "partitions_of",
]

KEEP_FOREVER: Mapping[str, str] = {"retention.ms": "-1", "retention.bytes": "-1"}


@dataclass(frozen=True)
class TopicSpec:
    """A topic to create when it is absent."""

    name: str
    partitions: int
    config: Mapping[str, str] = field(default_factory=lambda: dict(KEEP_FOREVER))


@dataclass(frozen=True)
class Replication:
    """How many brokers hold each partition of a topic, and how many must have a write."""

    factor: int
    """The replication factor."""
    min_insync: int
    """``min.insync.replicas``: below this many replicas in sync, ``acks=all`` writes fail."""

    @classmethod
    def for_cluster(
        cls, brokers: int, factor: int | None = None, min_insync: int | None = None
    ) -> Replication:
        """The replication of new topics on a cluster of ``brokers`` brokers.

        Args:
            brokers: the brokers the cluster has.
            factor: the configured factor; None: the smaller of 3 and ``brokers``.
            min_insync: the configured minimum in sync; None: ``factor - 1``, at least 1.

        Raises:
            ConfigurationError: the factor is above ``brokers``, or the minimum above the factor.
        """
        chosen = factor if factor is not None else max(1, min(3, brokers))
        if chosen > brokers:
            raise ConfigurationError(
                f"replication factor {chosen} (FEATURESTORE_KAFKA__REPLICATION_FACTOR) needs at "
                f"least {chosen} brokers; the cluster has {brokers} available"
            )
        in_sync = min_insync if min_insync is not None else max(1, chosen - 1)
        if in_sync > chosen:
            raise ConfigurationError(
                f"min.insync.replicas {in_sync} (FEATURESTORE_KAFKA__MIN_INSYNC_REPLICAS) is more "
                f"than the replication factor {chosen}: no acks=all write could succeed"
            )
        return cls(chosen, in_sync)


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
    admin: AdminClient,
    specs: Iterable[TopicSpec],
    *,
    replication_factor: int | None = None,
    min_insync_replicas: int | None = None,
    timeout_s: float = 30.0,
) -> list[str]:
    """Create the topics that do not exist yet; existing ones are left as they are.

    Replicated as :meth:`Replication.for_cluster` says for the brokers the cluster has (by
    default 3 times with 2 in sync, or once on one node), so the same call fits a single local
    node and a cluster; a spec's own ``min.insync.replicas`` wins.

    Returns once every topic created is visible with a leader for each partition: a broker
    learns of a new topic from the controller a moment after its creation, and a caller that
    produces or lists right away must find it.

    Returns:
        The names of the topics this call created.

    Raises:
        BackendUnavailableError: the cluster cannot be reached.
        ConfigurationError: the broker refuses a topic (bad name, policy), or the replication
            asked for does not fit the cluster.
    """
    try:
        metadata = admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise kafka_error(exc, "listing topics") from exc
    missing = {spec.name: spec for spec in specs if spec.name not in metadata.topics}
    if not missing:
        return []
    replication = Replication.for_cluster(
        len(metadata.brokers), replication_factor, min_insync_replicas
    )
    futures = admin.create_topics(
        [
            NewTopic(
                spec.name,
                num_partitions=spec.partitions,
                replication_factor=replication.factor,
                config={"min.insync.replicas": str(replication.min_insync), **spec.config},
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
            error = exc.args[0] if exc.args else None
            if isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            raise kafka_error(exc, f"creating topic {name}") from exc
    _await_leaders(admin, created, timeout_s)
    return sorted(created)


def _await_leaders(admin: AdminClient, names: list[str], timeout_s: float) -> None:
    """Wait until the broker asked lists each topic with a leader for every partition."""
    deadline = time.monotonic() + timeout_s
    waiting = set(names)
    while waiting:
        try:
            topics = admin.list_topics(timeout=timeout_s).topics
        except KafkaException as exc:
            raise kafka_error(exc, "listing topics") from exc
        waiting = {
            name
            for name in waiting
            if name not in topics
            or not topics[name].partitions
            or any(p.leader < 0 for p in topics[name].partitions.values())
        }
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise BackendUnavailableError(
                f"topics {', '.join(sorted(waiting))} were created but have no leader after "
                f"{timeout_s:.0f} s"
            )
        time.sleep(0.1)


def partitions_of(client: Consumer | AdminClient, topic: str, timeout_s: float) -> list[int]:
    """The partitions of ``topic``, in order.

    Raises:
        NotFoundError: the topic does not exist (or has no partition).
        KafkaException: Kafka did not answer; callers translate it (:func:`kafka_error`) saying
            what they were doing.
    """
    info = client.list_topics(topic, timeout=timeout_s).topics.get(topic)
    if info is None or info.error is not None or not info.partitions:
        raise NotFoundError(f"topic {topic!r} does not exist")
    return sorted(info.partitions)


def ensure_event_topics(settings: Settings) -> list[str]:
    """Create the standard event topics where missing."""
    admin = create_client(AdminClient, settings.kafka.connection.admin())
    return ensure_topics(
        admin,
        event_topic_specs(settings),
        replication_factor=settings.kafka.replication_factor,
        min_insync_replicas=settings.kafka.min_insync_replicas,
    )

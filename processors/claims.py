"""Before an engine reads a record: its partitions of the topic claimed, and where each starts.

Both engines (:mod:`processors.spark.stream`, :mod:`processors.kafka_engine`) start the same
way: claim this application's partitions in the state table (raising each one's epoch, which
fences off whoever held them) and read each partition's smallest stored ``next_offset`` over
the views. Kafka's committed offsets and Spark's checkpoint are never the record of where a run
starts; the state table is.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import psycopg
from confluent_kafka.admin import AdminClient

from featurestore.config import Settings
from featurestore.error_maps import kafka_errors
from featurestore.error_maps import postgres_error
from featurestore.errors import ConfigurationError
from featurestore.errors import NotFoundError
from featurestore.kafka_connection import create_client
from featurestore.topics import partitions_of
from processors.options import ProcessorOptions
from processors.state_table import claim_partitions
from processors.state_table import ensure_state_table
from processors.state_table import stored_offsets
from processors.views import MaterializedViews

__all__ = ["RunClaim", "claim_run", "topic_partitions"]


def topic_partitions(settings: Settings, topic: str) -> list[int]:
    """The partitions of ``topic``.

    Raises:
        BackendUnavailableError: Kafka does not answer.
        ConfigurationError: the topic does not exist.
    """
    admin = create_client(AdminClient, settings.kafka.connection.admin())
    try:
        with kafka_errors(f"listing topic {topic}", settings.kafka.connection):
            return partitions_of(admin, topic, timeout_s=10)
    except NotFoundError as exc:  # the topic the processor was told to read: its setting
        raise ConfigurationError(str(exc)) from None


@dataclass(frozen=True)
class RunClaim:
    """The partitions a run owns and where each one starts."""

    partitions: tuple[int, ...]
    """This application's partitions of the topic (``--partitions``, or all of them)."""
    epochs: dict[int, int]
    """Each partition's epoch after this claim: a step commits only while it is still this."""
    stored: dict[int, int]
    """Each claimed partition's smallest stored ``next_offset`` over the views; a partition
    where a view has no state yet is left out (it starts where ``--starting-offsets`` says,
    the beginning of the log by default, so that a new view is backfilled)."""


def claim_run(settings: Settings, options: ProcessorOptions, views: MaterializedViews) -> RunClaim:
    """Claim this application's partitions of the views' topic; read where each starts.

    Raises:
        BackendUnavailableError: PostgreSQL or Kafka is unreachable.
        ConfigurationError: the topic does not exist.
    """
    topic = views.topic
    project = views.definitions.project
    partitions = options.partitions or tuple(topic_partitions(settings, topic))
    owner = f"{socket.gethostname()}:{os.getpid()}:{options.instance}"
    try:
        with psycopg.connect(settings.postgres.dsn, autocommit=True) as conn:
            ensure_state_table(conn)
            # This application's partitions are its own from now on: whoever held them is
            # fenced off (its next commit for them is refused).
            epochs = claim_partitions(conn, options.name, project, topic, partitions, owner)
            stored = stored_offsets(
                conn, options.name, project, topic, [v.name for v in views.views]
            )
    except psycopg.OperationalError as exc:
        raise postgres_error(exc, "claiming the partitions") from exc
    stored = {p: offset for p, offset in stored.items() if p in epochs}
    return RunClaim(tuple(sorted(partitions)), epochs, stored)

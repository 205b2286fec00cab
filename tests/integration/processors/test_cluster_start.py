"""A processor started against a Spark master that is down stops before it claims anything."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from confluent_kafka.admin import AdminClient

from featurestore.config import Settings
from featurestore.definitions import market_definitions
from featurestore.errors import ConfigurationError
from featurestore.topics import TopicSpec
from featurestore.topics import ensure_topics
from processors.options import ProcessorOptions
from processors.spark import start_stream
from processors.state_table import OWNER_TABLE
from processors.state_table import ensure_state_table
from processors.wiring import ProcessorWiring
from tests.ports import free_port

pytestmark = pytest.mark.integration


def test_a_start_against_a_master_that_is_down_claims_no_partition(stack: Settings) -> None:
    """Claiming would fence off the application that holds the partitions: a start that cannot
    get executors must fail before it, saying which master does not answer."""
    run = uuid.uuid4().hex[:8]
    topic = f"it-cluster-start-{run}"
    admin = AdminClient(stack.kafka.connection.admin())
    ensure_topics(admin, [TopicSpec(topic, 2)])
    name = f"it-down-{run}"
    url = f"spark://127.0.0.1:{free_port()}"
    try:
        with pytest.raises(ConfigurationError, match="does not answer"):
            start_stream(
                stack, ProcessorOptions(name=name, topic=topic, master=url),
                ProcessorWiring(market_definitions(f"it_down_{run}", source_topic=topic)),
            )  # fmt: skip
        with psycopg.connect(stack.postgres.dsn, autocommit=True) as conn:
            ensure_state_table(conn)
            claimed = conn.execute(
                f"SELECT count(*) FROM {OWNER_TABLE} WHERE processor = %s", (name,)
            ).fetchone()
        assert claimed == (0,)
    finally:
        admin.delete_topics([topic])

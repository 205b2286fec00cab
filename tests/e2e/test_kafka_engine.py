"""The Kafka engine end to end: the same tables as the Spark engine, from real trade files.

One topic holds two real trade files (IBM and AIG, 2013-10-07), trades of a symbol written with
two schema versions and undecodable records: the session's, which ``test_processors.py`` reads
too (``conftest.py``'s ``trades_world``). The Spark engine computes it once (the reference: the
session's baseline run); every run here is the Kafka engine (``--engine kafka``) into its own
project and tables, and must store the same rows, lineage and created times included, and the
same online rows.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import psycopg
import pytest
from confluent_kafka import Producer

from featurestore.apply import apply_definitions
from featurestore.config import Settings
from featurestore.definitions import market_definitions
from featurestore.events import AvroSerializer
from featurestore.events import ConfluentSchemaStore
from featurestore.events import Trade
from featurestore.ingest import wait_for_brokers
from featurestore.topics import TopicSpec
from featurestore.topics import ensure_topics
from processors.kafka_engine import start_consumer
from processors.status import read_status
from processors.wiring import ProcessorWiring
from tests.e2e.processors_support import BASELINE
from tests.e2e.processors_support import World
from tests.e2e.processors_support import checksum
from tests.e2e.processors_support import clean_up
from tests.e2e.processors_support import logged_trades
from tests.e2e.processors_support import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(300)]

SYMBOLS = ["IBM", "AIG", "EVOL"]


@pytest.fixture(scope="module")
def spark(world: World) -> dict[str, tuple[int, str]]:
    """The Spark engine's tables (its checksums): what every Kafka engine run must equal. Its
    run is the session's baseline (local mode, read to the end of the topic)."""
    return world.sums(BASELINE)


def test_the_kafka_engine_stores_the_spark_engines_tables(
    world: World, spark: dict[str, tuple[int, str]]
) -> None:
    [handle] = world.process("kafka", engine="kafka", max_offsets_per_trigger=4_000)
    assert handle.totals["records"] == world.records
    assert handle.totals["dead_letters"] == world.junk
    assert len(handle.reports) >= world.records // 4_000
    assert world.sums("kafka") == spark
    assert world.online("kafka", SYMBOLS) == world.online(BASELINE, SYMBOLS)
    status = read_status(world.options("kafka").status_path(world.settings))
    assert status is not None and status["engine"] == "kafka"
    assert status["totals"]["records"] == world.records and status["lag"] == 0


def test_sigkill_mid_stream_then_restart_ends_identical(
    world: World, spark: dict[str, tuple[int, str]]
) -> None:
    world.kill_mid_stream_then_restart(
        "kill", "kafka", like=BASELINE, max_offsets=500, batches=4, timeout_s=120
    )


def test_two_applications_splitting_the_partitions_store_the_same_tables(
    world: World, spark: dict[str, tuple[int, str]]
) -> None:
    handles = world.process("split", split=True, engine="kafka")
    assert all(h.totals["records"] for h in handles)
    assert world.sums("split") == spark


def test_a_view_added_later_is_backfilled_by_the_kafka_engine(
    world: World, spark: dict[str, tuple[int, str]]
) -> None:
    """bars_1m alone first; then with rolling_1m, which starts at offset 0 while bars_1m skips."""
    full = world.definitions("late")
    bars = replace(full, views=tuple(v for v in full.views if v.name == "bars_1m"))
    world.process("late", definitions=bars, engine="kafka")
    assert checksum(world.settings, world.table("late", "bars_1m")) == spark["bars_1m"]
    assert checksum(world.settings, world.table("late", "rolling_1m"))[0] == 0
    handle = start_consumer(
        world.settings, world.options("late", engine="kafka"), ProcessorWiring(definitions=full)
    )
    try:
        wait_for(lambda: world.sums("late") == spark, 120, "rolling_1m to catch up")
    finally:
        handle.stop()
    assert handle.totals["records"] == 0  # every record had been applied by a view before
    assert handle.totals["dead_letters"] == 0  # the junk was dead-lettered once, in the first


def _produce_trades(settings: Settings, topic: str, first: int, n: int) -> None:
    """Trades of one symbol, a second apart, into ``topic`` (created with 4 partitions)."""
    ensure_topics(wait_for_brokers(settings.kafka.connection), [TopicSpec(topic, 4)])
    with ConfluentSchemaStore.from_settings(settings.schema_registry) as store:
        serializer = AvroSerializer.for_topic(store, topic, Trade)
    producer = Producer(settings.kafka.connection.producer())
    start = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
    for i in range(first, first + n):
        trade = Trade("FNC", 50.0 + i % 5, 100, start + timedelta(seconds=i), "Q", f"fnc-{i}")
        producer.produce(topic, serializer.encode(trade), b"FNC")
    assert producer.flush(30) == 0


def test_a_fenced_zombie_cannot_commit(stack: Settings) -> None:
    """An application whose partitions another claimed since fails its next commit, and stops."""
    from processors.claims import topic_partitions
    from processors.state_table import PartitionFencedError
    from processors.state_table import claim_partitions
    from processors.state_table import view_offsets

    run = uuid.uuid4().hex[:8]
    topic = f"e2e-kafka-fence-{run}"
    _produce_trades(stack, topic, 0, 100)
    defs = market_definitions(
        f"e2e_kfence_{run}", table_prefix=f"e2e_{run}_kfence_", source_topic=topic,
        ttl=timedelta(0),
    )  # fmt: skip
    apply_definitions(stack, defs)
    world = World(stack, run, topic, 100, 0, logged_trades(stack, topic), {}, {"kfence": defs})
    options = world.options("kfence", engine="kafka")
    zombie = start_consumer(stack, options, ProcessorWiring(definitions=defs))
    try:
        wait_for(lambda: zombie.totals.get("records", 0) >= 100, 60, "the zombie to catch up")
        with psycopg.connect(stack.postgres.dsn, autocommit=True) as conn:
            claim_partitions(
                conn, options.name, defs.project, topic, topic_partitions(stack, topic), "successor"
            )
            before = view_offsets(conn, options.name, defs.project, topic)
            rows_before = checksum(stack, defs.view("bars_1m").source.table)
            _produce_trades(stack, topic, 100, 1)
            wait_for(lambda: not zombie.active, 60, "the zombie to stop")
            assert view_offsets(conn, options.name, defs.project, topic) == before
        assert checksum(stack, defs.view("bars_1m").source.table) == rows_before
        with pytest.raises(RuntimeError) as failed:
            zombie.stop()
        assert isinstance(failed.value.__cause__, PartitionFencedError)
        assert "successor" in str(failed.value)
    finally:
        zombie.stop()
        clean_up(stack, [defs], f"e2e-*-{run}*", [topic])

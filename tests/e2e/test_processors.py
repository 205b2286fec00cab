"""The processors end to end: real trades in Kafka -> Spark -> PostgreSQL and Redis.

One topic holds two real trade files (IBM and AIG, 2013-10-07), trades of a symbol written with
two schema versions, and undecodable records: the session's (``conftest.py``'s ``trades_world``),
with its baseline run, one local-mode Spark processor read to the end, which the first tests
check against an independent oracle and the others' tables must equal. Every run below reads
that same topic into its own Feast project and tables (unique names), sharing one SparkSession in
this process; the SIGKILL test runs the processor as the background command it is in production.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from confluent_kafka import Consumer
from confluent_kafka import TopicPartition

from featurestore.config import Settings
from featurestore.offline import PostgresOfflineStore
from featurestore.offline import TrainingRequest
from tests.e2e.processors_support import BAR_FEATURES
from tests.e2e.processors_support import BASELINE
from tests.e2e.processors_support import ROLLING
from tests.e2e.processors_support import World
from tests.e2e.processors_support import checksum
from tests.e2e.processors_support import oracle_rows
from tests.e2e.processors_support import read_table

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]

OHLCV = ["open", "high", "low", "close", "volume", "trade_count", "notional", "vwap"]


@pytest.fixture(scope="module")
def streamed(trades_world: World) -> Iterator[World]:
    """This module's runs of the session's topic, whose run :data:`BASELINE` (one local-mode
    Spark processor) has read it to the end: what the other runs must equal."""
    world = trades_world.for_module("e2e")
    yield world
    world.clean_up()


def _us(when: datetime) -> int:
    return int((when - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1))


def test_stream_equals_the_independent_oracle(streamed: World) -> None:
    trades = streamed.trades
    assert set(trades["symbol"]) == {"IBM", "AIG", "EVOL"}
    want = oracle_rows(trades, streamed.definitions(BASELINE).views)
    for view, features, at_least in (
        ("bars_1m", BAR_FEATURES, 30_000),
        ("rolling_1m", ROLLING, 700),
        *(
            (view, OHLCV, rows)
            for view, rows in (("ohlcv_1m", 700), ("ohlcv_5m", 150), ("ohlcv_1h", 15))
        ),
    ):
        got = read_table(streamed.settings, streamed.table(BASELINE, view))
        got = got.rename(
            columns={"source_offset_start": "first_offset", "source_offset_end": "last_offset"}
        )
        assert len(got) == len(want[view]) > at_least, view
        cols = ["symbol", "event_us", "created_ms", *features, "first_offset", "last_offset"]
        pd.testing.assert_frame_equal(
            got[cols].reset_index(drop=True), want[view][cols], check_dtype=False,
            rtol=1e-9, atol=1e-12,
        )  # fmt: skip
    # Redis holds each symbol's latest row of each view, equal to the oracle's last row.
    online = streamed.online(BASELINE, ["IBM", "AIG", "EVOL"])
    for symbol, row in online.items():
        for view, features in (("bars_1m", BAR_FEATURES), ("rolling_1m", ROLLING)):
            rows = want[view]
            mine = rows[rows["symbol"] == symbol]
            assert len(mine), f"no {view} row of {symbol}: {rows['symbol'].value_counts()}"
            last = mine.iloc[-1]
            assert _us(row[f"_ts:{view}"]) == last["event_us"], (symbol, view)
            for name in features:
                value = last[name]
                if np.isnan(value):
                    assert row[f"{view}:{name}"] is None, (symbol, view, name)
                else:
                    assert row[f"{view}:{name}"] == pytest.approx(value, rel=1e-9)


def test_undecodable_records_go_to_the_dead_letter_topic(streamed: World) -> None:
    settings = streamed.settings
    consumer = Consumer(
        settings.kafka.connection.consumer(f"t-{uuid.uuid4().hex}", **{"enable.auto.commit": False})
    )
    consumer.assign(
        [
            TopicPartition(settings.topics.dead_letter, p, o)
            for p, o in streamed.dead_letter_start.items()
        ]
    )
    # Every run of the session's topic (other modules' too) dead-letters its junk: the baseline
    # run's letters are those naming its processor.
    processor = streamed.options(BASELINE).name.encode()
    reasons = []
    offsets = set()
    try:
        for _ in range(20):
            for message in consumer.consume(500, timeout=1.0):
                if message.error():
                    continue
                headers = dict(message.headers() or [])
                if (
                    headers.get("x-original-topic") == streamed.topic.encode()
                    and headers.get("x-processor") == processor
                ):
                    reason = headers["x-dead-letter-reason"]
                    assert isinstance(reason, bytes)
                    reasons.append(reason.decode())
                    offsets.add(headers["x-original-offset"])
            if len(reasons) >= streamed.junk:
                break
    finally:
        consumer.close()
    # Each undecodable record, dead-lettered at least once (sent before the batch's commit).
    assert len(reasons) >= streamed.junk
    assert len(offsets) == streamed.junk
    assert all(r.startswith("undecodable") for r in reasons)
    assert any("999999" in r for r in reasons)


def test_feast_sdk_reads_what_the_processor_wrote(streamed: World) -> None:
    from featurestore.definitions.feast_codec import feature_store

    features = ["bars_1m:close", "bars_1m:vwap", "bars_1m:trade_count", "rolling_1m:sma_5"]
    symbols = ["IBM", "AIG", "EVOL"]
    with feature_store(streamed.settings, streamed.definitions(BASELINE).project) as store:
        got = store.get_online_features(
            features=features, entity_rows=[{"symbol": s} for s in symbols]
        ).to_dict()
    online = streamed.online(BASELINE, symbols)
    assert got["close"] == [online[s]["bars_1m:close"] for s in symbols]
    assert got["vwap"] == [online[s]["bars_1m:vwap"] for s in symbols]
    assert got["trade_count"] == [online[s]["bars_1m:trade_count"] for s in symbols]
    assert got["sma_5"] == [online[s]["rolling_1m:sma_5"] for s in symbols]
    assert all(v is not None for v in got["close"])


def test_online_equals_the_point_in_time_export(streamed: World) -> None:
    symbols = ["IBM", "AIG", "EVOL"]
    online = streamed.online(BASELINE, symbols)
    with PostgresOfflineStore(
        streamed.settings.postgres.dsn, streamed.definitions(BASELINE)
    ) as store:
        now = datetime.now(UTC)
        for view, names in (("bars_1m", BAR_FEATURES), ("rolling_1m", ROLLING)):
            # At the online row's own event time, and now: the export returns what is served.
            times = [online[s][f"_ts:{view}"] for s in symbols] + [now] * len(symbols)
            entities = pd.DataFrame({"symbol": symbols * 2, "event_timestamp": times})
            request = TrainingRequest(features=[f"{view}:{n}" for n in names])
            exported = store.to_pandas(entities, request)
            for i, symbol in enumerate(symbols * 2):
                for name in names:
                    want = online[symbol][f"{view}:{name}"]
                    value = exported[name].iloc[i]
                    if want is None:
                        assert pd.isna(value), (symbol, view, name)
                    else:
                        assert value == want, (symbol, view, name)


def test_backfill_gives_the_same_rows_and_rebuilds_what_retention_dropped(
    streamed: World,
) -> None:
    """The backfill's tables are the stream's. Then retention: the rollups keep 30 days to a
    year, so the 2013 rows are past it: their partitions go, the views without retention keep
    theirs, and a second backfill (replaying the log) rebuilds identical rows."""
    import psycopg

    from featurestore.offline.retention import apply_retention
    from processors.spark import run_backfill

    settings, defs = streamed.settings, streamed.definitions("b")
    report = run_backfill(settings, streamed.options("b"), definitions=defs)
    assert report.records == streamed.records
    assert report.dead_letters == streamed.junk
    before = {v.name: checksum(settings, v.source.table) for v in defs.views}
    for view in before:
        assert before[view] == checksum(settings, streamed.table(BASELINE, view)), view

    with psycopg.connect(settings.postgres.dsn, autocommit=True) as conn:
        dry = apply_retention(conn, defs.views, dry_run=True)
        assert {d.view for d in dry} == {"ohlcv_1m", "ohlcv_5m", "ohlcv_1h"}
        assert {v.name: checksum(settings, v.source.table) for v in defs.views} == before
        dropped = apply_retention(conn, defs.views)
        assert dropped == dry and all(d.upper.year == 2013 for d in dropped)
        assert apply_retention(conn, defs.views) == []  # nothing left to drop
    after = {v.name: checksum(settings, v.source.table) for v in defs.views}
    for view, (rows, _) in after.items():
        kept = view in ("bars_1m", "rolling_1m")
        assert (after[view] == before[view]) if kept else rows == 0, view
    run_backfill(settings, streamed.options("b"), definitions=defs)
    assert {v.name: checksum(settings, v.source.table) for v in defs.views} == before


def test_replay_from_offset_zero_in_small_batches_rebuilds_identical_tables(
    streamed: World,
) -> None:
    streamed.process("c", max_offsets_per_trigger=7_000)
    assert streamed.sums("c") == streamed.sums(BASELINE)
    symbols = ["IBM", "AIG", "EVOL"]
    assert streamed.online("c", symbols) == streamed.online(BASELINE, symbols)


def test_sigkill_mid_stream_then_restart_ends_identical(streamed: World) -> None:
    streamed.kill_mid_stream_then_restart(
        "k", "spark", like=BASELINE, max_offsets=3000, batches=3, timeout_s=400
    )


def test_the_step_on_executors_gives_the_tables_of_the_step_on_the_driver(
    streamed: World,
) -> None:
    """The same code in Spark's tasks (``mapInArrow``, a Python worker per task) and in the
    driver's threads: identical tables and online rows."""
    streamed.process("x", on_executors=True, max_offsets_per_trigger=20_000)
    assert streamed.sums("x") == streamed.sums(BASELINE)
    symbols = ["IBM", "AIG", "EVOL"]
    assert streamed.online("x", symbols) == streamed.online(BASELINE, symbols)


def test_a_backfill_in_chunks_carries_each_partitions_state_across_them(streamed: World) -> None:
    from processors.spark import run_backfill

    report = run_backfill(
        streamed.settings, streamed.options("ch"), definitions=streamed.definitions("ch"),
        chunk=3_000,
    )  # fmt: skip
    assert report.records == streamed.records
    for view in ("bars_1m", "rolling_1m"):
        assert checksum(streamed.settings, streamed.table("ch", view)) == checksum(
            streamed.settings, streamed.table(BASELINE, view)
        )


def test_two_applications_splitting_the_partitions_give_the_same_tables(streamed: World) -> None:
    """One processor, two applications: partitions {0, 1} and {2, 3}, no gap, no overlap."""
    streamed.process("split", split=True)
    for view in ("bars_1m", "rolling_1m"):
        assert checksum(streamed.settings, streamed.table("split", view)) == checksum(
            streamed.settings, streamed.table(BASELINE, view)
        )


def _partition_records(settings: Settings, topic: str, partition: int, n: int) -> Any:
    from processors.decode import KafkaRecords

    consumer = Consumer(settings.kafka.connection.consumer("fence"))
    consumer.assign([TopicPartition(topic, partition, 0)])
    got: list[Any] = []
    try:
        while len(got) < n:
            batch = consumer.consume(1000, timeout=5.0)
            if not batch:
                break
            got += [m for m in batch if m.error() is None]
    finally:
        consumer.close()
    got = got[:n]
    return KafkaRecords.of(
        [m.key() for m in got], [m.value() for m in got], [m.partition() for m in got],
        [m.offset() for m in got], [m.timestamp()[1] for m in got],
    )  # fmt: skip


def test_a_fenced_application_cannot_commit_for_a_partition_claimed_since(
    streamed: World,
) -> None:
    import psycopg

    from processors.partition_job import PartitionJob
    from processors.partition_job import PartitionRunner
    from processors.state_table import PartitionFencedError
    from processors.state_table import claim_partitions
    from processors.state_table import view_offsets
    from processors.views import MaterializedViews

    settings, opts = streamed.settings, streamed.options("fence")
    defs = streamed.definitions("fence")
    records = _partition_records(settings, streamed.topic, 0, 2_000)
    assert len(records) == 2_000
    with psycopg.connect(settings.postgres.dsn, autocommit=True) as conn:

        def claim(owner: str) -> dict[int, int]:
            return claim_partitions(conn, opts.name, defs.project, streamed.topic, [0], owner)

        epochs = claim("zombie")
        views = MaterializedViews.resolve(defs, streamed.topic)
        runner = PartitionRunner(PartitionJob(settings, views, opts.name, epochs=epochs))
        try:
            runner.run(records.slice(0, 1_000))
            before = view_offsets(conn, opts.name, defs.project, streamed.topic)
            assert {v[0] for v in before.values()} == {int(records.offset[999]) + 1}
            claim("successor")
            with pytest.raises(PartitionFencedError, match="successor"):
                runner.run(records.slice(1_000))
            assert view_offsets(conn, opts.name, defs.project, streamed.topic) == before
        finally:
            runner.close()

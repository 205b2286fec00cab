"""The Kafka engine's interval commits store what committing every batch stores, failures included.

The same records (trades of six symbols over four minutes, out-of-order ones within the
lateness, one malformed record) go through :class:`PartitionRunner` (a commit per batch) and
through :class:`IntervalRunner` (several batches per commit), whose PostgreSQL connection is
terminated between a commit and the next one: that commit fails, the runner reads its state
again and steps the batches since its last commit again. Both must leave the same rows, the
same next offsets, and the latest row of each symbol in Redis.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC
from datetime import datetime
from typing import cast

import numpy as np
import psycopg
import pytest
import redis
from psycopg import sql

from featurestore.config import Settings
from featurestore.definitions import Definitions
from featurestore.definitions import market_definitions
from featurestore.events import AvroSerializer
from featurestore.events import ConfluentSchemaStore
from featurestore.events import Trade
from featurestore.offline.tables import create_offline_tables
from featurestore.offline.tables import table_identifier
from featurestore.online.base import EntityKey
from featurestore.online.layout import decode_timestamp
from featurestore.online.layout import redis_key
from featurestore.online.layout import timestamp_field
from featurestore.resilience import Backoff
from featurestore.resilience import Retrier
from processors.decode import KafkaRecords
from processors.interval_runner import IntervalRunner
from processors.partition_job import PartitionJob
from processors.partition_job import PartitionRunner
from processors.state_table import STATE_TABLE
from processors.state_table import ensure_state_table
from processors.views import MaterializedViews

pytestmark = pytest.mark.integration

VIEWS = ("bars_1m", "rolling_1m")
SYMBOLS = [f"S{i}" for i in range(6)]
T0 = 1_800_000_000_000_000 - 1_800_000_000_000_000 % 60_000_000


def _records(settings: Settings, topic: str) -> KafkaRecords:
    with ConfluentSchemaStore.from_settings(settings.schema_registry) as store:
        serializer = AvroSerializer.for_topic(store, topic, Trade)
    rng = np.random.default_rng(7)
    keys: list[bytes | None] = []
    values: list[bytes | None] = []
    stamps: list[int] = []
    for i in range(2_400):
        symbol = SYMBOLS[int(rng.integers(len(SYMBOLS)))]
        at = T0 + i * 100_000 - (int(rng.integers(3_000_000)) if i % 40 == 7 else 0)
        trade = Trade(
            symbol, round(100 + float(rng.normal()), 4), int(rng.integers(1, 500)),
            datetime.fromtimestamp(at / 1e6, UTC), "Q", f"t-{i}",
        )  # fmt: skip
        keys.append(symbol.encode())
        values.append(serializer.encode(trade) if i != 1_000 else b"\x00not avro")
        stamps.append(T0 // 1000 + i * 100)
    n = len(values)
    return KafkaRecords.of(keys, values, [0] * n, list(range(n)), stamps)


def _definitions(project: str, prefix: str, topic: str) -> Definitions:
    defs = market_definitions(project, table_prefix=prefix, source_topic=topic)
    return replace(defs, views=tuple(v for v in defs.views if v.name in VIEWS), services=())


def _stored(settings: Settings, defs: Definitions, processor: str) -> dict[str, object]:
    out: dict[str, object] = {}
    with psycopg.connect(settings.postgres.dsn, autocommit=True) as conn:
        for name in VIEWS:
            view = defs.view(name)
            out[name] = conn.execute(
                sql.SQL("SELECT * FROM {} ORDER BY symbol, event_timestamp").format(
                    table_identifier(view.source.table)
                )
            ).fetchall()
        out["offsets"] = conn.execute(
            f"SELECT view, next_offset FROM {STATE_TABLE} WHERE processor = %s ORDER BY view",
            (processor,),
        ).fetchall()
    client = redis.Redis(
        host=settings.redis.host, port=settings.redis.port, db=settings.redis.db,
        **settings.redis.client_kwargs(),
    )  # fmt: skip
    field = timestamp_field("bars_1m")
    with client:
        raw = [client.hget(redis_key(EntityKey.of(symbol=s), defs.project), field) for s in SYMBOLS]  # type: ignore[arg-type]
    out["redis"] = [None if r is None else decode_timestamp(cast(bytes, r)) for r in raw]
    return out


def test_interval_commits_after_a_lost_connection_store_what_commits_per_batch_store(
    stack: Settings, unique_name: Callable[[str], str]
) -> None:
    topic = unique_name("interval")
    records = _records(stack, topic)
    batches = [records.slice(i, i + 150) for i in range(0, len(records), 150)]
    runs: list[dict[str, object]] = []
    for label in ("batch", "interval"):
        defs = _definitions(unique_name(f"iv{label}"), unique_name(f"iv{label}_"), topic)
        with psycopg.connect(stack.postgres.dsn, autocommit=True) as conn:
            create_offline_tables(conn, defs)
            ensure_state_table(conn)
        job = PartitionJob(stack, MaterializedViews.resolve(defs, topic), unique_name(label))
        retrier = Retrier(backoff=Backoff(initial_s=0.05, max_s=0.2))
        if label == "batch":
            batch_runner = PartitionRunner(job, retrier)
            for batch in batches:
                batch_runner.run(batch)
            batch_runner.close()
        else:
            runner = IntervalRunner(job, retrier, commit_s=3600.0)
            for i, batch in enumerate(batches):
                runner.run(batch)
                if i == 2:  # a partition about to be stepped commits from its own step
                    assert runner.flush(force=True, skip={0}) == []
                if i == 4:
                    runner.flush(force=True)  # five batches in one commit
                if i == 9:
                    # The next commit fails: the runner reads its state again and steps
                    # batches 5-9 again before committing them.
                    backend = runner._lanes[0].res.conn.info.backend_pid  # type: ignore[union-attr]
                    with psycopg.connect(stack.postgres.dsn, autocommit=True) as admin:
                        admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
                    runner.flush(force=True)
                    assert runner._lanes[0].res.conn.info.backend_pid != backend  # type: ignore[union-attr]
            runner.close()
        runs.append(_stored(stack, defs, job.processor))
    batch_run, interval_run = runs
    assert batch_run["offsets"] == [("bars_1m", len(records)), ("rolling_1m", len(records))]
    assert interval_run["offsets"] == batch_run["offsets"]
    for name in VIEWS:
        assert len(batch_run[name]) > 10  # type: ignore[arg-type]  # window ends: 6 x 3 minutes
        assert interval_run[name] == batch_run[name], name
    assert None not in batch_run["redis"]  # type: ignore[operator]
    assert interval_run["redis"] == batch_run["redis"]

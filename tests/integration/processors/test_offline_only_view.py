"""A view declared ``online=False`` gets its rows in its offline table and none in Redis."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import psycopg
import pytest
import redis
from psycopg import sql

from featurestore.config import Settings
from featurestore.offline.tables import create_offline_tables
from featurestore.offline.tables import table_identifier
from featurestore.online.base import EntityKey
from featurestore.online.layout import redis_key
from featurestore.online.layout import timestamp_field
from featurestore.resilience import Backoff
from featurestore.resilience import Retrier
from processors.partition_job import PartitionJob
from processors.partition_job import PartitionRunner
from processors.state_table import ensure_state_table
from processors.views import MaterializedViews
from tests.integration.processors.test_interval_runner import SYMBOLS
from tests.integration.processors.test_interval_runner import _definitions
from tests.integration.processors.test_interval_runner import _records

pytestmark = pytest.mark.integration


def test_an_offline_only_view_is_written_to_its_table_and_not_to_redis(
    stack: Settings, unique_name: Callable[[str], str]
) -> None:
    topic = unique_name("offline_only")
    records = _records(stack, topic)
    defs = _definitions(unique_name("oo"), unique_name("oo_"), topic)
    defs = replace(defs, views=tuple(replace(v, online=v.name != "bars_1m") for v in defs.views))
    with psycopg.connect(stack.postgres.dsn, autocommit=True) as conn:
        create_offline_tables(conn, defs)
        ensure_state_table(conn)
    job = PartitionJob(stack, MaterializedViews.resolve(defs, topic), unique_name("oo"))
    runner = PartitionRunner(job, Retrier(backoff=Backoff(initial_s=0.05, max_s=0.2)))
    for start in range(0, len(records), 300):
        runner.run(records.slice(start, start + 300))
    runner.close()
    with psycopg.connect(stack.postgres.dsn, autocommit=True) as conn:
        rows = {
            name: conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(
                    table_identifier(defs.view(name).source.table)
                )
            ).fetchone()
            for name in ("bars_1m", "rolling_1m")
        }
    assert rows["bars_1m"] is not None and rows["bars_1m"][0] > 10
    assert rows["rolling_1m"] is not None and rows["rolling_1m"][0] > 10
    client = redis.Redis(
        host=stack.redis.host, port=stack.redis.port, db=stack.redis.db,
        **stack.redis.client_kwargs(),
    )  # fmt: skip
    with client:
        for symbol in SYMBOLS:
            key = redis_key(EntityKey.of(symbol=symbol), defs.project)
            fields = set(client.hkeys(key))  # type: ignore[arg-type]
            assert timestamp_field("rolling_1m") in fields, symbol
            assert timestamp_field("bars_1m") not in fields, symbol

"""The processor's offline writer: COPY straight in when every key is new, upsert otherwise."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import psycopg
import pyarrow as pa
import pytest
from psycopg import sql

from featurestore.config import Settings
from featurestore.definitions import market_definitions
from featurestore.offline.tables import create_offline_tables
from featurestore.offline.tables import table_identifier
from featurestore.offline.write import OfflineWriter

pytestmark = pytest.mark.integration

T0 = datetime(2024, 3, 1, 14, 30, tzinfo=UTC)


def _rows(names: list[str], closes: list[float], created: datetime) -> pa.Table:
    n = len(closes)
    times = [T0 + timedelta(seconds=i) for i in range(n)]
    columns: dict[str, pa.Array] = {
        "symbol": pa.array(["AAA"] * n),
        "event_timestamp": pa.array(times, pa.timestamp("us", tz="UTC")),
        "created_timestamp": pa.array([created] * n, pa.timestamp("us", tz="UTC")),
        "source_topic": pa.array(["trades"] * n),
        "source_partition": pa.array([0] * n, pa.int32()),
        "source_offset_start": pa.array(list(range(n)), pa.int64()),
        "source_offset_end": pa.array(list(range(n)), pa.int64()),
    }
    for name in names:
        if name == "trade_count":
            columns[name] = pa.array([1] * n, pa.int64())
        else:
            columns[name] = pa.array(closes, pa.float64())
    return pa.table(columns)


def test_new_keys_are_copied_and_stored_keys_upserted_newest_created_wins(
    stack: Settings, unique_name: Callable[[str], str]
) -> None:
    defs = market_definitions(unique_name("owrite"), table_prefix=unique_name("ow_"))
    view = defs.view("bars_1m")
    names = list(view.feature_names)
    with psycopg.connect(stack.postgres.dsn, autocommit=True) as conn:
        create_offline_tables(conn, defs)
        writer = OfflineWriter(conn, defs)
        first = T0 + timedelta(minutes=1)
        with conn.transaction(), conn.cursor() as cur:
            assert writer.write(cur, view, _rows(names, [1.0, 2.0], first)) == 2  # all new
        with conn.transaction(), conn.cursor() as cur:
            # One stored key with a newer created time, one new key: the upsert path.
            newer = _rows(names, [5.0, 6.0, 7.0], first + timedelta(seconds=1)).slice(1)
            assert writer.write(cur, view, newer) == 2
        with conn.transaction(), conn.cursor() as cur:
            older = _rows(names, [9.0, 9.0], first - timedelta(seconds=1))  # never wins
            writer.write(cur, view, older)
        table = table_identifier(view.source.table)
        stored = conn.execute(
            sql.SQL("SELECT event_timestamp, close FROM {} ORDER BY event_timestamp").format(table)
        ).fetchall()
    assert [close for _, close in stored] == [1.0, 6.0, 7.0]

"""Feast projects of their own per test run, with small random data that has ties and gaps.

Two layouts of the same data: ``offline_data`` drops the primary key so that ties on
``event_timestamp`` exist (the join breaks them by ``created_timestamp``), ``pk_offline_data``
keeps the store's own layout (primary key covering the features; ties resolved on write by the
upsert, and the join orders by ``event_timestamp`` alone).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from collections.abc import Iterator

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pytest
from psycopg import sql

from featurestore.apply import apply_definitions
from featurestore.config import Settings
from featurestore.definitions import Definitions
from featurestore.definitions import FeatureView
from featurestore.definitions import market_definitions
from featurestore.offline import write_feature_rows
from featurestore.offline._copy import copy_in
from featurestore.offline.tables import ensure_partitions
from featurestore.offline.tables import table_identifier
from tests.integration.offline.pit_data import OfflineData
from tests.integration.offline.pit_data import view_rows

Connection = psycopg.Connection[tuple[object, ...]]
WriteView = Callable[[Connection, Definitions, FeatureView, pd.DataFrame], None]
"""Writes one view's random rows into its offline table, in a layout of its own."""


def _filled(
    stack: Settings, project: str, table_letter: str, seed: int, write: WriteView
) -> Iterator[OfflineData]:
    """The market definitions under a project and table prefix of this run's own, every view
    filled with random rows (``seed``) by ``write``; the tables are dropped afterwards."""
    run = uuid.uuid4().hex[:8]
    defs = market_definitions(
        f"{project}_{run}", table_prefix=f"{table_letter}{run}_", partition_interval="day"
    )
    apply_definitions(stack, defs)
    rng = np.random.default_rng(seed)
    written: dict[str, pd.DataFrame] = {}
    with psycopg.connect(stack.postgres.dsn, autocommit=True) as conn:
        for view in defs.views:
            rows = view_rows(defs, view.name, rng)
            write(conn, defs, view, rows)
            written[view.name] = rows
    yield OfflineData(stack, defs, written)
    _drop(stack, defs)


def _copy_without_primary_key(
    conn: Connection, defs: Definitions, view: FeatureView, rows: pd.DataFrame
) -> None:
    """Drops the table's primary key (so that ties on event_timestamp can exist), then COPY."""
    table = table_identifier(view.source.table)
    conn.execute(
        sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
            table, sql.Identifier(f"{view.source.name}_pkey")
        )
    )
    conn.execute(sql.SQL("CREATE INDEX ON {} (symbol, event_timestamp)").format(table))
    ensure_partitions(
        conn,
        view,
        rows.event_timestamp.min().to_pydatetime(),
        rows.event_timestamp.max().to_pydatetime(),
    )
    with conn.cursor() as cur:
        arrow = pa.Table.from_pandas(rows, preserve_index=False)
        copy_in(cur, table, arrow.column_names, arrow)


def _upsert(conn: Connection, defs: Definitions, view: FeatureView, rows: pd.DataFrame) -> None:
    write_feature_rows(conn, defs, view.name, rows)


@pytest.fixture(scope="session")
def offline_data(stack: Settings) -> Iterator[OfflineData]:
    """Tables without the primary key (so that ties on event_timestamp can exist), filled."""
    yield from _filled(stack, "test_offline", "t", 7, _copy_without_primary_key)


@pytest.fixture(scope="session")
def pk_offline_data(stack: Settings) -> Iterator[OfflineData]:
    """The same kind of data in tables of the store's own layout, written by the upsert."""
    yield from _filled(stack, "test_offline_pk", "k", 8, _upsert)


def _drop(settings: Settings, defs: Definitions) -> None:
    with psycopg.connect(settings.postgres.dsn, autocommit=True) as conn:
        for view in defs.views:
            conn.execute(
                sql.SQL("DROP TABLE IF EXISTS {}").format(table_identifier(view.source.table))
            )

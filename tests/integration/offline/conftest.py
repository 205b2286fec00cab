"""Feast projects of their own per test run, with small random data that has ties and gaps.

Two layouts of the same data: ``offline_data`` drops the primary key so that ties on
``event_timestamp`` exist (the join breaks them by ``created_timestamp``), ``pk_offline_data``
keeps the store's own layout (primary key covering the features; ties resolved on write by the
upsert, and the join orders by ``event_timestamp`` alone).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pytest
from psycopg import sql

from featurestore.config import Settings
from featurestore.definitions import Definitions, apply_definitions, market_definitions
from featurestore.offline import write_feature_rows
from featurestore.offline._copy import copy_in
from featurestore.offline.tables import ensure_partitions, table_identifier
from tests.integration.offline.pit_data import OfflineData, view_rows


def _applied(stack: Settings, project: str, table_letter: str) -> Definitions:
    """The market definitions, applied under a project and table prefix of this run's own."""
    run = uuid.uuid4().hex[:8]
    definitions = market_definitions(
        f"{project}_{run}", table_prefix=f"{table_letter}{run}_", partition_interval="day"
    )
    apply_definitions(stack, definitions)
    return definitions


@pytest.fixture(scope="session")
def offline_data(stack: Settings) -> Iterator[OfflineData]:
    """Tables without the primary key (so that ties on event_timestamp can exist), filled."""
    defs = _applied(stack, "test_offline", "t")
    rng = np.random.default_rng(7)
    written: dict[str, pd.DataFrame] = {}
    with psycopg.connect(stack.postgres.dsn, autocommit=True) as conn:
        for view in defs.views:
            table = table_identifier(view.source.table)
            conn.execute(
                sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                    table, sql.Identifier(f"{view.source.name}_pkey")
                )
            )
            conn.execute(sql.SQL("CREATE INDEX ON {} (symbol, event_timestamp)").format(table))
            rows = view_rows(defs, view.name, rng)
            ensure_partitions(
                conn,
                view,
                rows.event_timestamp.min().to_pydatetime(),
                rows.event_timestamp.max().to_pydatetime(),
            )
            with conn.cursor() as cur:
                arrow = pa.Table.from_pandas(rows, preserve_index=False)
                copy_in(cur, table, arrow.column_names, arrow)
            written[view.name] = rows
    yield OfflineData(stack, defs, written)
    _drop(stack, defs)


@pytest.fixture(scope="session")
def pk_offline_data(stack: Settings) -> Iterator[OfflineData]:
    """The same kind of data in tables of the store's own layout, written by the upsert."""
    defs = _applied(stack, "test_offline_pk", "k")
    rng = np.random.default_rng(8)
    written: dict[str, pd.DataFrame] = {}
    with psycopg.connect(stack.postgres.dsn, autocommit=True) as conn:
        for view in defs.views:
            rows = view_rows(defs, view.name, rng)
            write_feature_rows(conn, defs, view.name, rows)
            written[view.name] = rows
    yield OfflineData(stack, defs, written)
    _drop(stack, defs)


def _drop(settings: Settings, defs: Definitions) -> None:
    with psycopg.connect(settings.postgres.dsn, autocommit=True) as conn:
        for view in defs.views:
            conn.execute(
                sql.SQL("DROP TABLE IF EXISTS {}").format(table_identifier(view.source.table))
            )

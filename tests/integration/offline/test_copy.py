"""COPY in through CSV keeps every row, whatever the table's chunking."""

from __future__ import annotations

import psycopg
import pyarrow as pa
import pytest
from psycopg import sql

from featurestore.config import Settings
from featurestore.offline._copy import copy_in

pytestmark = pytest.mark.integration


def test_copy_in_a_table_whose_first_chunk_is_empty(stack: Settings) -> None:
    # pyarrow 25 writes NUL bytes for such a table, which COPY refuses.
    schema = pa.schema([("price", pa.float64()), ("symbol", pa.string())])
    empty = pa.record_batch([pa.array([], pa.float64()), pa.array([], pa.string())], schema=schema)
    rows = pa.record_batch([[1.5, 2.0], ["x", "y"]], schema=schema)
    table = pa.Table.from_batches([empty, rows], schema=schema)
    with psycopg.connect(stack.postgres.dsn) as conn, conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE copy_probe (price double precision, symbol text)")
        copy_in(cur, sql.Identifier("copy_probe"), ["price", "symbol"], table)
        stored = cur.execute("SELECT price, symbol FROM copy_probe ORDER BY price").fetchall()
    assert stored == [(1.5, "x"), (2.0, "y")]

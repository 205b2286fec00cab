"""Writing feature rows to the offline tables with an idempotent upsert.

The processors may write through their own connector, as long as they keep the contract of
:mod:`featurestore.offline.tables`; this is the reference writer (tests and benchmarks use it).
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql

from featurestore.definitions.model import Definitions, FeatureView
from featurestore.errors import ValidationError
from featurestore.offline._copy import copy_in
from featurestore.offline.tables import LINEAGE_COLUMNS, ensure_partitions, table_identifier

__all__ = ["upsert_from_staging", "write_feature_rows"]


def write_feature_rows(
    conn: psycopg.Connection[tuple[object, ...]],
    definitions: Definitions,
    view_name: str,
    rows: pa.Table | pd.DataFrame,
) -> int:
    """Upsert feature rows into a view's offline table; returns the number of rows sent.

    A row replaces the stored row of the same key and ``event_timestamp`` only when its
    ``created_timestamp`` is not older, so replaying the event log is idempotent and a late
    recomputation wins. Lineage columns are optional in ``rows``.
    """
    view = definitions.view(view_name)
    table = rows if isinstance(rows, pa.Table) else pa.Table.from_pandas(rows, preserve_index=False)
    if table.num_rows == 0:
        return 0
    keys = [definitions.entity(name).join_key for name in view.entities]
    src = view.source
    columns = [*keys, src.timestamp_field, src.created_timestamp_column, *view.feature_names]
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise ValidationError(f"{view.name}: rows lack columns {missing}", field=missing[0])
    columns += [name for name, _ in LINEAGE_COLUMNS if name in table.column_names]
    ts = table.column(src.timestamp_field)
    bounds = pc.min_max(ts).as_py()
    start, end = bounds["min"], bounds["max"]
    if not isinstance(start, datetime) or not isinstance(end, datetime):
        raise ValidationError(f"{view.name}: null {src.timestamp_field}", field=src.timestamp_field)
    ensure_partitions(conn, view, start, end)
    with conn.transaction(), conn.cursor() as cur:
        staging = sql.Identifier(f"_stage_{view.name}")
        cur.execute(
            sql.SQL(
                "CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS)"
                " ON COMMIT DELETE ROWS"
            ).format(staging, table_identifier(src.table))
        )
        copy_in(cur, staging, columns, table)
        cur.execute(upsert_from_staging(view, keys, columns, staging))
    return int(table.num_rows)


def upsert_from_staging(
    view: FeatureView,
    keys: list[str],
    columns: list[str],
    staging: sql.Identifier,
    *,
    unique: bool = False,
) -> sql.Composed:
    """``INSERT ... ON CONFLICT`` from ``staging`` into the view's table; newer created wins.

    A stored row is replaced only by a row whose ``created_timestamp`` is not older. Without
    ``unique``, a ``DISTINCT ON`` keeps the latest created row when the staging table holds a key
    twice; callers whose rows are unique per key (the processors) skip that sort.
    """
    src = view.source
    conflict = [*keys, src.timestamp_field]
    updates = [c for c in columns if c not in conflict]
    cols = sql.SQL(", ").join(map(sql.Identifier, columns))
    order = sql.SQL(", ").join(map(sql.Identifier, conflict))
    created = sql.Identifier(src.created_timestamp_column)
    select = (
        sql.SQL("SELECT {cols} FROM {staging}")
        if unique
        else sql.SQL(
            "SELECT DISTINCT ON ({order}) {cols} FROM {staging} ORDER BY {order}, {created} DESC"
        )
    ).format(cols=cols, staging=staging, order=order, created=created)
    return sql.SQL(
        "INSERT INTO {target} AS t ({cols}) {select} "
        "ON CONFLICT ({order}) DO UPDATE SET {updates} "
        "WHERE excluded.{created} >= t.{created}"
    ).format(
        target=table_identifier(src.table),
        cols=cols,
        select=select,
        order=order,
        created=created,
        updates=sql.SQL(", ").join(
            sql.SQL("{0} = excluded.{0}").format(sql.Identifier(c)) for c in updates
        ),
    )

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

__all__ = ["write_feature_rows"]


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
        cur.execute(_upsert(view, keys, columns, staging))
    return int(table.num_rows)


def _upsert(
    view: FeatureView, keys: list[str], columns: list[str], staging: sql.Identifier
) -> sql.Composed:
    src = view.source
    conflict = [*keys, src.timestamp_field]
    updates = [c for c in columns if c not in conflict]
    target = table_identifier(src.table)
    col_list = sql.SQL(", ").join(map(sql.Identifier, columns))
    # DISTINCT ON keeps the latest created row when one batch holds the same key twice.
    order = sql.SQL(", ").join(map(sql.Identifier, conflict))
    return sql.SQL(
        "INSERT INTO {target} AS t ({cols}) "
        "SELECT DISTINCT ON ({order}) {cols} FROM {staging} ORDER BY {order}, {created} DESC "
        "ON CONFLICT ({order}) DO UPDATE SET {updates} "
        "WHERE excluded.{created} >= t.{created}"
    ).format(
        target=target,
        cols=col_list,
        order=order,
        staging=staging,
        created=sql.Identifier(src.created_timestamp_column),
        updates=sql.SQL(", ").join(
            sql.SQL("{0} = excluded.{0}").format(sql.Identifier(c)) for c in updates
        ),
    )

"""Writing feature rows to the offline tables with an idempotent upsert: the one writer.

A row replaces the stored row of the same key and ``event_timestamp`` only when its
``created_timestamp`` is not older, so replaying the event log is idempotent and a late
recomputation wins. The table contract is :mod:`featurestore.offline.tables`.

:class:`OfflineWriter` writes inside the caller's transaction and remembers the staging tables
and time partitions it has made, so that a processor's micro-batch costs one COPY (and at most
one INSERT) per view. A batch whose keys are all new is COPYed straight into the table (under a
savepoint); otherwise it is COPYed into a temporary staging table, then one ``INSERT ... ON
CONFLICT`` keeps the stored row only when it is newer. Each write records its table and
event-time range in the change log (:mod:`featurestore.offline.changes`), in the same
transaction. :func:`write_feature_rows` is the same writer for one table of rows in a
transaction of its own (demos, corrections, tests).
"""

from __future__ import annotations

from datetime import datetime
from datetime import timedelta

import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql

from featurestore.definitions.columns import LINEAGE_COLUMNS
from featurestore.definitions.model import Definitions
from featurestore.definitions.model import FeatureView
from featurestore.error_maps import postgres_errors
from featurestore.errors import ValidationError
from featurestore.offline._copy import copy_in
from featurestore.offline.changes import record_change
from featurestore.offline.tables import ensure_partitions
from featurestore.offline.tables import table_identifier

__all__ = ["OfflineWriter", "upsert_from_staging", "write_feature_rows"]


class OfflineWriter:
    """Writes rows of the views of one definitions set through one connection."""

    def __init__(
        self, conn: psycopg.Connection[tuple[object, ...]], definitions: Definitions
    ) -> None:
        """Write through ``conn``, inside whatever transaction its caller holds."""
        self._conn = conn
        self._definitions = definitions
        self._staged: set[str] = set()
        self._days: set[tuple[str, object]] = set()

    def write(
        self,
        cur: psycopg.Cursor[tuple[object, ...]],
        view: FeatureView,
        rows: pa.Table,
        *,
        unique: bool = True,
    ) -> int:
        """Upsert ``rows`` (the offline contract's columns) into the view's table.

        Lineage columns absent from ``rows`` are left to their defaults. ``unique``: the rows
        hold each (key, ``event_timestamp``) once, as a processor's step does; otherwise the
        latest created row of a repeated key is kept.
        """
        if rows.num_rows == 0:
            return 0
        src = view.source
        keys = [self._definitions.entity(name).join_key for name in view.entities]
        columns = [*keys, src.timestamp_field, src.created_timestamp_column, *view.feature_names]
        columns += [name for name, _ in LINEAGE_COLUMNS if name in rows.column_names]
        times = rows.column(src.timestamp_field)
        self.ensure_partitions(view, times)
        bounds = pc.min_max(times).as_py()
        record_change(cur, src.table, bounds["min"], bounds["max"])
        target = table_identifier(src.table)
        try:
            # In a running stream nearly every key is new: COPY straight into the table, under a
            # savepoint. A key already stored (a trade time re-emitted across batches, a restart
            # after `processors reset`) or repeated in the rows raises, and the batch takes the
            # upsert below instead.
            with self._conn.transaction():
                copy_in(cur, target, columns, rows)
            return int(rows.num_rows)
        except psycopg.errors.UniqueViolation:
            pass
        staging = sql.Identifier(f"_stage_{view.name}")
        if view.name not in self._staged:
            cur.execute(
                sql.SQL(
                    "CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS)"
                    " ON COMMIT DELETE ROWS"
                ).format(staging, table_identifier(src.table))
            )
            self._staged.add(view.name)
        copy_in(cur, staging, columns, rows)
        cur.execute(upsert_from_staging(view, keys, columns, staging, unique=unique))
        return int(rows.num_rows)

    def ensure_partitions(self, view: FeatureView, times: pa.ChunkedArray) -> None:
        """Create the view's time partitions of ``times`` that this writer has not made yet."""
        bounds = pc.min_max(times).as_py()
        start, end = bounds["min"], bounds["max"]
        assert isinstance(start, datetime) and isinstance(end, datetime)
        first = start.date()
        days = {
            (view.source.table, first + timedelta(days=k))
            for k in range((end.date() - first).days + 1)
        }
        if days <= self._days:
            return
        ensure_partitions(self._conn, view, start, end)
        self._days |= days


def write_feature_rows(
    conn: psycopg.Connection[tuple[object, ...]],
    definitions: Definitions,
    view_name: str,
    rows: pa.Table | pd.DataFrame,
) -> int:
    """Upsert feature rows into a view's offline table; returns the number of rows sent.

    In a transaction of its own; a key repeated in ``rows`` keeps its latest created row.
    Lineage columns are optional in ``rows``.

    Raises:
        ValidationError: ``rows`` lack a column of the view, or have a null event time.
        FeatureStoreError: PostgreSQL's errors, as
            :func:`~featurestore.error_maps.postgres_error` maps them (a table without a column
            the view declares: ConfigurationError).
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
    bounds = pc.min_max(table.column(src.timestamp_field)).as_py()
    if not isinstance(bounds["min"], datetime) or not isinstance(bounds["max"], datetime):
        raise ValidationError(f"{view.name}: null {src.timestamp_field}", field=src.timestamp_field)
    writer = OfflineWriter(conn, definitions)
    with postgres_errors(f"writing rows of feature view {view.name!r}"):
        # Before the write's transaction: partition creation's lock is then not held during it.
        writer.ensure_partitions(view, table.column(src.timestamp_field))
        with conn.transaction(), conn.cursor() as cur:
            return writer.write(cur, view, table, unique=False)


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

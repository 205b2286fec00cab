"""Feature rows into the offline tables, inside the caller's transaction.

The rows of a step are unique per (entity, event_timestamp) (the engine's re-emissions are
collapsed before), so no DISTINCT ON and no sort. A batch whose keys are all new is COPYed straight
into the table (under a savepoint); otherwise COPY into a temporary staging table, then one
``INSERT ... ON CONFLICT`` that keeps the stored row only when it is newer (``created_timestamp``),
with the statement :func:`featurestore.offline.write_feature_rows` uses. The table contract is
:mod:`featurestore.offline.tables`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql

from featurestore.definitions.model import Definitions, FeatureView
from featurestore.offline._copy import copy_in
from featurestore.offline.tables import LINEAGE_COLUMNS, ensure_partitions, table_identifier
from featurestore.offline.write import upsert_from_staging

__all__ = ["OfflineWriter"]


class OfflineWriter:
    """Writes rows of the views of one definitions set through one connection.

    Remembers which staging tables and time partitions it has already made, so that a
    micro-batch costs one COPY and one INSERT per view.
    """

    def __init__(self, conn: psycopg.Connection[tuple[object, ...]], definitions: Definitions):
        self._conn = conn
        self._definitions = definitions
        self._staged: set[str] = set()
        self._days: set[tuple[str, object]] = set()

    def write(
        self, cur: psycopg.Cursor[tuple[object, ...]], view: FeatureView, rows: pa.Table
    ) -> int:
        """Upsert ``rows`` (the offline contract's columns) into the view's table."""
        if rows.num_rows == 0:
            return 0
        src = view.source
        keys = [self._definitions.entity(name).join_key for name in view.entities]
        columns = [*keys, src.timestamp_field, src.created_timestamp_column, *view.feature_names]
        columns += [name for name, _ in LINEAGE_COLUMNS]
        self._ensure_partitions(view, rows.column(src.timestamp_field))
        target = table_identifier(src.table)
        try:
            # In a running stream nearly every key is new: COPY straight into the table, under a
            # savepoint. A key already stored (a trade time re-emitted across batches, a restart
            # after `processors reset`) raises, and the batch takes the upsert below instead.
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
        cur.execute(upsert_from_staging(view, keys, columns, staging, unique=True))
        return int(rows.num_rows)

    def _ensure_partitions(self, view: FeatureView, times: pa.ChunkedArray) -> None:
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

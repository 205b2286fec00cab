"""The offline tables' change log: which event-time range each committed write touched.

Every writer of the offline tables (:class:`featurestore.offline.write.OfflineWriter`, and the
corrections' deletes) records, in its own transaction, the table and the first and last event
time it wrote or deleted, with the transaction's id. A derived copy of a table
(:mod:`featurestore.offline.column_copy`) remembers the PostgreSQL snapshot it read; it is still
exact for the times before ``until`` when no change committed outside that snapshot touched a
time before ``until``: one indexed query, :func:`changed_since`.

A transaction that is rolled back leaves no row, so nothing invalidates a copy for nothing.
What a writer does not record (an ``INSERT`` typed by hand in SQL) is not seen here; the copy
also compares the table's storage files (:func:`storage_of`), so a ``TRUNCATE``, a dropped or
added partition, or a table rewritten by ``VACUUM FULL`` invalidates it too.

Rows older than :data:`KEPT_DAYS` are pruned; a copy older than that is rebuilt, not checked.
"""

from __future__ import annotations

from datetime import datetime
from datetime import timedelta

import psycopg

__all__ = [
    "CHANGES_TABLE",
    "KEPT_DAYS",
    "RECENT",
    "TABLE_AND_PARTITIONS",
    "changed_since",
    "create_changes_table",
    "prune_changes",
    "record_change",
    "storage_of",
    "written_lately",
]

Conn = psycopg.Connection[tuple[object, ...]]
Cursor = psycopg.Cursor[tuple[object, ...]]

CHANGES_TABLE = "featurestore_offline_changes"
KEPT_DAYS = 7
"""Days a change row is kept: copies built longer ago than that are rebuilt, not checked."""
TABLE_AND_PARTITIONS = (
    "(c.oid = to_regclass(%s)"
    " OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = to_regclass(%s)))"
)
"""``pg_class c`` rows of a table and of its partitions (or chunks); two parameters, the table."""
RECENT = timedelta(minutes=30)
"""Writes starting this close to the present are not recorded (:func:`record_change`)."""


def create_changes_table(conn: Conn) -> None:
    """Create the change log if it does not exist (with the offline tables)."""
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {CHANGES_TABLE} ("
        " table_name text NOT NULL,"
        " first_ts timestamptz NOT NULL,"
        " last_ts timestamptz NOT NULL,"
        " xid xid8 NOT NULL DEFAULT pg_current_xact_id(),"
        " recorded_at timestamptz NOT NULL DEFAULT now())"
    )
    conn.execute(
        f"CREATE INDEX IF NOT EXISTS {CHANGES_TABLE}_xid ON {CHANGES_TABLE} (table_name, xid)"
    )


def record_change(cur: Cursor, table: str, first: datetime, last: datetime) -> None:
    """Record, in the caller's transaction, that ``table``'s rows in ``first..last`` changed.

    A write that starts less than :data:`RECENT` before its transaction began is not recorded: a
    copy holds rows over an hour old (:data:`~featurestore.offline.column_copy.SETTLE`), so such
    a write cannot touch any copy's past unless its transaction stays open for half an hour. A
    stream's micro-batches, at the present, then leave no row; late events, backfills and
    corrections do.
    """
    cur.execute(
        f"INSERT INTO {CHANGES_TABLE} (table_name, first_ts, last_ts)"
        " SELECT %s, %s, %s WHERE %s < now() - %s",
        (table, first, last, first, RECENT),
    )


def changed_since(conn: Conn, table: str, snapshot: str, until: datetime) -> bool:
    """Whether a change not visible in ``snapshot`` touched ``table`` before ``until``.

    ``snapshot`` is the text of a ``pg_snapshot``. Only transactions from its ``xmin`` on can be
    invisible in it, so the index on ``(table_name, xid)`` reads only the rows since then.
    """
    row = conn.execute(
        f"SELECT EXISTS (SELECT 1 FROM {CHANGES_TABLE} WHERE table_name = %s"
        " AND xid >= pg_snapshot_xmin(%s::pg_snapshot) AND first_ts < %s"
        " AND NOT pg_visible_in_snapshot(xid, %s::pg_snapshot))",
        (table, snapshot, until, snapshot),
    ).fetchone()
    return bool(row and row[0])


def written_lately(conn: Conn, table: str, until: datetime, quiet: timedelta) -> bool:
    """Whether a change to ``table`` before ``until`` was recorded less than ``quiet`` ago.

    A table whose past is still being written (a backfill, a processor catching up) would retire
    a new copy at once: its copy waits until the writes stop.
    """
    row = conn.execute(
        f"SELECT EXISTS (SELECT 1 FROM {CHANGES_TABLE} WHERE table_name = %s AND first_ts < %s"
        " AND recorded_at > now() - %s)",
        (table, until, quiet),
    ).fetchone()
    return bool(row and row[0])


def prune_changes(conn: Conn) -> int:
    """Delete change rows older than :data:`KEPT_DAYS`; returns how many went."""
    cur = conn.execute(
        f"DELETE FROM {CHANGES_TABLE} WHERE recorded_at < now() - make_interval(days => %s)",
        (KEPT_DAYS,),
    )
    return cur.rowcount


def storage_of(conn: Conn, table: str) -> list[list[int]]:
    """``[oid, relfilenode]`` of the table and each of its partitions (or chunks), sorted.

    Changes when a partition is added or dropped, and when one is truncated or rewritten; empty
    when the table does not exist.
    """
    rows = conn.execute(
        f"SELECT c.oid::int8, c.relfilenode::int8 FROM pg_class c WHERE {TABLE_AND_PARTITIONS}"
        " ORDER BY 1",
        (table, table),
    ).fetchall()
    return [[int(str(oid)), int(str(node))] for oid, node in rows]

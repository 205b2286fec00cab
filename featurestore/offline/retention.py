"""Retention of the offline tables: partitions wholly past a view's retention are dropped.

A view's table keeps rows for ``SourceTable.retention`` (the ``retention`` tag of its
``PostgreSQLSource``, e.g. ``30d``). Rows are derived from the event log, which keeps every
event, so nothing is lost for good: a dropped range comes back by replaying it (``featurestore
processors backfill``, with a longer retention or none while the rows are wanted).

Only whole partitions go: a partition is dropped once its upper bound is at or before
``now - retention``, so a table holds between ``retention`` and ``retention`` plus one
partition interval of rows. On a TimescaleDB hypertable, ``drop_chunks`` does the same with
its chunks. ``featurestore monitor`` runs :func:`apply_retention` every
``postgres.retention_interval_s``; ``featurestore retention`` runs it once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime

import psycopg
from psycopg import sql

from featurestore.definitions.model import FeatureView
from featurestore.offline.tables import has_timescaledb

__all__ = ["DroppedRange", "apply_retention", "describe", "expired_partitions"]

_BOUNDS = re.compile(r"FOR VALUES FROM \('([^']+)'\) TO \('([^']+)'\)")

Conn = psycopg.Connection[tuple[object, ...]]


@dataclass(frozen=True)
class DroppedRange:
    """Rows of ``[lower, upper)`` of a view's table that retention dropped (or would drop)."""

    view: str
    table: str
    partition: str
    """The partition's name, or ``chunks`` on a hypertable."""
    lower: datetime | None
    upper: datetime


@dataclass(frozen=True)
class _Partition:
    schema: str
    name: str
    lower: datetime
    upper: datetime


def _partitions(conn: Conn, table: str) -> list[_Partition]:
    """The range partitions of ``table`` with their bounds (in UTC), oldest first."""
    with conn.transaction():
        conn.execute("SET LOCAL TimeZone = 'UTC'")  # bounds are printed in the session's zone
        rows = conn.execute(
            "SELECT n.nspname, c.relname, pg_get_expr(c.relpartbound, c.oid) "
            "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE i.inhparent = %s::regclass",
            (table,),
        ).fetchall()
    found = []
    for schema, name, bound in rows:
        match = _BOUNDS.fullmatch(str(bound))
        if match is None:  # MINVALUE, MAXVALUE or a default partition: not ours, kept
            continue
        lower, upper = (datetime.fromisoformat(v).astimezone(UTC) for v in match.groups())
        found.append(_Partition(str(schema), str(name), lower, upper))
    return sorted(found, key=lambda p: p.lower)


def _cutoff(view: FeatureView, now: datetime) -> datetime | None:
    retention = view.source.retention
    return None if retention is None else now.astimezone(UTC) - retention


def _is_partitioned(conn: Conn, table: str) -> bool | None:
    """True: native range partitions; False: a plain table; None: no such table."""
    exists = conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()
    if exists is None or exists[0] is None:
        return None
    partitioned = conn.execute(
        "SELECT 1 FROM pg_partitioned_table WHERE partrelid = %s::regclass", (table,)
    ).fetchone()
    return partitioned is not None


def expired_partitions(conn: Conn, view: FeatureView, now: datetime) -> list[DroppedRange]:
    """The partitions of ``view``'s table wholly older than ``now - retention``."""
    cutoff = _cutoff(view, now)
    table = view.source.table
    if cutoff is None or not _is_partitioned(conn, table):
        return []
    return [
        DroppedRange(view.name, table, p.name, p.lower, p.upper)
        for p in _partitions(conn, table)
        if p.upper <= cutoff
    ]


def apply_retention(
    conn: Conn, views: Iterable[FeatureView], now: datetime | None = None, *, dry_run: bool = False
) -> list[DroppedRange]:
    """Drop what each view's retention no longer keeps; returns what went (or would go).

    Each table's partitions are dropped under the advisory lock :func:`ensure_partitions`
    takes, so a writer creating a partition at the same time waits. Views without a retention,
    and tables that do not exist yet, are left alone.
    """
    now = now or datetime.now(UTC)
    dropped: list[DroppedRange] = []
    timescale = has_timescaledb(conn)
    for view in views:
        cutoff = _cutoff(view, now)
        table = view.source.table
        if cutoff is None:
            continue
        kind = _is_partitioned(conn, table)
        if kind is None:
            continue
        if not kind:  # a hypertable (TimescaleDB's chunks), or a plain table: kept whole
            if timescale:
                if not dry_run:
                    conn.execute(
                        "SELECT drop_chunks(%s::regclass, older_than => %s)", (table, cutoff)
                    )
                dropped.append(DroppedRange(view.name, table, "chunks", None, cutoff))
            continue
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (table,))
            expired = expired_partitions(conn, view, now)
            for part in expired:
                if not dry_run:
                    conn.execute(
                        sql.SQL("DROP TABLE {}").format(sql.Identifier(view.source.schema,
                                                                       part.partition))
                    )  # fmt: skip
            dropped += expired
    return dropped


def describe(dropped: DroppedRange) -> str:
    """One line for a log or the CLI."""
    since = f"{dropped.lower:%Y-%m-%d %H:%M}" if dropped.lower else "the start"
    return (
        f"{dropped.view}: {dropped.table} {dropped.partition} "
        f"[{since}, {dropped.upper:%Y-%m-%d %H:%M}) UTC"
    )

"""The offline tables: one PostgreSQL table per feature view, time-partitioned.

This layout is the contract between the processors that write feature rows and the export
that reads them::

    <symbol join key>    text         NOT NULL  -- entity key, one column per entity
    event_timestamp      timestamptz  NOT NULL  -- event time the row describes
    created_timestamp    timestamptz  NOT NULL  -- when the row was computed (ties go to the latest)
    <feature>            double precision | bigint | text | boolean, NULL allowed
    source_topic         text                   -- lineage: Kafka topic,
    source_partition     integer                --   partition,
    source_offset_start  bigint                 --   and offset range the row was computed from
    source_offset_end    bigint
    PRIMARY KEY (<join keys>, event_timestamp)  -- processors upsert idempotently on it
        INCLUDE (<fixed-width features>)        -- point-in-time probes read only the index

With TimescaleDB installed the table is a hypertable on ``event_timestamp``; otherwise it is
natively range-partitioned by ``event_timestamp`` (a partition per day or month, created on demand
by :func:`ensure_partitions`; there is no default partition, so a write outside every partition
fails loudly instead of landing somewhere that blocks later partitions). Writers call
:func:`ensure_partitions` for the time range of a batch before writing it, or use
:func:`featurestore.offline.write.write_feature_rows`, which does.

A table is created once, when its view is first applied, and never altered: ``registry apply``
refuses a view whose table exists with other columns than it declares
(:func:`~featurestore.definitions.validate.check_tables` on :func:`table_columns`).
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Sequence
from datetime import UTC
from datetime import datetime

import psycopg
from psycopg import sql

from featurestore.definitions.model import Definitions
from featurestore.definitions.model import FeatureView
from featurestore.definitions.model import ValueType
from featurestore.definitions.validate import offline_columns
from featurestore.errors import ConfigurationError
from featurestore.offline.changes import create_changes_table

__all__ = [
    "covered_features",
    "create_offline_table",
    "create_offline_tables",
    "ensure_partitions",
    "has_timescaledb",
    "partition_bounds",
    "table_columns",
    "table_identifier",
]

_FIXED_WIDTH = (ValueType.FLOAT64, ValueType.INT64, ValueType.BOOL)
_MAX_COVERED = 200
"""At most this many covered features: 200 x 9 bytes stays well under PostgreSQL's 2.7 kB."""


def table_identifier(table: str) -> sql.Identifier:
    """A quoted, optionally schema-qualified identifier for ``schema.table`` or ``table``."""
    return sql.Identifier(*table.split(".", 1))


def has_timescaledb(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    """Whether the TimescaleDB extension can be used on this server."""
    row = conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    return row is not None


def _columns(view: FeatureView, join_keys: Sequence[str]) -> sql.Composed:
    src = view.source
    required = {*join_keys, src.timestamp_field, src.created_timestamp_column}
    parts = [
        sql.SQL("{} {}{}").format(
            sql.Identifier(name),
            sql.SQL(kind),
            sql.SQL(" NOT NULL" if name in required else ""),
        )
        for name, kind in offline_columns(view, join_keys).items()
    ]
    keys = [*join_keys, src.timestamp_field]
    primary_key = sql.SQL("PRIMARY KEY ({})").format(sql.SQL(", ").join(map(sql.Identifier, keys)))
    covered = covered_features(view)
    if covered:
        primary_key = sql.SQL("{} INCLUDE ({})").format(
            primary_key, sql.SQL(", ").join(map(sql.Identifier, covered))
        )
    parts.append(primary_key)
    return sql.SQL(", ").join(parts)


def table_columns(
    conn: psycopg.Connection[tuple[object, ...]], tables: Iterable[str]
) -> dict[str, dict[str, str]]:
    """The columns (name -> type, as ``format_type`` writes it) of each of ``tables`` that exists.

    Tables are named as a view's ``source.table`` names them (``schema.table`` or ``table``).
    """
    found = {}
    for table in tables:
        name = table_identifier(table).as_string(conn)
        rows = conn.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a"
            " WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped"
            " ORDER BY a.attnum",
            (name,),
        ).fetchall()
        if rows:
            found[table] = {str(column): str(kind) for column, kind in rows}
    return found


def covered_features(view: FeatureView) -> list[str]:
    """The features the primary key index carries: the fixed-width ones (numbers, booleans).

    With them in the index a point-in-time probe is an index-only scan (no heap visit); text
    features stay out so that an index entry never outgrows a third of a page.
    """
    return [f.name for f in view.features if f.value_type in _FIXED_WIDTH][:_MAX_COVERED]


def create_offline_table(
    conn: psycopg.Connection[tuple[object, ...]], view: FeatureView, join_keys: Sequence[str]
) -> str:
    """Create the view's table if it does not exist; returns how it is partitioned."""
    src = view.source
    create_changes_table(conn)
    if src.partition_interval not in ("day", "month"):
        raise ConfigurationError(
            f"{view.name}: partition_interval must be day or month, not {src.partition_interval!r}"
        )
    ident = table_identifier(src.table)
    columns = _columns(view, join_keys)
    if src.schema != "public":
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(src.schema)))
    if has_timescaledb(conn):
        conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(ident, columns))
        conn.execute(
            "SELECT create_hypertable(%s::regclass, by_range(%s, %s::interval), "
            "if_not_exists => true)",
            (src.table, src.timestamp_field, f"1 {src.partition_interval}"),
        )
        return "timescaledb hypertable"
    conn.execute(
        sql.SQL("CREATE TABLE IF NOT EXISTS {} ({}) PARTITION BY RANGE ({})").format(
            ident, columns, sql.Identifier(src.timestamp_field)
        )
    )
    return f"range partitions per {src.partition_interval}"


def create_offline_tables(
    conn: psycopg.Connection[tuple[object, ...]], definitions: Definitions
) -> dict[str, str]:
    """Create every view's table; returns ``{table: partitioning}``."""
    created = {}
    for view in definitions.views:
        keys = [definitions.entity(name).join_key for name in view.entities]
        created[view.source.table] = create_offline_table(conn, view, keys)
    return created


def _floor(ts: datetime, interval: str) -> datetime:
    ts = ts.astimezone(UTC)
    if interval == "day":
        return datetime(ts.year, ts.month, ts.day, tzinfo=UTC)
    return datetime(ts.year, ts.month, 1, tzinfo=UTC)


def _next(start: datetime, interval: str) -> datetime:
    if interval == "day":
        return datetime.fromordinal(start.toordinal() + 1).replace(tzinfo=UTC)
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


def partition_bounds(
    start: datetime, end: datetime, interval: str
) -> list[tuple[datetime, datetime]]:
    """The ``[lower, upper)`` bounds of the partitions covering ``start..end`` inclusive."""
    bounds = []
    lower = _floor(start, interval)
    while lower <= end:
        upper = _next(lower, interval)
        bounds.append((lower, upper))
        lower = upper
    return bounds


def ensure_partitions(
    conn: psycopg.Connection[tuple[object, ...]],
    view: FeatureView,
    start: datetime,
    end: datetime,
) -> list[str]:
    """Create the partitions that hold ``start..end`` (inclusive); returns those created.

    Safe to call from several writers at once: creation is serialized by an advisory lock per
    table. A no-op on a TimescaleDB hypertable (it creates chunks itself).
    """
    src = view.source
    is_partitioned = conn.execute(
        "SELECT 1 FROM pg_partitioned_table WHERE partrelid = %s::regclass", (src.table,)
    ).fetchone()
    if is_partitioned is None:
        return []
    created = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (src.table,))
        existing = {
            str(row[0])
            for row in conn.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = %s::regclass",
                (src.table,),
            )
        }
        fmt = "%Y%m%d" if src.partition_interval == "day" else "%Y%m"
        for lower, upper in partition_bounds(start, end, src.partition_interval):
            name = f"{src.name}_p{lower.strftime(fmt)}"
            if name in existing:
                continue
            target = sql.Identifier(src.schema, name)
            conn.execute(
                sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})").format(
                    target,
                    table_identifier(src.table),
                    sql.Literal(lower),
                    sql.Literal(upper),
                )
            )
            created.append(name)
    return created

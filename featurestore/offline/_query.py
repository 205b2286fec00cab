"""The SQL of the point-in-time join: one ``LEFT JOIN LATERAL ... LIMIT 1`` per feature view.

For each entity row and view, PostgreSQL walks the view's primary-key index
``(key, event_timestamp)`` backwards from ``t`` and stops at the first row: an index probe per
entity row and view, whatever the size of the table (dense tables with a row per trade cost the
same per probe as minute bars), and nothing but the answer leaves the server. Entity rows are
sent sorted by (key, timestamp) so that consecutive probes touch neighbouring index pages.

The primary key carries the view's fixed-width features as ``INCLUDE`` columns
(:mod:`featurestore.offline.tables`), so a probe is an index-only scan: no visit to the table's
heap. When ``(key, event_timestamp)`` is unique in the table, ties on ``event_timestamp`` cannot
exist and the probe orders by ``event_timestamp`` alone (no sort node per probe); otherwise ties
go to the latest ``created_timestamp``.

Labels (:mod:`featurestore.offline.labels`) are two more probes on the price view per row: the
first bar strictly after ``t`` and the last bar at or before ``t + horizon``. The exit price is
null until the horizon has passed (a bar of the key at or after ``t + horizon``), told by the
latest bar of each of the chunk's keys: one probe per key, in the same query (one snapshot)
rather than a second query per chunk.

Two output forms: :func:`join_query` returns the values as they are (read as CSV, any type), and
:func:`binary_query` wraps it so that every column is fixed-width and never null (nulls as a
bit mask), sent as one array per column, which :mod:`featurestore.offline._binary` reads without
per-row work.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import pyarrow as pa
from psycopg import sql

from featurestore.definitions.model import Feature
from featurestore.definitions.model import FeatureView
from featurestore.definitions.model import ValueType
from featurestore.offline._binary import FixedColumn
from featurestore.offline.labels import latest_seen_sql
from featurestore.offline.tables import table_identifier

__all__ = [
    "ENTITY_TABLE",
    "LABEL_ENTRY",
    "LABEL_EXIT",
    "BinaryQuery",
    "LabelJoin",
    "NullMasked",
    "ViewJoin",
    "arrow_type",
    "binary_query",
    "fixed_pg_type",
    "join_query",
    "null_masked",
]

ENTITY_TABLE = "_pit_entities"
"""The session's temporary table of entity rows: ``(ord bigint, key text, ts timestamptz)``."""

LABEL_ENTRY = "_label_entry_price"
LABEL_EXIT = "_label_exit_price"
"""Output columns of the label probes (prices), turned into labels by the caller."""

_ARROW = {
    ValueType.FLOAT64: pa.float64(),
    ValueType.INT64: pa.int64(),
    ValueType.STRING: pa.string(),
    ValueType.BOOL: pa.bool_(),
}
_FIXED = {ValueType.FLOAT64: "float8", ValueType.INT64: "int8", ValueType.BOOL: "bool"}
_ZERO = {"float8": "0::float8", "int8": "0::int8", "bool": "false"}
_MASK_BITS = 62
"""Null flags per ``bigint`` mask column (bit 63 left alone: the sign)."""


def arrow_type(value_type: ValueType) -> pa.DataType:
    """The Arrow type of a feature's values."""
    return _ARROW[value_type]


@dataclass(frozen=True)
class ViewJoin:
    """One view's part of the join: which features, under which output names."""

    view: FeatureView
    join_key: str
    features: tuple[Feature, ...]
    output_names: tuple[str, ...]
    unique: bool = False
    """Whether ``(join_key, event_timestamp)`` is unique in the table (no ties possible)."""


@dataclass(frozen=True)
class LabelJoin:
    """The label probes: prices of one view's column around each entity row's time."""

    view: FeatureView
    join_key: str
    price: Feature
    horizon: timedelta
    max_wait: timedelta
    max_staleness: timedelta
    unique: bool = False


def _order(
    alias: str, ts: sql.Identifier, created: str, direction: str, unique: bool
) -> sql.Composable:
    """``ORDER BY`` of a probe; ties (impossible when unique) go to the latest created row."""
    order = sql.SQL("{}.{} " + direction).format(sql.Identifier(alias), ts)
    if unique:
        return order
    return sql.SQL("{}, {}.{} DESC").format(order, sql.Identifier(alias), sql.Identifier(created))


def _view_lateral(index: int, join: ViewJoin) -> tuple[list[sql.Composable], sql.Composable]:
    alias = sql.Identifier(f"v{index}")
    src = join.view.source
    ts = sql.Identifier(src.timestamp_field)
    selects: list[sql.Composable] = [
        sql.SQL("{}.{} AS {}").format(alias, sql.Identifier(f.name), sql.Identifier(out))
        for f, out in zip(join.features, join.output_names, strict=True)
    ]
    ttl_bound: sql.Composable = sql.SQL("")
    seconds = join.view.ttl.total_seconds()
    if seconds > 0:
        ttl_bound = sql.SQL(" AND f.{ts} >= e.ts - {secs} * interval '1 second'").format(
            ts=ts, secs=sql.Literal(seconds)
        )
    lateral = sql.SQL(
        " LEFT JOIN LATERAL (SELECT {cols} FROM {table} f"
        " WHERE f.{key} = e.key AND f.{ts} <= e.ts{ttl}"
        " ORDER BY {order} LIMIT 1) {alias} ON true"
    ).format(
        cols=sql.SQL(", ").join(sql.Identifier(f.name) for f in join.features),
        table=table_identifier(src.table),
        key=sql.Identifier(join.join_key),
        ts=ts,
        ttl=ttl_bound,
        order=_order("f", ts, src.created_timestamp_column, "DESC", join.unique),
        alias=alias,
    )
    return selects, lateral


def _label_joins(labels: LabelJoin) -> tuple[list[sql.Composable], list[sql.Composable]]:
    """The label prices' columns, and their joins: the keys' latest bars, then the two probes."""
    src = labels.view.source
    ts = sql.Identifier(src.timestamp_field)
    # A bar without a price (an empty bar) is skipped; on a table with several rows per key
    # and time, a time whose latest row has no price is skipped too (the latest row wins).
    newest: sql.Composable = sql.SQL("")
    if not labels.unique:
        newest = sql.SQL(
            " AND NOT EXISTS (SELECT 1 FROM {table} c WHERE c.{key} = b.{key}"
            " AND c.{ts} = b.{ts} AND c.{created} > b.{created})"
        ).format(
            table=table_identifier(src.table),
            key=sql.Identifier(labels.join_key),
            ts=ts,
            created=sql.Identifier(src.created_timestamp_column),
        )
    probe = sql.SQL(
        " LEFT JOIN LATERAL (SELECT b.{price}::float8 AS price FROM {table} b"
        " WHERE b.{key} = e.key AND b.{ts} > e.ts AND b.{price} IS NOT NULL{newest} AND {bounds}"
        " ORDER BY {order} LIMIT 1) {alias} ON true"
    )
    common = {
        "newest": newest,
        "price": sql.Identifier(labels.price.name),
        "table": table_identifier(src.table),
        "key": sql.Identifier(labels.join_key),
        "ts": ts,
    }
    created = src.created_timestamp_column
    # Entry: the first bar strictly after t, no later than t + max_wait.
    entry = probe.format(
        bounds=sql.SQL("b.{ts} <= e.ts + {wait}").format(ts=ts, wait=sql.Literal(labels.max_wait)),
        order=_order("b", ts, created, "ASC", labels.unique),
        alias=sql.Identifier("l_entry"),
        **common,
    )
    # Exit: the last bar at or before t + horizon, no older than max_staleness then.
    exit_ = probe.format(
        bounds=sql.SQL("b.{ts} <= e.ts + {h} AND b.{ts} >= e.ts + {oldest}").format(
            ts=ts,
            h=sql.Literal(labels.horizon),
            oldest=sql.Literal(labels.horizon - labels.max_staleness),
        ),
        order=_order("b", ts, created, "DESC", labels.unique),
        alias=sql.Identifier("l_exit"),
        **common,
    )
    # The latest bar of each key of the chunk (with a price or not): the horizon has passed
    # when it is at or after t + horizon; until then a bar may still come, and no exit price.
    seen = sql.SQL(
        " LEFT JOIN (SELECT k.key, {latest} AS latest FROM (SELECT DISTINCT key FROM {entities}) k)"
        " l_seen ON l_seen.key = e.key"
    ).format(
        latest=latest_seen_sql(
            table_identifier(src.table), sql.Identifier(labels.join_key), ts, sql.SQL("k.key")
        ),
        entities=sql.Identifier(ENTITY_TABLE),
    )
    selects: list[sql.Composable] = [
        sql.SQL("l_entry.price AS {}").format(sql.Identifier(LABEL_ENTRY)),
        sql.SQL("CASE WHEN l_seen.latest >= e.ts + {h} THEN l_exit.price END AS {name}").format(
            h=sql.Literal(labels.horizon), name=sql.Identifier(LABEL_EXIT)
        ),
    ]
    return selects, [seen, entry, exit_]


def join_query(joins: list[ViewJoin], labels: LabelJoin | None = None) -> sql.Composed:
    """``SELECT ord, <features...>[, label prices]`` for every row of :data:`ENTITY_TABLE`."""
    selects: list[sql.Composable] = [sql.SQL("e.ord")]
    laterals: list[sql.Composable] = []
    for index, join in enumerate(joins):
        view_selects, lateral = _view_lateral(index, join)
        selects += view_selects
        laterals.append(lateral)
    if labels is not None:
        label_selects, label_joins = _label_joins(labels)
        selects += label_selects
        laterals += label_joins
    return sql.Composed(
        [
            sql.SQL("SELECT "),
            sql.SQL(", ").join(selects),
            sql.SQL(" FROM {} e").format(sql.Identifier(ENTITY_TABLE)),
            *laterals,
        ]
    )


@dataclass(frozen=True)
class BinaryQuery:
    """A query whose rows are fixed-width and never null, and how to read them back."""

    query: sql.Composed
    columns: tuple[FixedColumn, ...]
    """``ord``, the values (nulls as zeros), then the mask columns."""
    masks: tuple[tuple[str, str, int], ...]
    """For each nullable value column: ``(column, mask column, bit)``; set bit = null."""

    @property
    def arrays(self) -> sql.Composed:
        """The query's columns as one row of arrays in binary form (``array_send``).

        Read by :func:`featurestore.offline._binary.decode_arrays`. The arrays of one aggregate
        are filled from the same rows in the same order, so element ``i`` of each is row ``i``.
        """
        return sql.SQL("SELECT {} FROM ({}) j").format(
            sql.SQL(", ").join(
                sql.SQL("array_send(array_agg({}))").format(sql.Identifier(c.name))
                for c in self.columns
            ),
            self.query,
        )


def fixed_pg_type(value_type: ValueType) -> str | None:
    """The fixed-width PostgreSQL type of a feature type, or None (text)."""
    return _FIXED.get(value_type)


@dataclass(frozen=True)
class NullMasked:
    """Columns as never-null fixed-width expressions, their nulls as bits of ``bigint`` masks."""

    values: list[sql.Composable]
    """``coalesce(column, 0)`` per column."""
    masks: list[sql.Composable]
    """One ``bigint`` expression per mask column: bit ``i`` set when column ``i`` is null."""
    columns: list[FixedColumn]
    """The values' columns, then the masks'."""
    bits: list[tuple[str, str, int]]
    """``(column, mask column, bit)`` for every column."""


def null_masked(
    values: Sequence[tuple[str, str]], column: Callable[[str], sql.Composable]
) -> NullMasked:
    """``values`` (name, fixed-width type) as :class:`NullMasked` expressions over ``column``."""
    out = NullMasked([], [], [], [])
    for name, pg_type in values:
        out.values.append(sql.SQL("coalesce({}, {})").format(column(name), sql.SQL(_ZERO[pg_type])))
        out.columns.append(FixedColumn(name, pg_type))
    for start in range(0, len(values), _MASK_BITS):
        mask_name = f"_null_mask_{start // _MASK_BITS}"
        group = values[start : start + _MASK_BITS]
        out.masks.append(
            sql.SQL(" | ").join(
                sql.SQL("(({} IS NULL)::int::int8 << {})").format(column(name), sql.Literal(bit))
                for bit, (name, _) in enumerate(group)
            )
        )
        out.columns.append(FixedColumn(mask_name, "int8"))
        out.bits.extend((name, mask_name, bit) for bit, (name, _) in enumerate(group))
    return out


def binary_query(joins: list[ViewJoin], labels: LabelJoin | None = None) -> BinaryQuery | None:
    """:func:`join_query` in fixed-width form, or None when a feature is not fixed-width."""
    values: list[tuple[str, str]] = []
    for join in joins:
        for feature, out in zip(join.features, join.output_names, strict=True):
            pg_type = _FIXED.get(feature.value_type)
            if pg_type is None:
                return None
            values.append((out, pg_type))
    if labels is not None:
        values += [(LABEL_ENTRY, "float8"), (LABEL_EXIT, "float8")]
    masked = null_masked(values, lambda name: sql.SQL("j.{}").format(sql.Identifier(name)))
    expressions = masked.values + [sql.SQL("({})").format(m) for m in masked.masks]
    selects: list[sql.Composable] = [sql.SQL("j.ord")] + [
        sql.SQL("{} AS {}").format(expression, sql.Identifier(c.name))
        for expression, c in zip(expressions, masked.columns, strict=True)
    ]
    query = sql.Composed(
        [
            sql.SQL("SELECT "),
            sql.SQL(", ").join(selects),
            sql.SQL(" FROM ("),
            join_query(joins, labels),
            sql.SQL(") j"),
        ]
    )
    columns = (FixedColumn("ord", "int8"), *masked.columns)
    return BinaryQuery(query, columns, tuple(masked.bits))

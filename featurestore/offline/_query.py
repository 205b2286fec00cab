"""The SQL of the point-in-time join: one ``LEFT JOIN LATERAL ... LIMIT 1`` per feature view.

For each entity row and view, PostgreSQL walks the view's primary-key index
``(key, event_timestamp)`` backwards from ``t`` and stops at the first row: an index probe per
entity row and view, whatever the size of the table, and nothing but the answer leaves the
server. Entity rows are sent sorted by (key, timestamp) so that consecutive probes touch
neighbouring index pages.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
from psycopg import sql

from featurestore.definitions.model import Feature, FeatureView, ValueType
from featurestore.offline.tables import table_identifier

__all__ = ["ENTITY_TABLE", "ViewJoin", "arrow_type", "join_query"]

ENTITY_TABLE = "_pit_entities"
"""The session's temporary table of entity rows: ``(ord bigint, key text, ts timestamptz)``."""

_ARROW = {
    ValueType.FLOAT64: pa.float64(),
    ValueType.INT64: pa.int64(),
    ValueType.STRING: pa.string(),
    ValueType.BOOL: pa.bool_(),
}


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


def join_query(joins: list[ViewJoin]) -> sql.Composed:
    """``SELECT ord, <features...>`` for every row of :data:`ENTITY_TABLE`."""
    selects: list[sql.Composable] = [sql.SQL("e.ord")]
    laterals: list[sql.Composable] = []
    for index, join in enumerate(joins):
        alias = sql.Identifier(f"v{index}")
        src = join.view.source
        ts = sql.Identifier(src.timestamp_field)
        selects += [sql.SQL("{}.{}").format(alias, sql.Identifier(f.name)) for f in join.features]
        ttl_bound: sql.Composable = sql.SQL("")
        seconds = join.view.ttl.total_seconds()
        if seconds > 0:
            ttl_bound = sql.SQL(" AND f.{ts} >= e.ts - {secs} * interval '1 second'").format(
                ts=ts, secs=sql.Literal(seconds)
            )
        laterals.append(
            sql.SQL(
                " LEFT JOIN LATERAL (SELECT {cols} FROM {table} f"
                " WHERE f.{key} = e.key AND f.{ts} <= e.ts{ttl}"
                " ORDER BY f.{ts} DESC, f.{created} DESC LIMIT 1) {alias} ON true"
            ).format(
                cols=sql.SQL(", ").join(sql.Identifier(f.name) for f in join.features),
                table=table_identifier(src.table),
                key=sql.Identifier(join.join_key),
                ts=ts,
                ttl=ttl_bound,
                created=sql.Identifier(src.created_timestamp_column),
                alias=alias,
            )
        )
    return sql.Composed(
        [
            sql.SQL("SELECT "),
            sql.SQL(", ").join(selects),
            sql.SQL(" FROM {} e").format(sql.Identifier(ENTITY_TABLE)),
            *laterals,
        ]
    )

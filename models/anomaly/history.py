"""Reading a view's stored rows for the detector: training windows and entities' recent past.

The offline table of a view holds every row the processors computed (one per entity and
``event_timestamp``), so it is where the detector is fitted from and where a scorer that starts
(or meets an entity for the first time) takes each entity's recent rows to warm its state up
before it scores anything new.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from datetime import datetime

import pandas as pd
import psycopg
from psycopg import sql

from featurestore.definitions import FeatureView
from featurestore.error_maps import postgres_errors
from featurestore.offline.tables import table_identifier

__all__ = ["recent_rows", "view_rows"]


def _frame(rows: Sequence[tuple[object, ...]], names: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=names)
    frame = frame.rename(columns={names[1]: "event_timestamp"})
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    return frame


def _execute(dsn: str, query: sql.Composed, params: Sequence[object]) -> list[tuple[object, ...]]:
    with (
        postgres_errors("the offline store, reading a view's history"),
        psycopg.connect(dsn) as conn,
    ):
        return conn.execute(query, params).fetchall()


def view_rows(
    dsn: str,
    view: FeatureView,
    entity_key: str,
    features: Sequence[str],
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> pd.DataFrame:
    """The view's rows in ``[start, end]`` (either bound open), in time order.

    Columns: the entity key, ``event_timestamp`` and ``features``.
    """
    ts = sql.Identifier(view.source.timestamp_field)
    clauses: list[sql.Composable] = [sql.SQL("TRUE")]
    params: list[object] = []
    for bound, op in ((start, ">="), (end, "<=")):
        if bound is not None:
            clauses.append(sql.SQL("{} " + op + " %s").format(ts))
            params.append(bound)
    names = [entity_key, view.source.timestamp_field, *features]
    query = sql.SQL("SELECT {cols} FROM {table} WHERE {where} ORDER BY {ts}, {key}").format(
        cols=sql.SQL(", ").join(map(sql.Identifier, names)),
        table=table_identifier(view.source.table),
        where=sql.SQL(" AND ").join(clauses),
        ts=ts,
        key=sql.Identifier(entity_key),
    )
    return _frame(_execute(dsn, query, params), names)


def recent_rows(
    dsn: str,
    view: FeatureView,
    entity_key: str,
    features: Sequence[str],
    before: Mapping[str, datetime],
    limit: int,
) -> pd.DataFrame:
    """Each entity's last ``limit`` rows strictly before its time in ``before``, one query."""
    if not before:
        return pd.DataFrame(columns=[entity_key, "event_timestamp", *features])
    ts = sql.Identifier(view.source.timestamp_field)
    key = sql.Identifier(entity_key)
    names = [entity_key, view.source.timestamp_field, *features]
    cols = sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(n)) for n in names)
    query = sql.SQL(
        "SELECT {outer} FROM ("
        " SELECT {cols}, row_number() OVER (PARTITION BY t.{key} ORDER BY t.{ts} DESC) AS rn"
        " FROM {table} t JOIN unnest(%s::text[], %s::timestamptz[]) AS c(entity, before)"
        " ON t.{key} = c.entity AND t.{ts} < c.before"
        ") r WHERE rn <= %s ORDER BY {ts}"
    ).format(
        outer=sql.SQL(", ").join(map(sql.Identifier, names)),
        cols=cols,
        key=key,
        ts=ts,
        table=table_identifier(view.source.table),
    )
    entities = list(before)
    params = [entities, [before[e] for e in entities], limit]
    return _frame(_execute(dsn, query, params), names)

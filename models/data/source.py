"""What training reads besides the point-in-time export: when to sample, and the label prices.

Features always come from the export (:class:`featurestore.offline.PostgresOfflineStore`). Two
things are not features and are read here, from the views' own tables:

* the sample times: one training row per ``(symbol, event_timestamp)`` of the ``rolling_1m``
  view (a closed minute), within the window;
* the bar closes that :func:`featurestore.offline.add_forward_labels` turns into labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta

import pandas as pd
import psycopg
from psycopg import sql

from featurestore.definitions import FeatureView
from featurestore.error_maps import postgres_errors
from featurestore.errors import ValidationError
from featurestore.offline.tables import table_identifier

__all__ = [
    "DataWindow",
    "continuation",
    "earliest_time",
    "latest_time",
    "read_closes",
    "sample_times",
]


@dataclass(frozen=True)
class DataWindow:
    """Which rows to train on: an event-time range and symbols (``None``: all)."""

    start: datetime | None = None
    end: datetime | None = None
    symbols: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        """Refuse naive bounds and an empty range (ValidationError naming ``window``).

        A naive bound would be compared with the tables' UTC times as whatever zone the
        connection has, silently shifting the training set.
        """
        for bound in (self.start, self.end):
            if bound is not None and bound.tzinfo is None:
                raise ValidationError("window bounds must be timezone-aware", field="window")
        if self.start and self.end and self.start >= self.end:
            raise ValidationError("window start must be before its end", field="window")


def _where(
    view: FeatureView, window: DataWindow, pad: timedelta, key: str = "symbol"
) -> tuple[sql.Composed, list[object]]:
    ts = sql.Identifier(view.source.timestamp_field)
    clauses: list[sql.Composable] = [sql.SQL("TRUE")]
    params: list[object] = []
    if window.start is not None:
        clauses.append(sql.SQL("{} >= %s").format(ts))
        params.append(window.start - pad)
    if window.end is not None:
        clauses.append(sql.SQL("{} <= %s").format(ts))
        params.append(window.end + pad)
    if window.symbols is not None:
        clauses.append(sql.SQL("{} = ANY(%s)").format(sql.Identifier(key)))
        params.append(list(window.symbols))
    return sql.SQL(" AND ").join(clauses), params


def _read(dsn: str, query: sql.Composed, params: list[object], columns: list[str]) -> pd.DataFrame:
    with postgres_errors("the offline store, reading feature rows"), psycopg.connect(dsn) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        rows = conn.execute(query, params).fetchall()
    frame = pd.DataFrame(rows, columns=columns)
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    return frame


def sample_times(
    dsn: str, view: FeatureView, window: DataWindow, key: str = "symbol"
) -> pd.DataFrame:
    """The distinct ``key, event_timestamp`` of ``view``'s rows in the window, in time order.

    ``key``: the view's join key (``window.symbols`` are values of it).
    """
    where, params = _where(view, window, timedelta(0), key)
    ts = sql.Identifier(view.source.timestamp_field)
    query = sql.SQL(
        "SELECT DISTINCT {key}, {ts} FROM {table} WHERE {where} ORDER BY {ts}, {key}"
    ).format(key=sql.Identifier(key), ts=ts, table=table_identifier(view.source.table), where=where)
    frame = _read(dsn, query, params, [key, "event_timestamp"])
    if frame.empty:
        raise ValidationError(
            f"no rows in {view.source.table} for this window; nothing to train on", field="window"
        )
    return frame


def read_closes(dsn: str, view: FeatureView, window: DataWindow, pad: timedelta) -> pd.DataFrame:
    """``symbol, event_timestamp, created_timestamp, close`` of the bars, ``pad`` around the window.

    The padding lets labels look ``horizon + max_wait`` past the window's last row, and find a
    reference bar up to ``max_staleness`` before its first.
    """
    where, params = _where(view, window, pad)
    src = view.source
    query = sql.SQL(
        "SELECT symbol, {ts}, {created}, close FROM {table} WHERE {where} AND close IS NOT NULL"
        " ORDER BY {ts}"
    ).format(
        ts=sql.Identifier(src.timestamp_field),
        created=sql.Identifier(src.created_timestamp_column),
        table=table_identifier(src.table),
        where=where,
    )
    return _read(dsn, query, params, ["symbol", "event_timestamp", "created_timestamp", "close"])


def continuation(dsn: str, view: FeatureView, start: datetime | None) -> datetime | None:
    """``start`` when the view's table has rows before it, else None.

    What :func:`models.data.warm.warm_rows` takes as ``continues`` for rows read from ``start``.
    """
    first = earliest_time(dsn, view)
    return start if start is not None and first is not None and first < start else None


def latest_time(dsn: str, view: FeatureView) -> datetime | None:
    """The newest ``event_timestamp`` of a view's table (``None`` when it is empty)."""
    return _time_bound(dsn, view, "max")


def earliest_time(dsn: str, view: FeatureView) -> datetime | None:
    """The oldest ``event_timestamp`` of a view's table (``None`` when it is empty)."""
    return _time_bound(dsn, view, "min")


def _time_bound(dsn: str, view: FeatureView, bound: str) -> datetime | None:
    query = sql.SQL("SELECT {}({}) AS event_timestamp FROM {}").format(
        sql.SQL(bound),
        sql.Identifier(view.source.timestamp_field),
        table_identifier(view.source.table),
    )
    frame = _read(dsn, query, [], ["event_timestamp"])
    value = frame["event_timestamp"].iloc[0]
    return None if pd.isna(value) else pd.Timestamp(value).to_pydatetime()

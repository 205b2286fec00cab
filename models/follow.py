"""Standalone scoring: tail the ``rolling_1m`` offline table and publish anomalies.

The processors can score inside their stream (:class:`models.publish.ScoringHook`); this is the
other deployment: a separate process that needs no Spark. It reads the rows whose
``created_timestamp`` is newer than the last it saw (the processors stamp each write), so it
sees every row once they are stored, in any order of symbols, and resumes from ``since`` after a
restart; anomaly ids are deterministic, so rows scored twice give the same events.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

import pandas as pd
import psycopg
from psycopg import sql

from featurestore.definitions import FeatureView
from featurestore.errors import BackendUnavailableError
from featurestore.offline.tables import table_identifier
from models.publish import AnomalyPublisher
from models.scoring import AnomalyScorer

__all__ = ["follow_table", "rows_created_after"]


def rows_created_after(
    conn: psycopg.Connection[tuple[object, ...]], view: FeatureView, after: datetime
) -> pd.DataFrame:
    """The view's rows with ``created_timestamp > after``, oldest first."""
    src = view.source
    names = ["symbol", src.timestamp_field, src.created_timestamp_column, *view.feature_names]
    query = sql.SQL("SELECT {} FROM {} WHERE {} > %s ORDER BY {}").format(
        sql.SQL(", ").join(map(sql.Identifier, names)),
        table_identifier(src.table),
        sql.Identifier(src.created_timestamp_column),
        sql.Identifier(src.created_timestamp_column),
    )
    try:
        rows = conn.execute(query, (after,)).fetchall()
    except psycopg.OperationalError as exc:
        raise BackendUnavailableError(f"offline store unreachable: {exc}") from exc
    frame = pd.DataFrame(rows, columns=names)
    for column in (src.timestamp_field, src.created_timestamp_column):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def follow_table(
    scorer: AnomalyScorer,
    publisher: AnomalyPublisher,
    dsn: str,
    view: FeatureView,
    *,
    since: datetime,
    poll_s: float = 2.0,
    stop: threading.Event | None = None,
    on_batch: Callable[[int, int], None] | None = None,
) -> datetime:
    """Score new rows until ``stop`` is set; returns the last ``created_timestamp`` seen.

    ``on_batch(rows, anomalies)`` is called after each non-empty batch is published.
    """
    stop = stop or threading.Event()
    watermark = since
    try:
        conn = psycopg.connect(dsn, autocommit=True)
    except psycopg.OperationalError as exc:
        raise BackendUnavailableError(f"offline store unreachable: {exc}") from exc
    with conn:
        while not stop.is_set():
            rows = rows_created_after(conn, view, watermark)
            if rows.empty:
                stop.wait(poll_s)
                continue
            anomalies = scorer.score_rows(rows)
            if publisher.publish(anomalies):
                publisher.flush()
            watermark = rows[view.source.created_timestamp_column].max().to_pydatetime()
            if on_batch is not None:
                on_batch(len(rows), len(anomalies))
    return watermark

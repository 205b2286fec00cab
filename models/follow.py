"""Follow a view's offline table and publish what a model makes of each new row.

Two users: the anomaly scorer (``featurestore score --follow``:
:class:`models.scoring.AnomalyScorer` on ``rolling_1m``, or
:class:`models.anomaly.StreamScorer` on any view, publishing anomalies) and the prediction feed
(``featurestore predict --follow``: :class:`models.predictor.Predictor` publishing predictions).
The processors can score inside their stream (:class:`models.publish.ScoringHook`); this is the
other deployment: a separate process that needs no Spark. It reads the rows whose
``created_timestamp`` is newer than the last it saw (the processors stamp each write), so it sees
every row once they are stored, in any order of entities, and resumes from ``since`` after a
restart; event ids are deterministic (model, version, entity, event time), so rows scored twice
give the same events.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol
from typing import TypeVar

import pandas as pd
import psycopg
from psycopg import sql

from featurestore.definitions import FeatureView
from featurestore.error_maps import postgres_error
from featurestore.errors import FeatureStoreError
from featurestore.offline.tables import table_identifier
from featurestore.resilience import Health
from featurestore.resilience import Retrier
from featurestore.resilience import Stopped

__all__ = ["EventSink", "RowScorer", "follow_table", "rows_created_after"]

E = TypeVar("E")
E_co = TypeVar("E_co", covariant=True)
E_contra = TypeVar("E_contra", contravariant=True)


class RowScorer(Protocol[E_co]):
    """Makes events of new rows (:class:`~models.scoring.AnomalyScorer`, ``Predictor``)."""

    def score_rows(self, rows: pd.DataFrame) -> Sequence[E_co]:
        """The events of ``rows``."""
        ...


class EventSink(Protocol[E_contra]):
    """Where the events go (:class:`~models.publish.EventPublisher`)."""

    def publish(self, events: Iterable[E_contra]) -> int:
        """Queue the events; returns how many."""
        ...

    def flush(self) -> None:
        """Wait until they are delivered (raises :class:`BackendUnavailableError` if not)."""
        ...


def rows_created_after(
    conn: psycopg.Connection[tuple[object, ...]],
    view: FeatureView,
    after: datetime,
    entity_key: str = "symbol",
) -> pd.DataFrame:
    """The view's rows with ``created_timestamp > after``, oldest first.

    ``entity_key`` is the view's join key column (``symbol`` for the market views).
    """
    src = view.source
    names = [entity_key, src.timestamp_field, src.created_timestamp_column, *view.feature_names]
    query = sql.SQL("SELECT {} FROM {} WHERE {} > %s ORDER BY {}").format(
        sql.SQL(", ").join(map(sql.Identifier, names)),
        table_identifier(src.table),
        sql.Identifier(src.created_timestamp_column),
        sql.Identifier(src.created_timestamp_column),
    )
    try:
        rows = conn.execute(query, (after,)).fetchall()
    except psycopg.Error as exc:
        raise postgres_error(exc, f"the offline store, new rows of {view.name}") from exc
    frame = pd.DataFrame(rows, columns=names)
    for column in (src.timestamp_field, src.created_timestamp_column):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def follow_table(
    scorer: RowScorer[E],
    publisher: EventSink[E],
    dsn: str,
    view: FeatureView,
    *,
    since: datetime,
    poll_s: float = 2.0,
    stop: threading.Event | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    health: Health | None = None,
    entity_key: str = "symbol",
) -> datetime:
    """Score new rows until ``stop`` is set; returns the last ``created_timestamp`` seen.

    ``on_batch(rows, events)`` is called after each non-empty batch is published.

    PostgreSQL or Kafka going away is waited out (:mod:`featurestore.resilience`; ``health``
    says NOT_SERVING with the reason meanwhile): the watermark only moves once a batch's
    events are acknowledged, so a batch is scored again after PostgreSQL comes back, and
    a batch whose delivery is still pending is only flushed again, never sent twice.
    """
    stop = stop or threading.Event()
    retrier = Retrier(health=health or Health(), stop=stop)
    tail = _Tail(dsn, view, since, entity_key)
    try:
        while not stop.is_set():
            rows = retrier.call(tail.new_rows, "reading new rows")
            if rows.empty:
                stop.wait(poll_s)
                continue
            events = scorer.score_rows(rows)
            if publisher.publish(events):
                retrier.call(publisher.flush, "delivering events")
            tail.watermark = rows[view.source.created_timestamp_column].max().to_pydatetime()
            if on_batch is not None:
                on_batch(len(rows), len(events))
    except Stopped:
        pass
    finally:
        tail.close()
    return tail.watermark


class _Tail:
    """The rows created after :attr:`watermark`, on a connection made again after a failure."""

    def __init__(
        self, dsn: str, view: FeatureView, watermark: datetime, entity_key: str = "symbol"
    ) -> None:
        self.dsn = dsn
        self.view = view
        self.watermark = watermark
        self.entity_key = entity_key
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None

    def new_rows(self) -> pd.DataFrame:
        try:
            if self._conn is None:
                self._conn = psycopg.connect(self.dsn, autocommit=True)
            return rows_created_after(self._conn, self.view, self.watermark, self.entity_key)
        except psycopg.Error as exc:
            self.close()
            raise postgres_error(exc, f"the offline store, new rows of {self.view.name}") from exc
        except FeatureStoreError:
            self.close()  # connected again next time
            raise

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(Exception):
                conn.close()

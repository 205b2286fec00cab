"""The offline ``predictions`` table: every logged prediction once, and its realized outcome.

Every prediction -- served by Predict or published by the prediction feed -- is a
``PredictionLog`` event on the predictions topic. :func:`record_predictions` consumes that topic
in a consumer group and upserts each event by its id (``INSERT ... ON CONFLICT DO NOTHING``),
committing the group's offsets only after the rows are in: a recorder killed between the two
reads the batch again and the upsert makes it a no-op, so the table holds each prediction
exactly once.

The view ``predictions_with_outcomes`` joins each prediction with what followed, point in time,
from the 1-minute bars (``bars_1m``: a row as of each trade, see :mod:`.labels`):

* ``close_at_feature_time``: the close of the last bar at or before ``feature_time``;
* ``close_at_horizon``: the close of the last bar at or before ``feature_time + horizon``, once
  the store holds a bar of the symbol at or after that time (before that the horizon has not
  passed as far as the data goes, and it is null: a late bar would still change it; the rule of
  the training labels too, :func:`featurestore.offline.labels.horizon_passed_sql`);
* ``forward_return = close_at_horizon / close_at_feature_time - 1``, null until then.

The horizon is stored with each row (the model's, :class:`PredictionTable`), so a changed
setting does not rewrite the outcomes of predictions already made.
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import timedelta
from functools import partial

import psycopg
from confluent_kafka import Consumer
from confluent_kafka import KafkaException
from confluent_kafka import Message
from psycopg import sql

from featurestore.definitions import FeatureView
from featurestore.error_maps import kafka_error
from featurestore.error_maps import postgres_error
from featurestore.events import AvroDeserializer
from featurestore.events import PredictionLog
from featurestore.events import SchemaStore
from featurestore.events.replay import data_messages
from featurestore.events.replay import event_of
from featurestore.kafka_connection import KafkaConnection
from featurestore.kafka_connection import create_client
from featurestore.offline.labels import horizon_passed_sql
from featurestore.offline.tables import table_identifier
from featurestore.resilience import Health
from featurestore.resilience import Retrier
from featurestore.resilience import Stopped

__all__ = [
    "BarsTable",
    "PredictionTable",
    "prediction_rows",
    "record_predictions",
]

DEFAULT_HORIZON = timedelta(minutes=5)
"""A model's horizon when none is configured: the default label horizon (:class:`LabelSpec`)."""


@dataclass(frozen=True)
class BarsTable:
    """Where the outcomes' prices come from: the ``bars_1m`` view's offline table."""

    table: str = "bars_1m"
    entity: str = "symbol"
    """The join key; a prediction's entity value for it picks the bars."""
    time: str = "event_timestamp"
    created: str = "created_timestamp"
    price: str = "close"

    @classmethod
    def of_view(cls, view: FeatureView, entity: str = "symbol", price: str = "close") -> BarsTable:
        """The offline table of a declared bars view (``bars_1m``), keyed by ``entity``."""
        src = view.source
        return cls(src.table, entity, src.timestamp_field, src.created_timestamp_column, price)


@dataclass(frozen=True)
class PredictionTable:
    """The table, its outcome view and the horizon of each model."""

    table: str = "predictions"
    view: str = "predictions_with_outcomes"
    bars: BarsTable = BarsTable()
    horizons: Mapping[str, timedelta] = field(default_factory=dict)
    """Each model's horizon, by model name; :data:`DEFAULT_HORIZON` for others."""
    default_horizon: timedelta = DEFAULT_HORIZON

    def horizon(self, model_name: str) -> timedelta:
        """The horizon over which ``model_name``'s predictions are judged."""
        return self.horizons.get(model_name, self.default_horizon)

    def create(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        """Create the table (if absent) and (re)create the view; idempotent."""
        table = table_identifier(self.table)
        bars = self.bars
        for name in (self.table, self.view):
            if "." in name:
                schema = sql.Identifier(name.split(".", 1)[0])
                conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} ("
                " prediction_id text PRIMARY KEY,"
                " model_name text NOT NULL,"
                " model_version text NOT NULL,"
                " entity jsonb NOT NULL,"
                " prediction double precision NOT NULL,"
                " feature_time timestamptz,"
                " request_time timestamptz NOT NULL,"
                " response_time timestamptz NOT NULL,"
                " features jsonb NOT NULL,"
                " horizon interval NOT NULL,"
                " recorded_at timestamptz NOT NULL DEFAULT now())"
            ).format(table)
        )
        conn.execute(
            sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (model_name, response_time)").format(
                sql.Identifier(f"{self.table.rpartition('.')[2]}_model_time"), table
            )
        )
        bar = sql.SQL(
            "SELECT b.{price} FROM {bars} b WHERE b.{entity} = p.entity ->> {key}"
            " AND b.{time} <= {until} AND b.{price} IS NOT NULL"
            " ORDER BY b.{time} DESC, b.{created} DESC LIMIT 1"
        )
        parts = {
            "price": sql.Identifier(bars.price),
            "bars": table_identifier(bars.table),
            "entity": sql.Identifier(bars.entity),
            "key": sql.Literal(bars.entity),
            "time": sql.Identifier(bars.time),
            "created": sql.Identifier(bars.created),
        }
        conn.execute(
            sql.SQL(
                "CREATE OR REPLACE VIEW {view} AS"
                " SELECT p.*, p.feature_time + p.horizon AS outcome_time,"
                " b0.close_at_feature_time, b1.close_at_horizon,"
                " b1.close_at_horizon / NULLIF(b0.close_at_feature_time, 0) - 1 AS forward_return"
                " FROM {table} p"
                " LEFT JOIN LATERAL ({at_feature}) b0(close_at_feature_time) ON true"
                " LEFT JOIN LATERAL ({at_horizon}) b1(close_at_horizon) ON {passed}"
            ).format(
                view=table_identifier(self.view),
                table=table,
                at_feature=bar.format(until=sql.SQL("p.feature_time"), **parts),
                at_horizon=bar.format(until=sql.SQL("p.feature_time + p.horizon"), **parts),
                passed=horizon_passed_sql(
                    parts["bars"],
                    parts["entity"],
                    parts["time"],
                    sql.SQL("p.entity ->> {}").format(parts["key"]),
                    sql.SQL("p.feature_time + p.horizon"),
                ),
            )
        )

    def upsert(
        self, conn: psycopg.Connection[tuple[object, ...]], events: Sequence[PredictionLog]
    ) -> int:
        """Insert the events not yet in the table (by id); returns how many were new."""
        if not events:
            return 0
        columns = [
            "prediction_id", "model_name", "model_version", "entity", "prediction",
            "feature_time", "request_time", "response_time", "features", "horizon",
        ]  # fmt: skip
        query = sql.SQL(
            "INSERT INTO {} ({}) SELECT * FROM unnest("
            "%s::text[], %s::text[], %s::text[], %s::jsonb[], %s::float8[],"
            " %s::timestamptz[], %s::timestamptz[], %s::timestamptz[], %s::jsonb[],"
            " %s::interval[]) ON CONFLICT (prediction_id) DO NOTHING"
        ).format(table_identifier(self.table), sql.SQL(", ").join(map(sql.Identifier, columns)))
        rows = prediction_rows(events, self.horizon)
        with conn.transaction():
            cursor = conn.execute(query, [list(column) for column in zip(*rows, strict=True)])
        return cursor.rowcount


def prediction_rows(
    events: Iterable[PredictionLog], horizon: Callable[[str], timedelta]
) -> list[tuple[object, ...]]:
    """The table's rows of ``events`` (entity and features as JSON text), in column order."""
    return [
        (
            e.request_id,
            e.model_name,
            e.model_version,
            json.dumps(dict(e.entity), sort_keys=True),
            e.prediction,
            e.feature_time,
            e.request_time,
            e.response_time,
            json.dumps(dict(e.features), sort_keys=True),
            horizon(e.model_name),
        )
        for e in events
    ]


_BATCH = 500
_POLL_S = 0.5


def record_predictions(
    kafka: KafkaConnection,
    store: SchemaStore,
    dsn: str,
    topic: str,
    table: PredictionTable,
    *,
    group_id: str = "featurestore-prediction-recorder",
    stop: threading.Event | None = None,
    health: Health | None = None,
    on_batch: Callable[[int, int], None] | None = None,
) -> int:
    """Upsert the topic's predictions into ``table`` until ``stop`` is set; returns rows added.

    The group's offsets are committed after each batch is in PostgreSQL (never before), so a
    restart re-reads at most the last batch, which the upsert ignores. PostgreSQL going away is
    waited out (the batch is written again once it is back). ``on_batch(events, new_rows)``
    after each batch. A record that is not a PredictionLog is skipped (and logged).
    """
    stop = stop or threading.Event()
    retrier = Retrier(health=health or Health(), stop=stop)
    decoder = AvroDeserializer(store)
    consumer = create_client(
        Consumer,
        kafka.consumer(
            group_id,
            **{
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "client.id": f"prediction-recorder-{uuid.uuid4().hex[:8]}",
            },
        ),
    )
    writer = _Writer(dsn, table)
    added = 0
    try:
        retrier.call(writer.create, "creating the predictions table")
        consumer.subscribe([topic])
        while not stop.is_set():
            messages = consumer.consume(_BATCH, timeout=_POLL_S)
            if not messages:
                continue
            events = _decode(decoder, messages, topic)
            new = retrier.call(partial(writer.upsert, events), "writing predictions")
            added += new
            consumer.commit(asynchronous=False)
            if on_batch is not None:
                on_batch(len(events), new)
    except Stopped:
        pass
    except KafkaException as exc:
        raise kafka_error(exc, f"reading {topic}") from exc
    finally:
        consumer.close()
        writer.close()
    return added


def _decode(decoder: AvroDeserializer, messages: list[Message], topic: str) -> list[PredictionLog]:
    events = (event_of(decoder, m, PredictionLog) for m in data_messages(messages, topic))
    return [event for event in events if event is not None]


class _Writer:
    """The table on a connection made again after a failure."""

    def __init__(self, dsn: str, table: PredictionTable) -> None:
        self.dsn = dsn
        self.table = table
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None

    def _connection(self) -> psycopg.Connection[tuple[object, ...]]:
        if self._conn is None:
            self._conn = psycopg.connect(self.dsn, autocommit=True)
        return self._conn

    def create(self) -> None:
        try:
            self.table.create(self._connection())
        except psycopg.OperationalError as exc:
            self.close()
            raise postgres_error(exc, "the offline store, the predictions table") from exc

    def upsert(self, events: Sequence[PredictionLog]) -> int:
        try:
            return self.table.upsert(self._connection(), events)
        except psycopg.OperationalError as exc:
            self.close()
            raise postgres_error(exc, "the offline store, the predictions table") from exc

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(psycopg.Error):
                conn.close()

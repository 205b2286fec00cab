"""The predictions table on the real Kafka, PostgreSQL, Redis and MLflow.

Predictions from Predict (through the server's log) and from the feed (the Predictor and its
publisher, twice over, as a restarted feed would) are recorded once each by the recorder, across
a restart of the recorder, and joined with their outcome once a bar at or after the horizon is in.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pandas as pd
import psycopg
import pytest
from featurestore_client import FeatureStoreClient
from featurestore_client import RetryPolicy
from psycopg import sql

from featurestore.config import Settings
from featurestore.config import TopicSettings
from featurestore.offline.predictions import PredictionTable
from featurestore.offline.tables import table_identifier
from featurestore.online import EntityKey
from featurestore.online import FeatureRow
from featurestore.service.testing import ServerThread
from models.predictor import Predictor
from models.publish import PredictionPublisher
from models.registry import ModelRegistry
from tests.integration.service.mlflow_models import RegisteredModels
from tests.integration.service.predictions_recorder import run_recorder

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)


def _bars(stack: Settings, table: PredictionTable, rows: list[tuple[str, datetime, float]]) -> None:
    with psycopg.connect(stack.postgres.dsn, autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany(
            sql.SQL("INSERT INTO {} VALUES (%s, %s, %s, %s)").format(
                table_identifier(table.bars.table)
            ),
            [(symbol, at, at, close) for symbol, at, close in rows],
        )


def _outcomes(stack: Settings, table: PredictionTable) -> pd.DataFrame:
    with psycopg.connect(stack.postgres.dsn) as conn:
        rows = conn.execute(
            sql.SQL(
                "SELECT prediction_id, model_version, entity ->> 'symbol', feature_time,"
                " close_at_feature_time, close_at_horizon, forward_return FROM {}"
                " ORDER BY prediction_id"
            ).format(table_identifier(table.view))
        ).fetchall()
    columns = ["id", "version", "symbol", "feature_time", "at_feature", "at_horizon", "ret"]
    return pd.DataFrame(rows, columns=columns)


def test_every_prediction_once_with_its_outcome(
    stack: Settings,
    predictions_topic: str,
    prediction_table: PredictionTable,
    models: RegisteredModels,
    start_server: Callable[..., ServerThread],
    write_rows: Callable[[list[FeatureRow]], None],
) -> None:
    horizon = prediction_table.horizons[models.name]
    _bars(
        stack, prediction_table, [("AAPL", NOW - timedelta(minutes=1), 180.0), ("AAPL", NOW, 190.0)]
    )
    # Predict: one AAPL prediction, its features read from Redis (newest at NOW).
    aapl = EntityKey.of(symbol="AAPL")
    write_rows([
        FeatureRow("bars_1m", aapl, NOW, {"close": 190.0, "volume": 7.0}),
        FeatureRow("rolling_1m", aapl, NOW - timedelta(seconds=30), {"vwap_5m": 189.0}),
    ])  # fmt: skip
    server = start_server(topics=TopicSettings(predictions=predictions_topic))
    with FeatureStoreClient(server.target, retry=RetryPolicy(max_attempts=1), timeout_s=60) as c:
        served = c.predict(models.name, entities={"symbol": ["AAPL"]})
    # The feed: AAPL and IBM rows at NOW, published twice (a feed restarted over the same rows).
    predictor = Predictor(ModelRegistry(stack.mlflow.tracking_uri), models.name)
    rows = pd.DataFrame({
        "symbol": ["AAPL", "IBM"],
        "event_timestamp": [NOW, NOW],
        "bars_1m__close": [190.0, 150.0],
        "rolling_1m__vwap_5m": [189.0, 149.0],
        "bars_1m__volume": [7.0, 3.0],
    })  # fmt: skip
    publisher = PredictionPublisher.from_settings(stack, predictions_topic)
    feed = predictor.score_rows(rows)
    publisher.publish(feed)
    publisher.flush()

    group = f"recorder-{uuid.uuid4().hex[:8]}"
    assert run_recorder(stack, predictions_topic, prediction_table, group, events=3) == 3
    publisher.publish(predictor.score_rows(rows))  # the same ids again
    publisher.flush()
    # Restarted: it reads them and records nothing new.
    assert run_recorder(stack, predictions_topic, prediction_table, group, events=2) == 0

    ids = {p.request_id for p in served.predictions} | {e.request_id for e in feed}
    before = _outcomes(stack, prediction_table)
    assert set(before["id"]) == ids and len(before) == 3
    aapl_rows = before["symbol"] == "AAPL"
    assert aapl_rows.sum() == 2  # Predict's and the feed's
    assert (before.loc[aapl_rows, "at_feature"] == 190.0).all()
    assert before.loc[~aapl_rows, "at_feature"].isna().all()
    assert before["ret"].isna().all(), "an outcome before the horizon passed"

    _bars(stack, prediction_table, [
        ("AAPL", NOW + timedelta(minutes=1), 195.0),
        ("AAPL", NOW + horizon, 209.0),
        ("AAPL", NOW + horizon + timedelta(seconds=1), 500.0),  # after the horizon: not used
    ])  # fmt: skip
    after = _outcomes(stack, prediction_table).set_index("id")
    for prediction_id, row in after.iterrows():
        if row["symbol"] == "AAPL":
            assert row["at_horizon"] == 209.0, prediction_id
            assert row["ret"] == pytest.approx(209.0 / 190.0 - 1)
        else:
            assert pd.isna(row["ret"]), "IBM has no bars: no outcome"

"""The outcome of a prediction settles at the horizon's exact bar, not a microsecond before.

``predictions_with_outcomes`` (:mod:`featurestore.offline.predictions`) makes an outcome once
the store holds a bar of the symbol at or after ``feature_time + horizon``, priced by the last
bar at or before that time. A bar exactly at the horizon must do both; one a microsecond
earlier must do neither (a later bar could still come). ``>=`` turned into ``>`` (or ``<=`` into
``<``) fails here; a bar a second away, as the service's test has, would not tell.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import psycopg
import pytest
from psycopg import sql

from featurestore.config import Settings
from featurestore.events import PredictionLog
from featurestore.offline.predictions import PredictionTable
from featurestore.offline.tables import table_identifier
from tests.integration.prediction_schema import prediction_schema

pytestmark = pytest.mark.integration

HORIZON = timedelta(minutes=5)
FEATURE_TIME = datetime(2024, 3, 1, 14, 30, tzinfo=UTC)
AT_HORIZON = FEATURE_TIME + HORIZON
JUST_BEFORE = AT_HORIZON - timedelta(microseconds=1)


@pytest.fixture
def outcomes_table(stack: Settings) -> Iterator[PredictionTable]:
    """A predictions table, its view and its bars in a schema of the test's own, dropped after."""
    with prediction_schema(stack, "ph", {"ret": HORIZON}) as table:
        with psycopg.connect(stack.postgres.dsn, autocommit=True) as conn:
            table.create(conn)
        yield table


def _prediction(symbol: str) -> PredictionLog:
    return PredictionLog(
        request_id=f"p-{symbol}",
        model_name="ret",
        model_version="1",
        entity={"symbol": symbol},
        prediction=0.5,
        request_time=FEATURE_TIME,
        response_time=FEATURE_TIME,
        feature_time=FEATURE_TIME,
    )


def test_a_bar_at_the_horizon_settles_and_one_a_microsecond_earlier_does_not(
    stack: Settings, outcomes_table: PredictionTable
) -> None:
    bars = [
        ("AT", FEATURE_TIME, 100.0),
        ("AT", AT_HORIZON, 110.0),
        ("BEFORE", FEATURE_TIME, 100.0),
        ("BEFORE", JUST_BEFORE, 120.0),
    ]
    with psycopg.connect(stack.postgres.dsn, autocommit=True) as conn:
        with conn.cursor() as cur:
            cur.executemany(
                sql.SQL("INSERT INTO {} VALUES (%s, %s, %s, %s)").format(
                    table_identifier(outcomes_table.bars.table)
                ),
                [(symbol, at, at, close) for symbol, at, close in bars],
            )
        outcomes_table.upsert(conn, [_prediction("AT"), _prediction("BEFORE")])
        rows = conn.execute(
            sql.SQL(
                "SELECT entity ->> 'symbol', outcome_time, close_at_feature_time,"
                " close_at_horizon, forward_return FROM {} ORDER BY 1"
            ).format(table_identifier(outcomes_table.view))
        ).fetchall()
    at, before = rows
    assert at[:4] == ("AT", AT_HORIZON, 100.0, 110.0)
    assert at[4] == pytest.approx(0.1)
    # The horizon has not passed as far as the data goes: a bar at it may still come.
    assert before == ("BEFORE", AT_HORIZON, 100.0, None, None)

"""``featurestore predict --follow --record`` as the stack runs it, on the real stack.

The demo market's stored rolling_1m rows are predicted by the direction champion (the feed),
published, recorded in a predictions table of the test's own schema, and joined with their
outcomes from the demo's bars; SIGTERM stops the command cleanly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from featurestore.offline.tables import table_identifier
from tests.integration.models.conftest import ModelsWorld
from tests.integration.service.anomaly_data import create_topic
from tests.integration.service.anomaly_data import delete_topic

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def predictions_topic(world: ModelsWorld, unique_name: Callable[[str], str]) -> Iterator[str]:
    topic = unique_name("predictions")
    create_topic(world.settings, topic, partitions=2)
    yield topic
    delete_topic(world.settings, topic)


@pytest.fixture
def schema(world: ModelsWorld) -> Iterator[str]:
    name = f"pf_{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(world.settings.postgres.dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def _count(dsn: str, query: sql.Composed) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(query).fetchone()
    return int(row[0]) if row is not None else 0


def test_feed_predicts_every_stored_row_once_and_records_it_with_outcomes(
    world: ModelsWorld, predictions_topic: str, schema: str, tmp_path: Path
) -> None:
    name = world.reports["direction"].logged.ref.name
    dsn = world.settings.postgres.dsn
    rolling = table_identifier(world.definitions.view("rolling_1m").source.table)
    expected = _count(dsn, sql.SQL("SELECT count(DISTINCT (symbol, event_timestamp)) FROM {}")
                      .format(rolling))  # fmt: skip
    assert expected > 0
    # The demo's rows are stamped created at their event time: reach back past the first one.
    first = world.demo.trades["event_time"].min().to_pydatetime()
    since_minutes = int((datetime.now(UTC) - first).total_seconds() // 60) + 1440
    ready = tmp_path / "ready.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "featurestore.cli", "predict", "--follow", "--record",
         "--model", name, "--project", world.definitions.project, "--schema", schema,
         "--horizon", f"{name}=5", "--since-minutes", str(since_minutes), "--poll-seconds", "0.5",
         "--ready-file", str(ready)],
        cwd=REPO,
        env={**os.environ, "FEATURESTORE_TOPICS__PREDICTIONS": predictions_topic},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    table = sql.SQL("{}.predictions").format(sql.Identifier(schema))
    view = sql.SQL("{}.predictions_with_outcomes").format(sql.Identifier(schema))
    try:
        # The feed starts (MLflow's import, the champion's load) and predicts every row: 58 s
        # of start alone was seen at load 7 on 2 cores.
        deadline = time.monotonic() + 180
        recorded = 0
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(1)
            try:
                recorded = _count(dsn, sql.SQL("SELECT count(*) FROM {}").format(table))
            except psycopg.errors.UndefinedTable:
                continue
            if recorded >= expected:
                break
        assert process.poll() is None, process.communicate()[0]
        assert json.loads(ready.read_text())["pid"] == process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=60)[0]
    assert process.returncode == 0, output
    assert recorded == expected, output[-2000:]
    assert f"{name} version {world.reports['direction'].logged.ref.version}: predicted" in output
    distinct = _count(dsn, sql.SQL(
        "SELECT count(DISTINCT (entity ->> 'symbol', feature_time)) FROM {}"
    ).format(table))  # fmt: skip
    assert distinct == expected  # one prediction per stored row
    with_outcome = _count(dsn, sql.SQL(
        "SELECT count(*) FROM {} WHERE forward_return IS NOT NULL"
    ).format(view))  # fmt: skip
    assert 0 < with_outcome < expected  # the last 5 minutes of the demo have no outcome yet

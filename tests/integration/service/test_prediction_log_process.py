"""Predict's log through its writer process, on the shared Kafka: complete across a SIGKILL.

The server names each call's entities and scored rows by token; a writer started again after its
predecessor was killed must be told them again, or the calls logged after the kill would be lost.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
from collections.abc import Callable
from datetime import UTC
from datetime import datetime

import numpy as np
import pytest

from featurestore.config import Settings
from featurestore.events import ConfluentSchemaStore
from featurestore.events import LoggedEvent
from featurestore.events import PredictionLog
from featurestore.events import replay_topic
from featurestore.online import EntityKey
from featurestore.service.predict_read import PRESENT
from featurestore.service.predict_read import ModelRows
from featurestore.service.prediction_log_process import PredictionLogProcess
from featurestore.service.scored_rows import ScoredRows

pytestmark = pytest.mark.integration

T0 = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)
FEATURES = ("bars_1m:close", "rolling_1m:vwap_5m")
ENTITIES = tuple(EntityKey.of(symbol=f"S{i:02d}") for i in range(20))


@pytest.fixture
def topic(new_topic: Callable[..., str]) -> str:
    return new_topic("prediction-log-process", partitions=3)


def _scored(offset: float) -> ScoredRows:
    """Scored rows of ENTITIES whose close is ``offset`` + the entity's index (vwap missing)."""
    n = len(ENTITIES)
    matrix = np.column_stack([np.arange(n) + offset, np.full(n, np.nan)])
    statuses = np.column_stack([np.full(n, PRESENT), np.full(n, 3)]).astype(np.uint8)
    rows = ModelRows(matrix, statuses, [], [tuple([None] * n)], np.full((1, n), np.nan))
    return ScoredRows(rows, np.full(n, offset / 100), b"")


def _ids(call: int) -> str:
    return "".join(f"{call:016x}{i:016x}" for i in range(len(ENTITIES)))


def test_calls_logged_once_each_and_after_the_writer_is_killed(stack: Settings, topic: str) -> None:
    first, second = _scored(10.0), _scored(20.0)
    calls = 12

    async def log_calls(log: PredictionLogProcess, numbers: range) -> None:
        for call in numbers:
            scored = first if call % 2 else second
            log.log_call("m", "1", FEATURES, ENTITIES, scored, _ids(call), call, call + 1)
            await asyncio.sleep(0.002)

    async def main() -> tuple[int, int, int]:
        log = PredictionLogProcess(stack, topic)
        await log_calls(log, range(calls))
        assert await log.flush(30) == 0
        child = log._child
        assert child is not None
        os.kill(child.process.pid, signal.SIGKILL)
        while log._child is child:  # the server sees its writer gone
            await asyncio.sleep(0.05)
        # Logged while no writer runs: these name tokens defined for the dead one.
        await log_calls(log, range(calls, 2 * calls))
        assert await log.flush(30) == 0
        assert log._child is not None and log._child is not child
        await log.close()
        return log.sent, log.failed, log.dropped

    sent, failed, dropped = asyncio.run(main())
    total = 2 * calls * len(ENTITIES)
    assert (sent, failed, dropped) == (total, 0, 0)
    with ConfluentSchemaStore.from_settings(stack.schema_registry) as store:
        logged = [
            r.event
            for r in replay_topic(stack.kafka.connection, store, topic)
            if isinstance(r, LoggedEvent) and isinstance(r.event, PredictionLog)
        ]
    assert len(logged) == len({e.request_id for e in logged}) == total
    by_id = {e.request_id: e for e in logged}
    for call in range(2 * calls):
        offset = 10.0 if call % 2 else 20.0
        for i, entity in enumerate(ENTITIES):
            event = by_id[f"{call:016x}{i:016x}"]
            assert event.entity == {"symbol": entity.values[0]}
            assert event.features == {"bars_1m:close": i + offset, "rolling_1m:vwap_5m": None}
            assert math.isclose(event.prediction, offset / 100)
            assert event.request_time.timestamp() * 1e6 == pytest.approx(call)
            assert event.feature_time is None

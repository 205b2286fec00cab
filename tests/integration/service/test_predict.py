"""Predict on the real Redis, MLflow and Kafka: scores, statuses, promotion, log, errors."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import numpy as np
import pytest
from featurestore_client import FeatureStatus
from featurestore_client import FeatureStoreClient
from featurestore_client import InvalidArgumentError
from featurestore_client import NotFoundError
from featurestore_client import RetryPolicy
from featurestore_client import UnavailableError

from featurestore.config import MlflowSettings
from featurestore.config import Settings
from featurestore.config import TopicSettings
from featurestore.events import ConfluentSchemaStore
from featurestore.events import LoggedEvent
from featurestore.events import PredictionLog
from featurestore.events import replay_topic
from featurestore.online import EntityKey
from featurestore.online import FeatureRow
from featurestore.service.testing import ServerThread
from featurestore.telemetry import Telemetry
from tests.integration.service.mlflow_models import RegisteredModels
from tests.integration.service.mlflow_models import move_alias
from tests.ports import free_port

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)
NO_RETRY = RetryPolicy(max_attempts=1)


@pytest.fixture
def server(
    start_server: Callable[..., ServerThread],
    write_rows: Callable[[list[FeatureRow]], None],
    predictions_topic: str,
    telemetry: Telemetry,
) -> ServerThread:
    write_rows(
        [
            FeatureRow(
                "bars_1m", EntityKey.of(symbol="AAPL"), NOW, {"close": 190.0, "volume": 7.0}
            ),
            FeatureRow(
                "rolling_1m",
                EntityKey.of(symbol="AAPL"),
                NOW - timedelta(seconds=30),
                {"vwap_5m": 189.0},
            ),
            FeatureRow("bars_1m", EntityKey.of(symbol="IBM"), NOW, {"close": 150.0}),
        ]
    )
    return start_server(
        topics=TopicSettings(predictions=predictions_topic),
        telemetry=telemetry,
        model_alias_ttl_s=0.2,
    )


def test_scores_features_statuses_and_the_prediction_log(
    server: ServerThread,
    models: RegisteredModels,
    stack: Settings,
    predictions_topic: str,
    telemetry: Telemetry,
) -> None:
    with FeatureStoreClient(server.target, retry=NO_RETRY, timeout_s=60) as client:
        result = client.predict(models.name, entities={"symbol": ["AAPL", "IBM", "GHOST"]})
    assert result.model_version == "1"
    nan = float("nan")
    expected = models.expected_v1([[190.0, 189.0, 7.0], [150.0, nan, nan], [nan, nan, nan]])
    np.testing.assert_allclose(result.scores, expected, rtol=1e-9)
    aapl, ibm, ghost = result.predictions
    assert {k: v.value for k, v in aapl.features.items()} == {
        "bars_1m:close": 190.0,
        "rolling_1m:vwap_5m": 189.0,
        "bars_1m:volume": 7.0,
    }
    assert aapl.feature_time == NOW
    assert ibm.features["bars_1m:volume"].status is FeatureStatus.NULL_VALUE
    assert ibm.features["rolling_1m:vwap_5m"].status is FeatureStatus.NOT_FOUND
    assert ibm.features["rolling_1m:vwap_5m"].value is None
    assert {v.status for v in ghost.features.values()} == {FeatureStatus.NOT_FOUND}
    assert ghost.feature_time is None

    server.run(_flush_log(server))
    with ConfluentSchemaStore.from_settings(stack.schema_registry) as store:
        logged = [
            r.event
            for r in replay_topic(stack.kafka.connection, store, predictions_topic)
            if isinstance(r, LoggedEvent) and isinstance(r.event, PredictionLog)
        ]
    by_id = {event.request_id: event for event in logged}
    assert set(by_id) == {p.request_id for p in result.predictions}
    event = by_id[aapl.request_id]
    assert event.model_version == "1" and event.entity == {"symbol": "AAPL"}
    assert event.prediction == pytest.approx(aapl.score)
    assert event.features["rolling_1m:vwap_5m"] == 189.0
    assert by_id[ibm.request_id].features["rolling_1m:vwap_5m"] is None
    assert event.feature_time == NOW
    # What an operator's PredictionLogLoss alert reads: the 3 rows sent, none failed or dropped.
    assert telemetry.registry is not None
    counts = {
        outcome: telemetry.registry.get_sample_value(
            "featurestore_prediction_log_records_total", {"outcome": outcome}
        )
        for outcome in ("sent", "failed", "dropped")
    }
    assert counts == {"sent": 3, "failed": 0, "dropped": 0}
    assert telemetry.registry.get_sample_value("featurestore_prediction_log_pending_records") == 0


def test_repeated_calls_see_a_changed_row_and_a_value_outliving_its_ttl(
    server: ServerThread,
    models: RegisteredModels,
    stack: Settings,
    predictions_topic: str,
    write_rows: Callable[[list[FeatureRow]], None],
) -> None:
    """Scores kept for unchanged rows are dropped as soon as a row changes or a value ages out."""
    msft = EntityKey.of(symbol="MSFT")
    # rolling_1m's TTL is one hour: this row is PRESENT for 4 more seconds, then OUTSIDE_MAX_AGE.
    edge = datetime.now(UTC) - timedelta(hours=1) + timedelta(seconds=4)
    write_rows(
        [
            FeatureRow("bars_1m", msft, NOW, {"close": 10.0, "volume": 1.0}),
            FeatureRow("rolling_1m", msft, edge, {"vwap_5m": 11.0}),
        ]
    )
    entities = {"symbol": ["MSFT"]}
    nan = float("nan")
    with FeatureStoreClient(server.target, retry=NO_RETRY, timeout_s=60) as client:
        first = client.predict(models.name, entities=entities)
        again = client.predict(models.name, entities=entities)
        assert again.scores == first.scores
        np.testing.assert_allclose(again.scores, models.expected_v1([[10.0, 11.0, 1.0]]))
        assert again.predictions[0].request_id != first.predictions[0].request_id

        write_rows([FeatureRow("bars_1m", msft, NOW, {"close": 20.0, "volume": 1.0})])
        # Version 2 reads the same fields: once it sees the new row, the server's row cache holds
        # it again, and the champion's next call finds a row other than the one it scored.
        deadline = time.monotonic() + 5  # Redis's invalidation reaches the server's cache
        pinned = client.predict(models.name, version=2, entities=entities)
        while pinned.predictions[0].features["bars_1m:close"].value != 20.0:
            assert time.monotonic() < deadline, "the changed row was never read"
            time.sleep(0.05)
            pinned = client.predict(models.name, version=2, entities=entities)
        changed = client.predict(models.name, entities=entities)
        assert changed.predictions[0].features["bars_1m:close"].value == 20.0
        np.testing.assert_allclose(changed.scores, models.expected_v1([[20.0, 11.0, 1.0]]))

        time.sleep(max(0.0, edge.timestamp() + 3600 - time.time()) + 0.2)
        aged = client.predict(models.name, entities=entities)
    vwap = aged.predictions[0].features["rolling_1m:vwap_5m"]
    assert vwap.status is FeatureStatus.OUTSIDE_MAX_AGE and vwap.value is None
    np.testing.assert_allclose(aged.scores, models.expected_v1([[20.0, nan, 1.0]]))

    server.run(_flush_log(server))
    with ConfluentSchemaStore.from_settings(stack.schema_registry) as store:
        logged = {
            r.event.request_id: r.event
            for r in replay_topic(stack.kafka.connection, store, predictions_topic)
            if isinstance(r, LoggedEvent) and isinstance(r.event, PredictionLog)
        }
    calls = (first, again, changed, aged)
    assert all(call.predictions[0].request_id in logged for call in calls)
    closes = [logged[c.predictions[0].request_id].features["bars_1m:close"] for c in calls]
    assert closes == [10.0, 10.0, 20.0, 20.0]
    assert logged[aged.predictions[0].request_id].features["rolling_1m:vwap_5m"] is None
    assert [logged[c.predictions[0].request_id].prediction for c in calls] == pytest.approx(
        [c.scores[0] for c in calls], nan_ok=True
    )


async def _flush_log(server: ServerThread) -> None:
    from featurestore.service.prediction_log_process import PredictionLogProcess

    for closer in server.handle.closers:
        owner = getattr(closer, "__self__", None)
        if isinstance(owner, PredictionLogProcess):
            assert await owner.flush() == 0


def test_promotion_is_picked_up_without_restart_and_versions_pin(
    server: ServerThread, models: RegisteredModels, stack: Settings
) -> None:
    row = [[190.0, 189.0, 7.0]]
    with FeatureStoreClient(server.target, retry=NO_RETRY, timeout_s=60) as client:
        before = client.predict(models.name, alias="champion", entities={"symbol": ["AAPL"]})
        assert before.model_version == "1"
        move_alias(stack, models.name, "champion", "2")
        try:
            deadline = time.monotonic() + 20
            after = before
            while after.model_version == "1" and time.monotonic() < deadline:
                time.sleep(0.1)
                after = client.predict(models.name, entities={"symbol": ["AAPL"]})
            assert after.model_version == "2"
            np.testing.assert_allclose(after.scores, models.expected_v2(row), rtol=1e-9)
            pinned = client.predict(models.name, version=1, entities={"symbol": ["AAPL"]})
            assert pinned.model_version == "1"
            np.testing.assert_allclose(pinned.scores, models.expected_v1(row), rtol=1e-9)
        finally:
            move_alias(stack, models.name, "champion", "1")


def test_inline_features_replace_online_ones(
    server: ServerThread, models: RegisteredModels
) -> None:
    with FeatureStoreClient(server.target, retry=NO_RETRY, timeout_s=60) as client:
        result = client.predict(
            models.name,
            version="1",
            entities={"symbol": ["AAPL", "NEW"]},
            inline_features={"rolling_1m:vwap_5m": [180.0, None]},
        )
        with pytest.raises(InvalidArgumentError, match=r"inline_features\[bars_1m:open\]"):
            client.predict(
                models.name,
                entities={"symbol": ["AAPL"]},
                inline_features={"bars_1m:open": [1.0]},
            )
        with pytest.raises(InvalidArgumentError, match="inline_features"):
            client.predict(
                models.name,
                entities={"symbol": ["AAPL"]},
                inline_features={"rolling_1m:vwap_5m": [1.0, 2.0]},
            )
    nan = float("nan")
    expected = models.expected_v1([[190.0, 180.0, 7.0], [nan, nan, nan]])
    np.testing.assert_allclose(result.scores, expected, rtol=1e-9)
    assert result.predictions[0].features["rolling_1m:vwap_5m"].status is FeatureStatus.PRESENT
    assert result.predictions[1].features["rolling_1m:vwap_5m"].status is (FeatureStatus.NULL_VALUE)
    assert not math.isnan(result.scores[1])


def test_unknown_model_alias_version_and_bad_input(
    server: ServerThread, models: RegisteredModels
) -> None:
    with FeatureStoreClient(server.target, retry=NO_RETRY, timeout_s=60) as client:
        with pytest.raises(NotFoundError, match="no-such-model-"):
            client.predict(f"no-such-model-{uuid.uuid4().hex[:6]}", entities={"symbol": ["A"]})
        with pytest.raises(NotFoundError, match="alias 'nope'"):
            client.predict(models.name, alias="nope", entities={"symbol": ["A"]})
        with pytest.raises(NotFoundError, match="version '99'"):
            client.predict(models.name, version=99, entities={"symbol": ["A"]})
        with pytest.raises(InvalidArgumentError, match="model_name"):
            client.predict("", entities={"symbol": ["A"]})
        with pytest.raises(InvalidArgumentError, match="version"):
            client.predict(models.name, version="latest", entities={"symbol": ["A"]})
        with pytest.raises(InvalidArgumentError, match="entities"):
            client.predict(models.name, entities={})


def test_mlflow_down_is_unavailable(start_server: Callable[..., ServerThread]) -> None:
    server = start_server(update={"mlflow": MlflowSettings(port=free_port())})
    client = FeatureStoreClient(server.target, retry=NO_RETRY, timeout_s=10)
    with client, pytest.raises(UnavailableError, match="MLflow"):
        client.predict("any", entities={"symbol": ["A"]})

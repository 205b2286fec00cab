"""The SDK against a live server on the real Redis: each status and each error case."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import grpc
import numpy as np
import pytest
from featurestore_client import FeatureStatus
from featurestore_client import FeatureStoreClient
from featurestore_client import InvalidArgumentError
from featurestore_client import NotFoundError
from featurestore_client import RetryPolicy
from featurestore_client import UnavailableError
from featurestore_client._columns import decode_columns
from featurestore_client._convert import online_request
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from featurestore.config import RedisSettings
from featurestore.online import EntityKey
from featurestore.online import FeatureRow
from featurestore.service import Telemetry
from featurestore.service.testing import ServerThread
from tests.ports import free_port

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def client(
    start_server: Callable[..., ServerThread], write_rows: Callable[[list[FeatureRow]], None]
) -> FeatureStoreClient:
    write_rows(
        [
            FeatureRow(
                "bars_1m", EntityKey.of(symbol="AAPL"), NOW, {"close": 190.5, "vwap": 190.1}
            ),
            FeatureRow("rolling_1m", EntityKey.of(symbol="AAPL"), NOW, {"sma_5": 189.9}),
            FeatureRow("rolling_1m", EntityKey.of(symbol="OLD"), NOW, {"sma_5": 1.5}),
            FeatureRow(
                "bars_1m", EntityKey.of(symbol="OLD"), NOW - timedelta(hours=2), {"close": 1.0}
            ),
        ]
    )
    server = start_server()
    return FeatureStoreClient(server.target, retry=RetryPolicy(max_attempts=1))


def test_statuses_and_event_times_from_redis(client: FeatureStoreClient) -> None:
    with client:
        result = client.get_online_features(
            ["bars_1m:close", "rolling_1m:sma_5", "bars_1m:volume"],
            entities={"symbol": ["AAPL", "OLD", "GHOST"]},
        )
    close = result.features["bars_1m:close"]
    assert [v.value for v in close] == [190.5, 1.0, None]
    assert [v.status for v in close] == [
        FeatureStatus.PRESENT,
        FeatureStatus.OUTSIDE_MAX_AGE,
        FeatureStatus.NOT_FOUND,
    ]
    assert [v.event_time for v in close] == [NOW, NOW - timedelta(hours=2), None]
    assert result.features["bars_1m:volume"][0].status is FeatureStatus.NULL_VALUE
    assert result.features["rolling_1m:sma_5"][1].value == 1.5


def test_a_hundred_entities_decode_on_the_numpy_path(
    start_server: Callable[..., ServerThread], write_rows: Callable[[list[FeatureRow]], None]
) -> None:
    """The server copies Redis' bytes into its answer; the SDK decodes those bytes without
    protobuf's value-by-value path (doubles, an integer, millisecond event times, an entity
    without rows)."""
    symbols = [f"NP{i:03d}" for i in range(100)]
    rows = []
    for i, symbol in enumerate(symbols[:-1]):  # the last one has no rows
        at, key = NOW - timedelta(milliseconds=7 * i), EntityKey.of(symbol=symbol)
        rows.append(FeatureRow("bars_1m", key, at, {"close": i / 4, "trade_count": i}))
        rows.append(FeatureRow("rolling_1m", key, at - timedelta(seconds=5), {"sma_5": i / 2}))
    write_rows(rows)
    server = start_server()
    features = ["bars_1m:close", "bars_1m:trade_count", "rolling_1m:sma_5"]
    request = online_request(features, None, {"symbol": symbols})
    with grpc.insecure_channel(server.target) as channel:
        call = channel.unary_unary("/featurestore.v1.FeatureService/GetOnlineFeatures")
        data = call(request, timeout=5)
    close, trades, sma = decode_columns(data, 100, fast_only=True)  # raises where it is not
    assert close.values[:3].tolist() == [0.0, 0.25, 0.5] and trades.values.dtype == np.int64
    assert trades.values[98] == 98 and not trades.is_set[99] and np.isnan(sma.values[99])
    assert close.event_times[2] == np.datetime64(
        NOW.replace(tzinfo=None) - timedelta(milliseconds=14)
    )
    assert sma.event_times[0] == np.datetime64(NOW.replace(tzinfo=None) - timedelta(seconds=5))
    with FeatureStoreClient(server.target) as client:
        answer = client.get_online_features(features, entities={"symbol": symbols})
    assert answer.to_numpy()[:99].tolist() == [[i / 4, i, i / 2] for i in range(99)]
    assert answer.row(99).features["bars_1m:close"].status is FeatureStatus.NOT_FOUND


def test_feature_service_as_dataframe(client: FeatureStoreClient) -> None:
    with client:
        frame = client.get_online_features(
            feature_service="market_features_v1", entities={"symbol": ["AAPL", "OLD"]}
        ).to_dataframe()
    assert list(frame["symbol"]) == ["AAPL", "OLD"]
    assert frame.loc[0, "bars_1m:vwap"] == 190.1
    assert frame.shape == (2, 19)


def test_unknown_feature_is_not_found_naming_it(client: FeatureStoreClient) -> None:
    with client:
        with pytest.raises(NotFoundError, match="bars_1m:no_such_feature"):
            client.get_online_features(["bars_1m:no_such_feature"], entities={"symbol": ["AAPL"]})
        with pytest.raises(NotFoundError, match="no_such_service"):
            client.get_online_features(
                feature_service="no_such_service", entities={"symbol": ["A"]}
            )


def test_bad_entity_is_invalid_argument_naming_the_field(client: FeatureStoreClient) -> None:
    with client, pytest.raises(InvalidArgumentError) as info:
        client.get_online_features(["bars_1m:close"], entities={"symbol": ["AAPL", True]})
    assert info.value.details.startswith("entities[symbol].values[1]:")


def test_redis_down_is_unavailable_and_retried(start_server: Callable[..., ServerThread]) -> None:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    server = start_server(
        redis=RedisSettings(port=free_port()),
        telemetry=Telemetry(tracer_provider, MeterProvider()),
        backend_timeout_s=0.5,
    )
    policy = RetryPolicy(max_attempts=3, initial_backoff_s=0.05)
    started = time.monotonic()
    client = FeatureStoreClient(server.target, retry=policy, timeout_s=10)
    with client, pytest.raises(UnavailableError, match="Redis"):
        client.get_online_features(["bars_1m:close"], entities={"symbol": ["AAPL"]})
    assert time.monotonic() - started < 5

    def calls() -> list[ReadableSpan]:  # the server's span of each attempt (not its Redis spans)
        return [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]

    deadline = time.monotonic() + 2
    while len(calls()) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(calls()) == 3
    assert {s.attributes["rpc.grpc.status_code"] for s in calls()} == {14}  # type: ignore[index]

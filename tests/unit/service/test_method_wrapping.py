"""Auth, telemetry, error mapping, deadlines and graceful shutdown, through a live server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import grpc
import pytest
from featurestore_client import DeadlineExceededError
from featurestore_client import FeatureStoreClient
from featurestore_client import FeatureStoreClientError
from featurestore_client import NotFoundError
from featurestore_client import RetryPolicy
from featurestore_client import UnauthenticatedError
from grpc_health.v1 import health_pb2
from grpc_health.v1 import health_pb2_grpc
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracerProvider
from pydantic import SecretStr

from featurestore.config import load_settings
from featurestore.config import settings_env
from featurestore.errors import ConfigurationError
from featurestore.online import EntityKey
from featurestore.online import FeatureRef
from featurestore.online import OnlineFeatures
from featurestore.online.testing import InMemoryOnlineStore
from featurestore.online.testing import market_catalog
from featurestore.service import Telemetry
from featurestore.service.testing import ServerThread
from tests.metric_points import metric_points

NO_RETRY = RetryPolicy(max_attempts=1)


class SlowStore(InMemoryOnlineStore):
    def __init__(self, delay_s: float) -> None:
        super().__init__(market_catalog())
        self.delay_s = delay_s
        self.cancelled = 0

    async def read(
        self,
        entities: Sequence[EntityKey],
        refs: Sequence[FeatureRef],
        *,
        now: datetime | None = None,
    ) -> OnlineFeatures:
        try:
            await asyncio.sleep(self.delay_s)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return await super().read(entities, refs, now=now)


class BrokenStore(InMemoryOnlineStore):
    async def read(self, *args: object, **kwargs: object) -> OnlineFeatures:
        raise RuntimeError("secret internals /etc/passwd")


def _get(client: FeatureStoreClient, **kw: object) -> object:
    return client.get_online_features(["bars_1m:close"], entities={"symbol": ["A"]}, **kw)  # type: ignore[arg-type]


def test_bearer_token_required_when_configured(start_server: Callable[..., ServerThread]) -> None:
    server = start_server(
        auth_tokens=(SecretStr("s3cret predict"), SecretStr("other features:read"))
    )
    anonymous = FeatureStoreClient(server.target, retry=NO_RETRY)
    with anonymous, pytest.raises(UnauthenticatedError):
        _get(anonymous)
    wrong = FeatureStoreClient(server.target, token="wrong", retry=NO_RETRY)
    with wrong, pytest.raises(UnauthenticatedError):
        _get(wrong)
    with FeatureStoreClient(server.target, token="other") as allowed:
        _get(allowed)
    with grpc.insecure_channel(server.target) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_unexpected_errors_are_internal_without_details(
    start_server: Callable[..., ServerThread],
) -> None:
    server = start_server(store=BrokenStore(market_catalog()))
    client = FeatureStoreClient(server.target, retry=NO_RETRY)
    with client, pytest.raises(FeatureStoreClientError) as info:
        _get(client)
    assert info.value.code is grpc.StatusCode.INTERNAL
    assert info.value.details == "internal error"


def test_deadline_is_honoured_and_the_read_cancelled(
    start_server: Callable[..., ServerThread],
) -> None:
    store = SlowStore(delay_s=3)
    server = start_server(store=store)
    started = time.monotonic()
    client = FeatureStoreClient(server.target, retry=NO_RETRY)
    with client, pytest.raises(DeadlineExceededError):
        _get(client, timeout_s=0.3)
    assert time.monotonic() - started < 2
    deadline = time.monotonic() + 2
    while store.cancelled == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.cancelled == 1


def test_graceful_stop_finishes_in_flight_calls(
    start_server: Callable[..., ServerThread],
) -> None:
    server = start_server(store=SlowStore(delay_s=0.5))
    client = FeatureStoreClient(server.target, retry=NO_RETRY)
    with client:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1) as pool:
            in_flight = pool.submit(_get, client)
            time.sleep(0.2)
            stopping = server.submit(server.handle.stop(5))
            result = in_flight.result(5)
            stopping.result(10)
    assert result is not None
    late = FeatureStoreClient(server.target, retry=NO_RETRY, timeout_s=1)
    with late, pytest.raises(FeatureStoreClientError) as info:
        _get(late)
    assert info.value.code is grpc.StatusCode.UNAVAILABLE


def test_every_rpc_gets_a_span_and_a_duration(start_server: Callable[..., ServerThread]) -> None:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    telemetry = Telemetry(tracer_provider, MeterProvider(metric_readers=[reader]))
    server = start_server(telemetry=telemetry)
    with FeatureStoreClient(server.target, retry=NO_RETRY) as client:
        _get(client)
        with pytest.raises(FeatureStoreClientError):
            client.get_online_features(["nope:x"], entities={"symbol": ["A"]})
    # The status reaches the client as the handler unwinds: give the span a moment to end.
    deadline = time.monotonic() + 2
    while len(spans.get_finished_spans()) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    finished = spans.get_finished_spans()
    assert [s.name for s in finished] == ["featurestore.v1.FeatureService/GetOnlineFeatures"] * 2
    assert [s.attributes["rpc.grpc.status_code"] for s in finished] == [0, 5]  # type: ignore[index]
    points = _duration_points(reader)
    assert sorted(int(p.attributes["rpc.grpc.status_code"]) for p in points) == [0, 5]


def _duration_points(reader: InMemoryMetricReader) -> list[Any]:
    return [point for _, point in metric_points(reader, "rpc.server.duration")]


def test_metrics_are_recorded_without_a_tracer(start_server: Callable[..., ServerThread]) -> None:
    reader = InMemoryMetricReader()
    telemetry = Telemetry(NoOpTracerProvider(), MeterProvider(metric_readers=[reader]))
    assert not telemetry.traces
    server = start_server(telemetry=telemetry)
    with FeatureStoreClient(server.target, retry=NO_RETRY) as client:
        _get(client)
        _get(client)
        with pytest.raises(NotFoundError):
            client.get_online_features(["nope:x"], entities={"symbol": ["A"]})
    # The status reaches the client as the handler unwinds: give the record a moment.
    deadline = time.monotonic() + 2
    while True:
        points = _duration_points(reader)
        counts = {int(p.attributes["rpc.grpc.status_code"]): p.count for p in points}
        if counts == {0: 2, 5: 1} or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert counts == {0: 2, 5: 1}


def test_service_settings_from_env() -> None:
    settings = load_settings(
        {
            "FEATURESTORE_SERVICE__AUTH_TOKENS": "a features:read, b *",
            "FEATURESTORE_SERVICE__SHUTDOWN_GRACE_S": "3",
            "OTHER": "ignored",  # not FEATURESTORE_*: a name of that prefix must be a setting
        }
    ).service
    assert [t.get_secret_value() for t in settings.auth_tokens] == ["a features:read", "b *"]
    assert settings.shutdown_grace_s == 3
    assert not settings.tls
    with pytest.raises(ConfigurationError, match="go together"):
        load_settings({"FEATURESTORE_SERVICE__TLS_CERT_FILE": "/x.pem"})
    env = settings_env(load_settings({"FEATURESTORE_SERVICE__AUTH_TOKENS": "a features:read,b *"}))
    assert env["FEATURESTORE_SERVICE__AUTH_TOKENS"] == "a features:read,b *"
    assert load_settings(env).service.auth_tokens == settings.auth_tokens

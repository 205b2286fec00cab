"""Traces of GetOnlineFeatures (SDK to Redis) and Predict (to its log) reach an OTLP receiver.

The server's exporter is chosen by its settings (``FEATURESTORE_TRACING__*``: OTLP, the
receiver's endpoint, a header); the SDK's client span goes to the same receiver from this
process. The server reads the stack's real Redis.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime

import pytest
from featurestore_client import FeatureStoreClient
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from featurestore.config import Settings
from featurestore.config import TopicSettings
from featurestore.config import TracingSettings
from featurestore.online import EntityKey
from featurestore.online import FeatureRow
from featurestore.service.testing import ServerThread
from tests.integration.service.mlflow_models import RegisteredModels
from tests.otlp_receiver import OtlpReceiver
from tests.otlp_receiver import ReceivedSpan
from tests.otlp_receiver import otlp_receiver

pytestmark = pytest.mark.integration

METHOD = "featurestore.v1.FeatureService/GetOnlineFeatures"


@pytest.fixture
def receiver() -> Iterator[tuple[OtlpReceiver, str]]:
    with otlp_receiver() as running:
        yield running


def test_a_get_online_features_trace_reaches_the_receiver_with_its_redis_span(
    receiver: tuple[OtlpReceiver, str],
    stack: Settings,
    start_server: Callable[..., ServerThread],
    write_rows: Callable[[list[FeatureRow]], None],
) -> None:
    spans, endpoint = receiver
    run = uuid.uuid4().hex[:8]
    symbol = f"TRACE{run}"
    write_rows([FeatureRow("bars_1m", EntityKey.of(symbol=symbol), datetime.now(UTC),
                           {"close": 7.5})])  # fmt: skip
    tracing = TracingSettings(exporter="otlp", endpoint=endpoint, headers=f"X-Run={run}")
    server = start_server(update={"tracing": tracing})
    client_provider = TracerProvider(resource=Resource.create({"service.name": "sdk-test"}))
    client_provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True))
    )
    with FeatureStoreClient(server.target, tracer_provider=client_provider) as client:
        got = client.get_online_features(["bars_1m:close"], entities={"symbol": [symbol]})
    assert got.to_dicts()[0]["bars_1m:close"] == 7.5
    client_provider.shutdown()
    (client_span,) = [s for s in spans.spans if s.service == "sdk-test"]
    server.stop(grace_s=1)  # sends the server's queued spans

    def whole_trace() -> list[ReceivedSpan]:
        return spans.trace(client_span.trace_id)

    deadline = time.monotonic() + 20
    while len(whole_trace()) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert client_span.name == METHOD and client_span.kind == Span.SPAN_KIND_CLIENT
    server_span = next(s for s in whole_trace() if s.service == "featurestore-grpc"
                       and s.kind == Span.SPAN_KIND_SERVER)  # fmt: skip
    assert server_span.name == METHOD
    assert server_span.parent_span_id == client_span.span_id
    assert server_span.attributes["rpc.grpc.status_code"] == 0
    (redis_span,) = [s for s in whole_trace() if s.name.startswith("redis ")]
    assert redis_span.parent_span_id == server_span.span_id
    assert redis_span.kind == Span.SPAN_KIND_CLIENT
    assert redis_span.service == "featurestore-grpc"
    assert redis_span.attributes["db.system.name"] == "redis"
    assert redis_span.attributes["db.operation.name"] == "HMGET"
    assert redis_span.attributes["server.port"] == stack.redis.port
    # The configured header came with the server's export (gRPC metadata keys are lower case).
    assert any(m.get("x-run") == run for m in spans.metadata)


def test_a_predict_trace_continues_in_the_prediction_log_writer(
    receiver: tuple[OtlpReceiver, str],
    start_server: Callable[..., ServerThread],
    write_rows: Callable[[list[FeatureRow]], None],
    new_topic: Callable[..., str],
    models: RegisteredModels,
) -> None:
    """The writer process's producer span is a child of the Predict call's server span."""
    spans, endpoint = receiver
    topic = new_topic("predictions-traced", partitions=1)
    write_rows([FeatureRow("bars_1m", EntityKey.of(symbol="AAPL"), datetime.now(UTC),
                           {"close": 190.0, "volume": 7.0})])  # fmt: skip
    tracing = TracingSettings(exporter="otlp", endpoint=endpoint)
    server = start_server(topics=TopicSettings(predictions=topic), update={"tracing": tracing})
    client_provider = TracerProvider(resource=Resource.create({"service.name": "sdk-test"}))
    client_provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True))
    )
    with FeatureStoreClient(server.target, tracer_provider=client_provider, timeout_s=60) as client:
        client.predict(models.name, entities={"symbol": ["AAPL", "IBM"]})
    client_provider.shutdown()
    (client_span,) = [s for s in spans.spans if s.service == "sdk-test"]
    server.stop(grace_s=5)  # the writer flushes, sends its spans and exits

    def sends() -> list[ReceivedSpan]:
        return [s for s in spans.trace(client_span.trace_id) if s.name == f"send {topic}"]

    deadline = time.monotonic() + 20
    while not sends() and time.monotonic() < deadline:
        time.sleep(0.2)
    server_span = next(s for s in spans.trace(client_span.trace_id)
                       if s.kind == Span.SPAN_KIND_SERVER)  # fmt: skip
    (send,) = sends()
    assert send.kind == Span.SPAN_KIND_PRODUCER and send.service == "featurestore-grpc"
    assert send.parent_span_id == server_span.span_id
    assert send.attributes["messaging.batch.message_count"] == 2

"""The SDK's client span is the parent of the server's span: the trace crosses the call."""

from __future__ import annotations

import time
from collections.abc import Callable

from featurestore_client import FeatureStoreClient
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from featurestore.service import Telemetry
from featurestore.service.testing import ServerThread


def _traced_server(
    start_server: Callable[..., ServerThread],
) -> tuple[ServerThread, TracerProvider, InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    return start_server(telemetry=Telemetry(provider, MeterProvider())), provider, spans


def test_the_server_span_continues_the_sdk_callers_trace(
    start_server: Callable[..., ServerThread],
) -> None:
    server, provider, spans = _traced_server(start_server)
    tracer = provider.get_tracer("caller")
    with (
        FeatureStoreClient(server.target, tracer_provider=provider) as client,
        tracer.start_as_current_span("caller's work") as outer,
    ):
        client.get_online_features(["bars_1m:close"], entities={"symbol": ["A"]})
    deadline = time.monotonic() + 2
    while len(spans.get_finished_spans()) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    by_kind = {s.kind: s for s in spans.get_finished_spans()}
    client_span, server_span = by_kind[SpanKind.CLIENT], by_kind[SpanKind.SERVER]
    trace_id = outer.get_span_context().trace_id
    assert client_span.context.trace_id == server_span.context.trace_id == trace_id
    assert client_span.parent is not None and server_span.parent is not None
    assert client_span.parent.span_id == outer.get_span_context().span_id
    assert server_span.parent.span_id == client_span.context.span_id
    assert server_span.parent.is_remote


def test_without_a_caller_span_the_server_starts_a_new_trace(
    start_server: Callable[..., ServerThread],
) -> None:
    server, _, spans = _traced_server(start_server)
    with FeatureStoreClient(server.target) as client:  # the global provider: a no-op
        client.get_online_features(["bars_1m:close"], entities={"symbol": ["A"]})
    deadline = time.monotonic() + 2
    while not spans.get_finished_spans() and time.monotonic() < deadline:
        time.sleep(0.02)
    (server_span,) = spans.get_finished_spans()
    assert server_span.parent is None

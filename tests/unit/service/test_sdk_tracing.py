"""The SDK's call tracing: a span where a tracer records, the caller's context always."""

from __future__ import annotations

from featurestore_client._tracing import CallTracing
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

METHOD = "featurestore.v1.FeatureService/GetOnlineFeatures"
TOKEN = (("authorization", "Bearer t"),)


def _traceparent_span_id(metadata: tuple[tuple[str, str], ...]) -> int:
    (value,) = [v for k, v in metadata if k == "traceparent"]
    return int(value.split("-")[2], 16)


def test_without_a_tracer_provider_a_call_sends_its_metadata_and_no_span() -> None:
    tracing = CallTracing()  # the global provider, which no test sets: a no-op
    assert not tracing.recording()
    with tracing.call(METHOD, TOKEN) as metadata:
        assert metadata == TOKEN


def test_a_no_op_tracer_sends_the_callers_context_as_its_span_would() -> None:
    """What OpenTelemetry's no-op tracer does: its span is the caller's, whose context goes."""
    caller = TracerProvider().get_tracer("caller")
    for tracing in (CallTracing(), CallTracing(trace.NoOpTracerProvider())):
        assert not tracing.recording()
        with caller.start_as_current_span("caller's work") as outer:
            with tracing.call(METHOD, TOKEN) as metadata:
                assert metadata[0] == TOKEN[0]
                assert _traceparent_span_id(metadata) == outer.get_span_context().span_id
            with trace.use_span(trace.INVALID_SPAN), tracing.call(METHOD, ()) as inner:
                assert inner == ()


def test_a_recording_tracer_makes_a_client_span_whose_context_is_sent() -> None:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    tracing = CallTracing(provider)
    assert tracing.recording()
    with tracing.call(METHOD, TOKEN) as metadata:
        assert metadata[0] == TOKEN[0]
        sent = _traceparent_span_id(metadata)
    (span,) = spans.get_finished_spans()
    assert span.kind is trace.SpanKind.CLIENT and span.name == METHOD
    assert span.context.span_id == sent
    assert span.attributes is not None and span.attributes["rpc.method"] == "GetOnlineFeatures"

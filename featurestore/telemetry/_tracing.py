"""Spans: the exporter the settings name, and the trace context carried across processes.

A call from the Python SDK carries the caller's context in its gRPC metadata (W3C
``traceparent``, through OpenTelemetry's configured propagator, tracecontext and baggage by
default). The server's method wrapper continues that trace (:func:`remote_context`), so its
span and the spans of the Redis reads and Kafka writes made for the call (client and producer
spans, children of the server's) land in the caller's trace. A record the server produces
carries the context in its Kafka headers (:func:`kafka_headers`) for whoever consumes it.

Spans leave the process through a batch processor: an exporter that is slow or down costs the
request path nothing but a queue append, and spans are dropped (never waited for) when the
queue is full.
"""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry import propagate
from opentelemetry import trace
from opentelemetry.context import Context

from featurestore.config import TracingSettings

__all__ = ["kafka_headers", "remote_context", "tracer_provider"]


def tracer_provider(settings: TracingSettings, service: str) -> trace.TracerProvider:
    """The tracer provider of a process called ``service`` (a no-op one for ``none``)."""
    if settings.exporter == "none":
        return trace.NoOpTracerProvider()
    from opentelemetry.sdk.resources import SERVICE_NAME
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.sdk.trace.sampling import ParentBased
    from opentelemetry.sdk.trace.sampling import TraceIdRatioBased

    exporter: SpanExporter
    if settings.exporter == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(
            endpoint=settings.endpoint,
            insecure=settings.insecure,
            headers=settings.header_pairs,
            timeout=settings.timeout_s,
        )
    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: service}),
        sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)),
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def remote_context(metadata: Iterable[tuple[str, str | bytes]] | None) -> Context:
    """The caller's trace context from a call's gRPC metadata (empty when it sent none)."""
    carrier = {k: v for k, v in metadata or () if isinstance(v, str)}
    return propagate.extract(carrier)


def kafka_headers() -> list[tuple[str, str | bytes | None]]:
    """The current trace context as Kafka record headers (none outside a recorded span)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return [(key, value.encode()) for key, value in carrier.items()]

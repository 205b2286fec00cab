"""The caller's trace, continued by the server: a client span per call, sent in its metadata.

Only when OpenTelemetry's API is installed (the ``otel`` extra); without it calls carry nothing.
Each call is a client span of the tracer provider given to the client (OpenTelemetry's global one
by default: a no-op until the application configures an SDK), and the span's context goes with
the call through the configured propagator (W3C ``traceparent`` by default). The server starts
its span as this one's child, and its Redis and Kafka spans below that.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

try:
    from opentelemetry import propagate
    from opentelemetry import trace
except ImportError:  # pragma: no cover - the otel extra is not installed
    propagate = trace = None  # type: ignore[assignment]

__all__ = ["CallTracing", "Metadata"]

Metadata = tuple[tuple[str, str], ...]


class CallTracing:
    """Starts the client span of a call and adds its context to the call's metadata."""

    def __init__(self, tracer_provider: Any = None) -> None:
        self._tracer = (
            None
            if trace is None
            else trace.get_tracer("featurestore_client", tracer_provider=tracer_provider)
        )

    def recording(self) -> bool:
        """Whether a call gets a span of its own: False while the tracer is a no-op.

        The global tracer provider is a no-op until the application sets one (the client's
        tracer follows it from then on), and a no-op tracer's span is the caller's, so the
        metadata is then the caller's context, which :meth:`context` gives without the span.
        """
        tracer = self._tracer
        if tracer is None or isinstance(tracer, trace.NoOpTracer):
            return False
        if isinstance(tracer, trace.ProxyTracer):
            provider = trace.get_tracer_provider()
            return not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)
        return True

    @contextmanager
    def call(self, method: str, metadata: Metadata) -> Iterator[Metadata]:
        """Around one call of ``method`` (``featurestore.v1.FeatureService/GetOnlineFeatures``).

        Yields the metadata to send: ``metadata`` and the trace context.
        """
        if not self.recording():
            yield (*metadata, *self.context())
            return
        service, _, name = method.partition("/")
        attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}
        with self._tracer.start_as_current_span(
            method, kind=trace.SpanKind.CLIENT, attributes=attributes
        ):
            yield (*metadata, *self.context())

    def context(self) -> Metadata:
        """The current trace context as metadata pairs (none without OpenTelemetry)."""
        if propagate is None:
            return ()
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        return tuple(carrier.items())

"""OpenTelemetry for every RPC: a duration histogram always, a span when tracing is on.

The exporter is configuration (:attr:`ServiceSettings.telemetry`): ``none`` installs no-op
providers, ``console`` prints spans and metrics. Tests pass their own providers. With a no-op
tracer provider no span is started at all (a no-op span still costs a context switch of
OpenTelemetry's context per call); the histogram is recorded either way (a no-op record is a
function call).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import grpc
from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

__all__ = ["RpcTelemetry", "Telemetry"]


@dataclass(frozen=True)
class Telemetry:
    """The providers the service reports to."""

    tracer_provider: trace.TracerProvider
    meter_provider: metrics.MeterProvider

    @classmethod
    def disabled(cls) -> Telemetry:
        """No-op providers: nothing is recorded."""
        return cls(trace.NoOpTracerProvider(), metrics.NoOpMeterProvider())

    @classmethod
    def console(cls) -> Telemetry:
        """Spans and metrics printed to stdout (metrics every 60 s)."""
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import (
            ConsoleMetricExporter,
            PeriodicExportingMetricReader,
        )
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        reader = PeriodicExportingMetricReader(ConsoleMetricExporter())
        return cls(tracer_provider, MeterProvider(metric_readers=[reader]))

    @classmethod
    def named(cls, exporter: str) -> Telemetry:
        """The providers for a configured exporter name."""
        return cls.console() if exporter == "console" else cls.disabled()

    @property
    def traces(self) -> bool:
        """Whether spans go anywhere."""
        return not isinstance(self.tracer_provider, trace.NoOpTracerProvider)


class RpcTelemetry:
    """One span per RPC (when tracing) and an ``rpc.server.duration`` histogram (milliseconds)."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.tracer = (
            telemetry.tracer_provider.get_tracer("featurestore.service")
            if telemetry.traces
            else None
        )
        """None when spans go nowhere: the method wrappers then start none."""
        meter = telemetry.meter_provider.get_meter("featurestore.service")
        self._duration = meter.create_histogram(
            "rpc.server.duration", unit="ms", description="Duration of RPCs handled"
        )
        self._attributes: dict[tuple[str, grpc.StatusCode], dict[str, str | int]] = {}

    def attributes(self, method: str, code: grpc.StatusCode) -> dict[str, str | int]:
        """The attributes of an RPC that ended with ``code`` (built once per method and code)."""
        attributes = self._attributes.get((method, code))
        if attributes is None:
            service, _, name = method.lstrip("/").partition("/")
            attributes = self._attributes[(method, code)] = {
                "rpc.system": "grpc",
                "rpc.service": service,
                "rpc.method": name,
                "rpc.grpc.status_code": code.value[0],
            }
        return attributes

    def start_span(self, method: str) -> trace.Span:
        """A server span for ``method``; only called when :attr:`tracer` is set."""
        assert self.tracer is not None
        return self.tracer.start_span(method.lstrip("/"), kind=SpanKind.SERVER)

    def finish(
        self, method: str, code: grpc.StatusCode, started: float, span: trace.Span | None
    ) -> None:
        """Record the duration since ``started`` (``perf_counter``) and end the span."""
        attributes = self.attributes(method, code)
        self._duration.record((time.perf_counter() - started) * 1000, attributes)
        if span is not None:
            span.set_attributes(attributes)
            if code is not grpc.StatusCode.OK:
                span.set_status(Status(StatusCode.ERROR, code.name))
            span.end()

"""OpenTelemetry for every RPC: a span and a duration histogram, labelled with the status code.

The exporter is configuration (:attr:`ServiceSettings.telemetry`): ``none`` installs no-op
providers, ``console`` prints spans and metrics. Tests pass their own providers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from featurestore.service.interceptors import (
    StreamBehavior,
    UnaryBehavior,
    wrap_handler,
)

__all__ = ["Telemetry", "TelemetryInterceptor"]


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


class TelemetryInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc has no stubs
    """One span per RPC and an ``rpc.server.duration`` histogram (milliseconds)."""

    def __init__(self, telemetry: Telemetry) -> None:
        self._tracer = telemetry.tracer_provider.get_tracer("featurestore.service")
        meter = telemetry.meter_provider.get_meter("featurestore.service")
        self._duration = meter.create_histogram(
            "rpc.server.duration", unit="ms", description="Duration of RPCs handled"
        )

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        return wrap_handler(handler, handler_call_details.method, self._unary, self._stream)

    def _attributes(self, method: str, code: grpc.StatusCode) -> dict[str, str | int]:
        service, _, name = method.lstrip("/").partition("/")
        return {
            "rpc.system": "grpc",
            "rpc.service": service,
            "rpc.method": name,
            "rpc.grpc.status_code": code.value[0],
        }

    def _finish(self, span: trace.Span, method: str, code: grpc.StatusCode, start: float) -> None:
        attributes = self._attributes(method, code)
        span.set_attributes(attributes)
        if code is not grpc.StatusCode.OK:
            span.set_status(Status(StatusCode.ERROR, code.name))
        self._duration.record((time.perf_counter() - start) * 1000, attributes)

    def _unary(self, behavior: UnaryBehavior, method: str) -> UnaryBehavior:
        async def run(request: Any, context: grpc.aio.ServicerContext) -> Any:
            start = time.perf_counter()
            with self._tracer.start_as_current_span(
                method.lstrip("/"), kind=SpanKind.SERVER, record_exception=False
            ) as span:
                code = grpc.StatusCode.OK
                try:
                    return await behavior(request, context)
                except BaseException as exc:
                    code = _code_of(context, exc)
                    raise
                finally:
                    self._finish(span, method, code, start)

        return run

    def _stream(self, behavior: StreamBehavior, method: str) -> StreamBehavior:
        async def run(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            start = time.perf_counter()
            with self._tracer.start_as_current_span(
                method.lstrip("/"), kind=SpanKind.SERVER, record_exception=False
            ) as span:
                code = grpc.StatusCode.OK
                try:
                    async for response in behavior(request, context):
                        yield response
                except BaseException as exc:
                    code = _code_of(context, exc)
                    raise
                finally:
                    self._finish(span, method, code, start)

        return run


def _code_of(context: grpc.aio.ServicerContext, exc: BaseException) -> grpc.StatusCode:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if isinstance(exc, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED
    return grpc.StatusCode.UNKNOWN

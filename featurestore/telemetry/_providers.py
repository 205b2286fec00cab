"""The OpenTelemetry providers a process reports to, and the Prometheus registry they fill."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from opentelemetry import metrics
from opentelemetry import trace
from prometheus_client import CollectorRegistry

from featurestore.config import Settings
from featurestore.config import TracingSettings
from featurestore.telemetry._endpoint import MetricsEndpoint
from featurestore.telemetry._endpoint import serve_metrics
from featurestore.telemetry._tracing import tracer_provider

__all__ = ["Telemetry", "process_telemetry"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Telemetry:
    """The providers a process reports to.

    ``registry`` is the Prometheus registry of the process (None: no Prometheus metrics). The
    meter provider's Prometheus reader writes into it; instruments on a hot path, where an
    OpenTelemetry ``record`` costs several times what ``prometheus_client``'s does (figures in
    ``bench/RESULTS.md``), are ``prometheus_client`` metrics registered in it directly.
    """

    tracer_provider: trace.TracerProvider
    meter_provider: metrics.MeterProvider
    registry: CollectorRegistry | None = None
    """Where Prometheus metrics go; None when the process serves none."""
    endpoint: MetricsEndpoint | None = None
    """The ``/metrics`` endpoint serving :attr:`registry`, when this process serves one."""

    @classmethod
    def disabled(cls) -> Telemetry:
        """No-op providers: nothing is recorded."""
        return cls(trace.NoOpTracerProvider(), metrics.NoOpMeterProvider())

    @classmethod
    def prometheus(cls) -> Telemetry:
        """Metrics into a new Prometheus registry (not served: see :func:`process_telemetry`)."""
        return cls.build(TracingSettings(), prometheus=True)

    @classmethod
    def build(
        cls, tracing: TracingSettings, *, prometheus: bool, service: str = "featurestore"
    ) -> Telemetry:
        """Providers for the configured tracing exporter, with a Prometheus registry or not.

        ``console`` prints spans and, every 60 s, metrics; ``otlp`` sends spans to the
        configured receiver (:mod:`._tracing`); ``service`` names the process in its spans.
        """
        console = tracing.exporter == "console"
        if not (tracing.exporter != "none" or prometheus):
            return cls.disabled()
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import MetricReader

        readers: list[MetricReader] = []
        if console:
            from opentelemetry.sdk.metrics.export import ConsoleMetricExporter
            from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

            readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter()))
        registry = None
        if prometheus:
            from opentelemetry.exporter.prometheus import PrometheusMetricReader

            registry = CollectorRegistry()
            readers.append(PrometheusMetricReader(disable_target_info=True, registry=registry))
        return cls(
            tracer_provider(tracing, service), MeterProvider(metric_readers=readers), registry
        )

    @property
    def traces(self) -> bool:
        """Whether spans go anywhere."""
        return not isinstance(self.tracer_provider, trace.NoOpTracerProvider)

    def close(self) -> None:
        """Send the spans still queued, stop serving ``/metrics`` (and unregister)."""
        shutdown = getattr(self.tracer_provider, "shutdown", None)
        if shutdown is not None:
            shutdown()
        if self.endpoint is not None:
            self.endpoint.close()


def process_telemetry(
    settings: Settings,
    job: str,
    port: int,
    labels: Mapping[str, str] | None = None,
) -> Telemetry:
    """The telemetry of a process of the store, its ``/metrics`` served on ``port``.

    Args:
        settings: ``metrics.enabled`` and ``tracing`` decide what is built.
        job: the Prometheus job (``grpc``, ``processors``, ``ingest`` ...).
        port: the configured port (0: a free one, registered for discovery).
        labels: target labels Prometheus adds to every sample (``processor="features"``).
    """
    service = f"featurestore-{job}"
    if not settings.metrics.enabled:
        return Telemetry.build(settings.tracing, prometheus=False, service=service)
    telemetry = Telemetry.build(settings.tracing, prometheus=True, service=service)
    assert telemetry.registry is not None
    endpoint = serve_metrics(telemetry.registry, settings, job, port, labels or {})
    logger.info("metrics on http://%s:%d/metrics", endpoint.host, endpoint.port)
    return Telemetry(
        telemetry.tracer_provider, telemetry.meter_provider, telemetry.registry, endpoint
    )

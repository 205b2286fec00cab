"""Telemetry of every RPC: a duration histogram always, a span when tracing is on.

The providers come from :mod:`featurestore.telemetry` (:class:`TracingSettings` picks the span
exporter; ``featurestore serve`` adds the Prometheus registry). A span continues the trace the
caller sent in its metadata. With a no-op tracer
provider no span is started at all (a no-op span still costs a context switch of OpenTelemetry's
context per call).

Durations go to ``featurestore_grpc_server_handling_seconds`` (per service, method and status code)
when the process has a Prometheus registry, else to OpenTelemetry's ``rpc.server.duration``
histogram (milliseconds) of the meter provider. The Prometheus path uses ``prometheus_client``
directly: an OpenTelemetry SDK ``record`` costs several times a ``prometheus_client`` ``observe``,
and metrics may take only a small share of a GetOnlineFeatures call's server CPU (figures in
``bench/RESULTS.md``). Calls in flight and the online read path's cache hits are plain integers,
read at scrape time (:class:`ServerCounters`), as are the prediction log's outcomes
(:class:`PredictionLogCounters`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from collections.abc import Iterator
from typing import Protocol

import grpc
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from opentelemetry.trace import Status
from opentelemetry.trace import StatusCode
from prometheus_client import Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from featurestore.telemetry import SERVER_ERROR_CODES
from featurestore.telemetry import Telemetry
from featurestore.telemetry import remote_context

_PREPARED_CODES = (grpc.StatusCode.OK, *(grpc.StatusCode[name] for name in SERVER_ERROR_CODES))

__all__ = [
    "LATENCY_BUCKETS",
    "PredictionLogCounters",
    "RpcTelemetry",
    "ServerCounters",
    "Telemetry",
]

LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
)  # fmt: skip
"""Seconds: from a memoized answer (~0.1 ms) to an export (seconds)."""


class ServerCounters(Collector):
    """Counts the event loop bumps with ``+= 1``, exported when Prometheus scrapes.

    The server's handlers all run on one event loop thread, so plain integers need no lock; a
    scrape (another thread) may read a count one call old.
    """

    def __init__(self) -> None:
        """Start every counter at 0."""
        self.in_flight = 0
        self.row_cache = {"hit": 0, "miss": 0}
        """Entity rows GetOnlineFeatures found in the row cache, or had to read from Redis."""
        self.response_memo = {"hit": 0, "miss": 0}
        """GetOnlineFeatures calls answered from the response memo, or encoded."""

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        """The counters, as Prometheus samples (called when Prometheus scrapes)."""
        yield GaugeMetricFamily(
            "featurestore_grpc_server_in_flight_requests",
            "RPCs being handled",
            value=self.in_flight,
        )
        for name, counts in (("row_cache", self.row_cache), ("response_memo", self.response_memo)):
            lookups = CounterMetricFamily(
                f"featurestore_online_{name}_lookups",
                f"GetOnlineFeatures {name.replace('_', ' ')} lookups by result",
                labels=["result"],
            )
            hit, miss = counts["hit"], counts["miss"]
            lookups.add_metric(["hit"], hit)
            lookups.add_metric(["miss"], miss)
            yield lookups
            yield GaugeMetricFamily(
                f"featurestore_online_{name}_hit_ratio",
                f"Share of {name.replace('_', ' ')} lookups that hit, since the server started",
                value=hit / (hit + miss) if hit + miss else 0.0,
            )


class LoggedRecords(Protocol):
    """What the prediction log counts (:class:`~.prediction_log_process.PredictionLogProcess`)."""

    @property
    def sent(self) -> int:
        """Records Kafka acknowledged."""

    @property
    def failed(self) -> int:
        """Records Kafka refused, that could not be encoded, or lost with a writer."""

    @property
    def dropped(self) -> int:
        """Records dropped because too many were waiting."""

    def __len__(self) -> int:
        """Records logged and not yet sent, failed or dropped."""


class PredictionLogCounters(Collector):
    """The prediction log's records by outcome, read from the log when Prometheus scrapes.

    Every answered Predict row is logged once or counted as failed or dropped: an operator
    alerts on the last two (``PredictionLogLoss``), which otherwise only the server's log says.
    """

    def __init__(self, log: LoggedRecords) -> None:
        """Report ``log``'s counts."""
        self._log = log

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        """The counts, as Prometheus samples."""
        log = self._log
        records = CounterMetricFamily(
            "featurestore_prediction_log_records",
            "Predict rows logged to the predictions topic, by outcome",
            labels=["outcome"],
        )
        records.add_metric(["sent"], log.sent)
        records.add_metric(["failed"], log.failed)
        records.add_metric(["dropped"], log.dropped)
        yield records
        yield GaugeMetricFamily(
            "featurestore_prediction_log_pending_records",
            "Predict rows logged and not yet acknowledged by Kafka, failed or dropped",
            value=len(log),
        )


class RpcTelemetry:
    """One span per RPC (when tracing), its duration, and the server's counters."""

    def __init__(self, telemetry: Telemetry) -> None:
        """Report to ``telemetry``'s providers."""
        self.tracer = (
            telemetry.tracer_provider.get_tracer("featurestore.service")
            if telemetry.traces
            else None
        )
        """None when spans go nowhere: the method wrappers then start none."""
        self.counters = ServerCounters()
        registry = telemetry.registry
        self._histogram: Histogram | None = None
        self._children: dict[tuple[str, grpc.StatusCode], Histogram] = {}
        if registry is not None:
            registry.register(self.counters)
            self._histogram = Histogram(
                "featurestore_grpc_server_handling_seconds",
                "Time to handle an RPC, by service, method and status code",
                ["grpc_service", "grpc_method", "grpc_code"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            )
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

    def prepare(self, method: str) -> None:
        """Export ``method``'s durations for OK and each server error code from now, at zero.

        A series that first appears with its first call is never seen to grow: ``rate()`` and
        ``increase()`` start from its first sample, so a method's first error would not count
        towards RpcErrorsHigh.
        """
        for code in _PREPARED_CODES:
            self._child(method, code)

    def _child(self, method: str, code: grpc.StatusCode) -> Histogram | None:
        if self._histogram is None:
            return None
        child = self._children.get((method, code))
        if child is None:
            service, _, name = method.lstrip("/").partition("/")
            child = self._children[(method, code)] = self._histogram.labels(
                service, name, code.name
            )
        return child

    def start_span(
        self, method: str, metadata: Iterable[tuple[str, str | bytes]] | None
    ) -> trace.Span:
        """A server span for ``method``, in the caller's trace when its ``metadata`` names one.

        Only called when :attr:`tracer` is set.
        """
        assert self.tracer is not None
        return self.tracer.start_span(
            method.lstrip("/"), context=remote_context(metadata), kind=SpanKind.SERVER
        )

    def finish(
        self, method: str, code: grpc.StatusCode, started: float, span: trace.Span | None
    ) -> None:
        """Record the duration since ``started`` (``perf_counter``) and end the span."""
        elapsed = time.perf_counter() - started
        child = self._child(method, code)
        if child is not None:
            child.observe(elapsed)
        else:
            self._duration.record(elapsed * 1000, self.attributes(method, code))
        if span is not None:
            attributes = self.attributes(method, code)
            span.set_attributes(attributes)
            if code is not grpc.StatusCode.OK:
                span.set_status(Status(StatusCode.ERROR, code.name))
            span.end()

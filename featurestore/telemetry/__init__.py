"""Telemetry of every process: OpenTelemetry providers and the Prometheus ``/metrics`` endpoint.

One setup for all: :class:`Telemetry` holds the tracer and meter providers and, when metrics are
on, the Prometheus registry that OpenTelemetry's Prometheus exporter writes into.
:func:`process_telemetry` is what an entry point calls (``featurestore serve``, ``processors
run``, ``ingest``, ``score``, the schema registry, ``monitor``): it builds the providers from the
settings and serves the registry on the process's loopback port (:mod:`._endpoint`). Spans go
where ``FEATURESTORE_TRACING__*`` says, continuing the caller's trace (:mod:`._tracing`). Their
log lines share one format (:func:`log_to_stderr`).
"""

from __future__ import annotations

from featurestore.telemetry._endpoint import (
    MetricsEndpoint,
    prune_targets,
    serve_metrics,
    targets_dir,
)
from featurestore.telemetry._logging import LOG_FORMAT, log_to_stderr
from featurestore.telemetry._providers import Telemetry, process_telemetry
from featurestore.telemetry._tracing import kafka_headers, remote_context, tracer_provider

__all__ = [
    "LOG_FORMAT",
    "SERVER_ERROR_CODES",
    "MetricsEndpoint",
    "Telemetry",
    "kafka_headers",
    "log_to_stderr",
    "process_telemetry",
    "prune_targets",
    "remote_context",
    "serve_metrics",
    "targets_dir",
    "tracer_provider",
]

SERVER_ERROR_CODES = ("UNKNOWN", "INTERNAL", "UNAVAILABLE", "DEADLINE_EXCEEDED", "DATA_LOSS")
"""gRPC codes that count as the server's errors (a client's bad request does not): the
RpcErrorsHigh alert's, and those whose series the server exports from its start."""

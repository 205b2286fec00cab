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

from featurestore.telemetry._endpoint import MetricsEndpoint
from featurestore.telemetry._endpoint import prune_targets
from featurestore.telemetry._endpoint import serve_metrics
from featurestore.telemetry._endpoint import targets_dir
from featurestore.telemetry._logging import LOG_FORMAT
from featurestore.telemetry._logging import log_to_stderr
from featurestore.telemetry._providers import Telemetry
from featurestore.telemetry._providers import process_telemetry
from featurestore.telemetry._tracing import kafka_headers
from featurestore.telemetry._tracing import remote_context
from featurestore.telemetry._tracing import tracer_provider

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

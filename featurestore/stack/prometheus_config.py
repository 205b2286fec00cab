"""Prometheus' scrape configuration and alert rules, generated from the settings (pure).

Both are written as JSON, which is YAML too: Prometheus and ``promtool`` read them as they are.
The stack's own processes are static targets on their configured ports (so that one that is
down is ``up == 0`` and alerts); processes on ports of their own choosing are found through the
target files of :func:`featurestore.telemetry.targets_dir` (``file_sd``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from featurestore.config import Settings

__all__ = ["ALERTS", "SERVER_ERROR_CODES", "alert_rules", "scrape_config"]

ALERTS = ("ConsumerLagHigh", "FreshnessSlow", "RpcErrorsHigh", "DriftHigh", "ComponentDown")
SERVER_ERROR_CODES = ("UNKNOWN", "INTERNAL", "UNAVAILABLE", "DEADLINE_EXCEEDED", "DATA_LOSS")
"""gRPC codes that count as the server's errors (a client's bad request does not)."""
_ENDS_BY_ITSELF = "ingest"
"""The job whose processes end by themselves (a file replay): never 'down'."""


def _duration(seconds: float) -> str:
    return f"{max(round(seconds * 1000), 0)}ms"


def _static_targets(settings: Settings) -> list[tuple[str, int, dict[str, str]]]:
    """(job, port, labels) of every process of the stack."""
    from featurestore.stack.processors import event_processors

    m = settings.metrics
    targets: list[tuple[str, int, dict[str, str]]] = [
        ("grpc", m.grpc_port, {}),
        ("ingest", m.ingest_port, {}),
        ("scorer", m.scorer_port, {}),
        ("schema-registry", m.schema_registry_port, {}),
        ("monitor", m.monitor_port, {}),
    ]
    for processor in event_processors(settings):
        port = int(processor.args[processor.args.index("--metrics-port") + 1])
        targets.append(("processors", port, {"processor": processor.processor}))
    return targets


def scrape_config(settings: Settings, rules_file: Path, targets_dir: Path) -> str:
    """``prometheus.yml``: every process of the stack, the discovered ones, and the rules."""
    interval = _duration(settings.prometheus.scrape_interval_s)
    host = settings.metrics.host
    jobs: dict[str, list[dict[str, Any]]] = {}
    for job, port, labels in _static_targets(settings):
        jobs.setdefault(job, []).append({"targets": [f"{host}:{port}"], "labels": labels})
    prometheus = settings.prometheus
    scrape_configs: list[dict[str, Any]] = [
        {
            "job_name": "prometheus",
            "static_configs": [{"targets": [f"{prometheus.host}:{prometheus.port}"]}],
        },
        *({"job_name": job, "static_configs": static} for job, static in jobs.items()),
        {
            "job_name": "discovered",
            "file_sd_configs": [
                {"files": [str(targets_dir / "*.json")], "refresh_interval": "30s"}
            ],
        },
    ]
    config = {
        "global": {
            "scrape_interval": interval,
            "scrape_timeout": _duration(min(settings.prometheus.scrape_interval_s, 10.0)),
            "evaluation_interval": interval,
        },
        "rule_files": [str(rules_file)],
        "scrape_configs": scrape_configs,
    }
    return json.dumps(config, indent=1)


def alert_rules(settings: Settings) -> str:
    """The rule file: the alerts of :data:`ALERTS`, thresholds and windows from the settings."""
    p = settings.prometheus
    window = _duration(p.rate_window_s)
    errors = "|".join(SERVER_ERROR_CODES)
    rpc = "featurestore_grpc_server_handling_seconds_count"
    by_method = "sum by (grpc_service, grpc_method)"
    rules = [
        _alert(
            "ConsumerLagHigh",
            f"max by (processor, topic) (featurestore_consumer_lag_seconds) > {p.lag_alert_s:g}",
            p.alert_for_s,
            "warning",
            "{{ $labels.processor }} is {{ $value | humanizeDuration }} of event time behind "
            "topic {{ $labels.topic }}",
        ),
        _alert(
            "FreshnessSlow",
            "histogram_quantile(0.99, sum by (le, processor) "
            f"(rate(featurestore_processor_kafka_freshness_seconds_bucket[{window}]))) "
            f"> {p.freshness_p99_alert_s:g}",
            p.alert_for_s,
            "warning",
            "p99 of Redis write time - Kafka timestamp of {{ $labels.processor }} is "
            "{{ $value | humanizeDuration }}",
        ),
        _alert(
            "RpcErrorsHigh",
            f'{by_method} (rate({rpc}{{grpc_code=~"{errors}"}}[{window}])) / '
            f"{by_method} (rate({rpc}[{window}])) > {p.rpc_error_ratio_alert:g}",
            p.alert_for_s,
            "critical",
            "{{ $labels.grpc_method }}: {{ $value | humanizePercentage }} of calls end in a "
            "server error",
        ),
        _alert(
            "DriftHigh",
            f"max by (model, input) (featurestore_drift_psi) > {p.drift_psi_alert:g}",
            p.alert_for_s,
            "warning",
            "input {{ $labels.input }} of {{ $labels.model }} drifted: PSI {{ $value }}",
        ),
        _alert(
            "ComponentDown",
            f'up{{job!="{_ENDS_BY_ITSELF}"}} == 0',
            p.alert_for_s,
            "critical",
            "{{ $labels.job }} {{ $labels.processor }} at {{ $labels.instance }} does not "
            "answer its scrape",
        ),
    ]
    return json.dumps({"groups": [{"name": "featurestore", "rules": rules}]}, indent=1)


def _alert(name: str, expr: str, for_s: float, severity: str, summary: str) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": _duration(for_s),
        "labels": {"severity": severity},
        "annotations": {"summary": summary},
    }

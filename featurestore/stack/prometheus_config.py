"""Prometheus' scrape configuration and alert rules, generated from the settings (pure).

Both are written as JSON, which is YAML too: Prometheus and ``promtool`` read them as they are.
Every process is found through the target files of :func:`featurestore.telemetry.targets_dir`
(``file_sd``): the stack's wanted processes on their configured ports in one file the stack
rewrites as it starts and stops them (so that one that is wanted but dead is ``up == 0`` and
alerts, and one stopped on purpose is not a target), and processes on ports of their own
choosing in a file each.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from featurestore.atomic_file import write_atomically
from featurestore.config import Settings
from featurestore.telemetry import SERVER_ERROR_CODES

__all__ = [
    "ALERTS",
    "DESCRIPTIONS",
    "STACK_TARGETS_FILE",
    "alert_rules",
    "scrape_config",
    "stack_targets",
    "write_stack_targets",
]

ALERTS = (
    "ConsumerLagHigh",
    "FreshnessSlow",
    "RpcErrorsHigh",
    "DriftHigh",
    "PredictionLogLoss",
    "ComponentDown",
)
_ENDS_BY_ITSELF = "ingest"
"""The job whose processes end by themselves (a file replay): never 'down'."""


def _duration(seconds: float) -> str:
    return f"{max(round(seconds * 1000), 0)}ms"


STACK_TARGETS_FILE = "stack.json"
"""The target file of the stack's own processes, in the folder Prometheus watches."""


def stack_targets(settings: Settings) -> dict[str, tuple[str, int, dict[str, str]]]:
    """Stack component name -> (job, configured metrics port, labels) of its process."""
    from featurestore.stack.processors import event_processors

    m = settings.metrics
    targets: dict[str, tuple[str, int, dict[str, str]]] = {
        "grpc": ("grpc", m.grpc_port, {}),
        "feed": ("ingest", m.ingest_port, {}),
        "scorer": ("scorer", m.scorer_port, {}),
        "predictor": ("predictor", m.predictor_port, {}),
        "schema-registry": ("schema-registry", m.schema_registry_port, {}),
        "monitor": ("monitor", m.monitor_port, {}),
    }
    for processor in event_processors(settings):
        port = int(processor.args[processor.args.index("--metrics-port") + 1])
        targets[processor.name] = ("processors", port, {"processor": processor.processor})
    return targets


def write_stack_targets(settings: Settings, wanted: Iterable[str], folder: Path) -> Path:
    """List the stack's wanted processes for Prometheus (``file_sd``), and only those.

    A component is wanted from its start until it is stopped on purpose (its *wanted* mark,
    :mod:`featurestore.stack.process`). A wanted one that does not answer is down, which the
    ``ComponentDown`` alert reports; one that was never started or was stopped is no target, so
    a stack started without its services (``stack up --servers-only``) raises no alert.
    """
    host = settings.metrics.host
    chosen = set(wanted)
    entries = [
        {"targets": [f"{host}:{port}"], "labels": {"job": job, "component": name, **labels}}
        for name, (job, port, labels) in stack_targets(settings).items()
        if name in chosen
    ]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / STACK_TARGETS_FILE
    text = json.dumps(entries, indent=1)
    if not path.exists() or path.read_text() != text:
        write_atomically(path, text)
    return path


def scrape_config(settings: Settings, rules_file: Path, targets_dir: Path) -> str:
    """``prometheus.yml``: Prometheus itself, the target files of ``targets_dir`` and the rules.

    The stack's processes are in those files too: the stack's wanted ones on their configured
    ports (:func:`write_stack_targets`), and any process on a port of its own.
    """
    interval = _duration(settings.prometheus.scrape_interval_s)
    prometheus = settings.prometheus
    scrape_configs: list[dict[str, Any]] = [
        {
            "job_name": "prometheus",
            "static_configs": [{"targets": [f"{prometheus.host}:{prometheus.port}"]}],
        },
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
            f'({by_method} (rate({rpc}{{grpc_code=~"{errors}"}}[{window}])) / '
            f"{by_method} (rate({rpc}[{window}])) > {p.rpc_error_ratio_alert:g})"
            f" and on (grpc_service, grpc_method) "
            f"{by_method} (increase({rpc}[{window}])) >= {p.rpc_error_min_calls}",
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
            "PredictionLogLoss",
            "sum by (instance) (increase(featurestore_prediction_log_records_total"
            f'{{outcome=~"failed|dropped"}}[{window}])) > 0',
            p.alert_for_s,
            "critical",
            "{{ $labels.instance }}: {{ $value }} Predict rows not written to the prediction log",
        ),
        _alert(
            "ComponentDown",
            f'up{{job!="{_ENDS_BY_ITSELF}"}} == 0',
            p.alert_for_s,
            "critical",
            # processor: the local stack's processors; pod: a Kubernetes deployment's.
            "{{ $labels.job }}{{ with $labels.processor }} {{ . }}{{ end }}"
            "{{ with $labels.pod }} ({{ . }}){{ end }} at {{ $labels.instance }} does not "
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
        "annotations": {"summary": summary, "description": DESCRIPTIONS[name]},
    }


DESCRIPTIONS = {
    "ConsumerLagHigh": "The processor applies events later than they arrive, or has stopped:"
    " features online and offline are that much behind. Check that it runs (featurestore"
    " processors status) and its batch durations (featurestore_processor_batch_duration_seconds).",
    "FreshnessSlow": "Records take longer than the threshold from Kafka to Redis: GetOnlineFeatures"
    " serves older values. Check the processor's stage durations and Redis' latency.",
    "RpcErrorsHigh": "Calls of this method end in UNAVAILABLE, INTERNAL, DEADLINE_EXCEEDED, UNKNOWN"
    " or DATA_LOSS: the server's log names the cause; its health service says which backend"
    " (Redis, PostgreSQL, Kafka, MLflow) is away.",
    "DriftHigh": "The live distribution of this input differs from the champion's training set"
    " (featurestore drift MODEL prints every input): retrain, or check the feed.",
    "PredictionLogLoss": "Predict answered but these rows were not written to the predictions"
    " topic (Kafka away longer than the log's bound, or refused them): the server's log says"
    " which; monitoring and the prediction stream miss them.",
    "ComponentDown": "Prometheus cannot scrape this process: it stopped, hangs, or its metrics"
    " port moved. featurestore stack status shows the local stack's processes.",
}
"""What each alert means and where to look first (its ``description`` annotation)."""

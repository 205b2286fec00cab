"""The pipeline panel: throughput, lag, freshness, dead letters, RPCs, alerts, from Prometheus.

The prediction log's rows by outcome (sent, failed, dropped) stand beside the RPCs: a Predict
answered but not logged is what ``PredictionLogLoss`` alerts on.

Every number is a PromQL query of the metrics the processes export (``featurestore/telemetry``);
rates are over the alert rules' window (``FEATURESTORE_PROMETHEUS__RATE_WINDOW_S``, at least two
scrapes): a fixed window would hold no sample where scrapes are further apart.
"""

from __future__ import annotations

from typing import Any

from featurestore.dashboard._prometheus import PrometheusApi
from featurestore.dashboard._prometheus import Sample

__all__ = ["pipeline_panel"]

_RPC = "featurestore_grpc_server_handling_seconds"
_FRESHNESS = "featurestore_processor_freshness_seconds_bucket"


def _by(samples: list[Sample], *labels: str) -> list[dict[str, Any]]:
    rows = [{**{k: s.labels.get(k, "") for k in labels}, "value": s.value} for s in samples]
    return sorted(rows, key=lambda r: tuple(str(r[k]) for k in labels))


def pipeline_panel(
    prometheus: PrometheusApi, minutes: int, step_s: float, rate_window_s: float
) -> dict[str, Any]:
    """Everything the pipeline panel draws, as JSON-ready values (rates over ``rate_window_s``)."""
    w = f"{round(rate_window_s * 1000)}ms"
    ingested = f"sum(rate(featurestore_ingest_records_sent_total[{w}]))"
    processed = f"sum(rate(featurestore_processor_events_total[{w}]))"
    series = {
        "ingested": prometheus.query_range(ingested, minutes, step_s),
        "processed": prometheus.query_range(processed, minutes, step_s),
    }
    quantile = "histogram_quantile({q}, sum by (le, processor) (rate(" + _FRESHNESS + f"[{w}])))"
    rpc_p99 = f"histogram_quantile(0.99, sum by (le, grpc_method) (rate({_RPC}_bucket[{w}])))"
    dead = (
        f"sum by (reason) (increase(featurestore_processor_dead_letters_total[{minutes}m]))"
        f" or sum by (reason) (increase(featurestore_ingest_records_dead_lettered_total"
        f"[{minutes}m]))"
    )
    return {
        "events_per_s": {
            name: [[t, v] for s in found for t, v in s.points] for name, found in series.items()
        },
        "processed_by_processor": _by(
            prometheus.query(
                f"sum by (processor) (rate(featurestore_processor_events_total[{w}]))"
            ),
            "processor",
        ),
        "ingested_by_topic": _by(
            prometheus.query(f"sum by (topic) (rate(featurestore_ingest_records_sent_total[{w}]))"),
            "topic",
        ),
        "lag": _by(
            prometheus.query("max by (processor, topic) (featurestore_consumer_lag_seconds)"),
            "processor",
            "topic",
        ),
        "lag_records": _by(
            prometheus.query("max by (processor, topic) (featurestore_consumer_lag_records)"),
            "processor",
            "topic",
        ),
        "freshness_p50": _by(prometheus.query(quantile.format(q=0.5)), "processor"),
        "freshness_p99": _by(prometheus.query(quantile.format(q=0.99)), "processor"),
        "dead_letters": _by(prometheus.query(dead), "reason"),
        "rpc_qps": _by(
            prometheus.query(f"sum by (grpc_method) (rate({_RPC}_count[{w}]))"), "grpc_method"
        ),
        "rpc_p99": _by(prometheus.query(rpc_p99), "grpc_method"),
        "rpc_errors": _by(
            prometheus.query(
                f'sum by (grpc_method, grpc_code) (rate({_RPC}_count{{grpc_code!="OK"}}[{w}])) > 0'
            ),
            "grpc_method",
            "grpc_code",
        ),
        "prediction_log": _by(
            prometheus.query(
                "sum by (outcome) (increase(featurestore_prediction_log_records_total"
                f"[{minutes}m]))"
            ),
            "outcome",
        ),
        "alerts": prometheus.firing_alerts(),
    }

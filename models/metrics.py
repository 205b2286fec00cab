"""The anomaly scorer's Prometheus metrics, through OpenTelemetry.

One set of instruments per process, labelled by model: a scorer following several views (one
model each) reports each model's rows, anomalies and version under its own ``model`` label.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

__all__ = ["ScorerMetrics"]


class ScorerMetrics:
    """Rows scored, anomalies found (rates in PromQL) and the model version in use, per model."""

    def __init__(
        self, provider: metrics.MeterProvider, model: str, version: Callable[[], str]
    ) -> None:
        """``version``: the version scoring uses now (read at each collection)."""
        meter = provider.get_meter("featurestore.scorer")
        self._versions: dict[str, Callable[[], str]] = {}
        self._rows = meter.create_counter(
            "featurestore.scorer.rows_scored", description="Feature rows scored"
        )
        self._anomalies = meter.create_counter(
            "featurestore.scorer.anomalies", description="Anomalies published"
        )
        meter.create_observable_gauge(
            "featurestore.scorer.model_version",
            callbacks=[self._observe_versions],
            description="Version of the registered model scoring uses (alias champion)",
        )
        self.add_model(model, version)

    def add_model(self, model: str, version: Callable[[], str]) -> None:
        """Report one more model (a scorer of several views)."""
        self._versions[model] = version

    def _observe_versions(self, options: CallbackOptions) -> Iterable[Observation]:
        for model, read in list(self._versions.items()):
            version = read()
            if version.isdigit():
                yield Observation(int(version), {"model": model})

    def batch(self, rows: int, anomalies: int, model: str | None = None) -> None:
        """One published batch (of the first model when ``model`` is not given)."""
        labels = {"model": model or next(iter(self._versions))}
        self._rows.add(rows, labels)
        self._anomalies.add(anomalies, labels)

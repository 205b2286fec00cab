"""The anomaly scorer's Prometheus metrics, through OpenTelemetry."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

__all__ = ["ScorerMetrics"]


class ScorerMetrics:
    """Rows scored, anomalies found (rates in PromQL) and the model version in use."""

    def __init__(
        self, provider: metrics.MeterProvider, model: str, version: Callable[[], str]
    ) -> None:
        """``version``: the version scoring uses now (read at each collection)."""
        meter = provider.get_meter("featurestore.scorer")
        self._labels = {"model": model}
        self._version = version
        self._rows = meter.create_counter(
            "featurestore.scorer.rows_scored", description="rolling_1m rows scored"
        )
        self._anomalies = meter.create_counter(
            "featurestore.scorer.anomalies", description="Anomalies published"
        )
        meter.create_observable_gauge(
            "featurestore.scorer.model_version",
            callbacks=[self._observe_version],
            description="Version of the registered model scoring uses (alias champion)",
        )

    def _observe_version(self, options: CallbackOptions) -> Iterable[Observation]:
        version = self._version()
        if version.isdigit():
            yield Observation(int(version), self._labels)

    def batch(self, rows: int, anomalies: int) -> None:
        """One published batch."""
        self._rows.add(rows, self._labels)
        self._anomalies.add(anomalies, self._labels)

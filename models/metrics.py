"""Prometheus metrics (through OpenTelemetry) of the processes that follow feature rows with models.

The anomaly scorer (``featurestore score --follow``) and the prediction feed (``featurestore
predict --follow``) each follow a view's offline table with registered models and publish what
the models make of each new row. One set of instruments per process, labelled by model: a process
following with several models reports each one's rows, published events and version under its
own ``model`` label.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from typing import Literal

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions
from opentelemetry.metrics import Observation

__all__ = ["FeedMetrics"]

_INSTRUMENTS = {
    "scorer": ("rows_scored", "Feature rows scored", "anomalies", "Anomalies published"),
    "predictor": (
        "rows_predicted",
        "Feature rows predicted",
        "predictions",
        "Predictions published to the predictions topic",
    ),
}
"""Per kind of process: its rows counter and what it publishes (name, description each)."""


class FeedMetrics:
    """Rows followed, events published (rates in PromQL) and the model version in use, per model.

    ``featurestore_scorer_rows_scored_total``, ``..._scorer_anomalies_total`` and
    ``..._scorer_model_version``; ``featurestore_predictor_rows_predicted_total``,
    ``..._predictor_predictions_total`` and ``..._predictor_model_version``.
    """

    def __init__(
        self,
        provider: metrics.MeterProvider,
        kind: Literal["scorer", "predictor"],
    ) -> None:
        """Instruments of a ``kind`` process on ``provider``; :meth:`add_model` names each model."""
        rows, rows_description, events, events_description = _INSTRUMENTS[kind]
        meter = provider.get_meter(f"featurestore.{kind}")
        self._versions: dict[str, Callable[[], str]] = {}
        self._rows = meter.create_counter(
            f"featurestore.{kind}.{rows}", description=rows_description
        )
        self._events = meter.create_counter(
            f"featurestore.{kind}.{events}", description=events_description
        )
        meter.create_observable_gauge(
            f"featurestore.{kind}.model_version",
            callbacks=[self._observe_versions],
            description=f"Version of the registered model the {kind} uses (its alias)",
        )

    def add_model(self, model: str, version: Callable[[], str]) -> None:
        """Report ``model``; ``version`` says the version in use now (read at each collection).

        Its series start at zero, so that a first batch counts in ``rate()`` and ``increase()``.
        """
        self._versions[model] = version
        self.batch(0, 0, model)

    def _observe_versions(self, options: CallbackOptions) -> Iterable[Observation]:
        for model, read in list(self._versions.items()):
            version = read()
            if version.isascii() and version.isdigit():
                yield Observation(int(version), {"model": model})

    def batch(self, rows: int, events: int, model: str) -> None:
        """One published batch of ``model``."""
        labels = {"model": model}
        self._rows.add(rows, labels)
        self._events.add(events, labels)

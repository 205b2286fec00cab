"""The scorer's and the prediction feed's metrics: per model, from zero, with the version in use."""

from __future__ import annotations

from functools import partial

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from models.metrics import FeedMetrics
from tests.metric_points import metric_points


def _points(reader: InMemoryMetricReader) -> dict[tuple[str, str], float]:
    return {(name, str(p.attributes["model"])): p.value for name, p in metric_points(reader)}


@pytest.mark.parametrize(
    ("kind", "rows", "events"),
    [("scorer", "rows_scored", "anomalies"), ("predictor", "rows_predicted", "predictions")],
)
def test_each_model_counts_from_zero_and_reports_its_version(
    kind: str, rows: str, events: str
) -> None:
    reader = InMemoryMetricReader()
    metrics = FeedMetrics(MeterProvider(metric_readers=[reader]), kind)  # type: ignore[arg-type]
    versions = {"direction": "3", "regime": "7"}
    for model in versions:
        metrics.add_model(model, partial(versions.__getitem__, model))
    prefix = f"featurestore.{kind}."
    # Before any batch: every series exists at zero (a first batch then counts in rate()).
    assert _points(reader) == {
        **{(prefix + rows, m): 0 for m in versions},
        **{(prefix + events, m): 0 for m in versions},
        **{(prefix + "model_version", m): int(v) for m, v in versions.items()},
    }
    metrics.batch(10, 4, "regime")
    versions["regime"] = "8"  # promoted
    points = _points(reader)
    assert points[(prefix + rows, "regime")] == 10 and points[(prefix + events, "regime")] == 4
    assert points[(prefix + rows, "direction")] == 0
    assert points[(prefix + "model_version", "regime")] == 8

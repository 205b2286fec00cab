"""The data points an OpenTelemetry in-memory reader holds, for tests of a process's metrics."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics.export import InMemoryMetricReader

__all__ = ["metric_points"]


def metric_points(reader: InMemoryMetricReader, name: str | None = None) -> list[tuple[str, Any]]:
    """(metric name, data point) of every point collected now, of metric ``name`` if given."""
    data = reader.get_metrics_data()
    assert data is not None
    return [
        (metric.name, point)
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if name is None or metric.name == name
        for point in metric.data.data_points
    ]

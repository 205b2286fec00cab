"""Anomaly detection for any numeric stream: a streaming detector per view, no labels needed.

Layout: ``detector`` (the maths: one state per entity and feature), ``model`` (what a view's
registered model holds, and its MLflow form), ``history`` (a view's stored rows), ``scorer``
(new rows in, ``Anomaly`` events out), ``shapes`` and ``evaluation`` (injected anomalies of
four shapes and the detector's precision and recall on each). Fitting and registering:
:mod:`models.training.anomaly`. Public surface (imported lazily: the detector needs no MLflow)::

    from models.anomaly import DetectorParams, StreamingDetector, SeriesState
    from models.anomaly import DetectorConfig, model_name_for, StreamScorer
    from models.anomaly import evaluate_shapes
"""

from __future__ import annotations

from models._lazy import lazy_exports

__all__ = [
    "DetectorConfig",
    "DetectorParams",
    "SeriesState",
    "StreamScorer",
    "StreamingDetector",
    "evaluate_shapes",
    "model_name_for",
]

_HOMES = {
    "DetectorParams": "models.anomaly.detector",
    "SeriesState": "models.anomaly.detector",
    "StreamingDetector": "models.anomaly.detector",
    "DetectorConfig": "models.anomaly.model",
    "model_name_for": "models.anomaly.model",
    "StreamScorer": "models.anomaly.scorer",
    "evaluate_shapes": "models.anomaly.evaluation",
}


__getattr__ = lazy_exports(__name__, _HOMES)

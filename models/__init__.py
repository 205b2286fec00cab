"""Models trained on the store's features: anomaly detection, direction, volatility regime.

The public surface (imported lazily, so that ``import models.demo`` does not pay for MLflow)::

    from models import TrainOptions, TrainingContext, train        # featurestore train
    from models import AnomalyScorer, AnomalyPublisher, ScoringHook  # online anomaly scoring
    from models import measure_drift                                 # featurestore drift
    from models import ensure_first_models                           # make run

Layout: ``data/`` (point-in-time training sets, labels, splits), ``training/`` (one module per
model kind, metrics and baselines), ``pyfunc`` (the registered form), ``tracking`` and
``registry`` (MLflow), ``scoring``/``publish``/``follow`` (online anomalies), ``drift`` and
``monitoring`` (PSI), ``demo/`` (demo trades and reference features), ``bootstrap``.
"""

from __future__ import annotations

from models._lazy import lazy_exports

__all__ = [
    "CHAMPION",
    "AnomalyPublisher",
    "AnomalyScorer",
    "ModelRef",
    "ModelRegistry",
    "ScoringHook",
    "TrainOptions",
    "TrainReport",
    "TrainingContext",
    "ensure_first_models",
    "measure_drift",
    "train",
]

_HOMES = {
    "CHAMPION": "models.registry",
    "ModelRef": "models.registry",
    "ModelRegistry": "models.registry",
    "AnomalyScorer": "models.scoring",
    "AnomalyPublisher": "models.publish",
    "ScoringHook": "models.publish",
    "TrainOptions": "models.training.run",
    "TrainReport": "models.training.run",
    "TrainingContext": "models.training.run",
    "train": "models.training.run",
    "ensure_first_models": "models.bootstrap",
    "measure_drift": "models.monitoring",
}


__getattr__ = lazy_exports(__name__, _HOMES)

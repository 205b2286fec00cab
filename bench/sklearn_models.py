"""Small scikit-learn models registered in MLflow: what Predict serves in benchmarks and tests.

The Predict benchmark and the service's integration tests register fitted pipelines of their own
(not the store's trained models) under names of their own; both do it here.
"""

from __future__ import annotations

import warnings
from typing import Any

import pandas as pd

from featurestore.config import Settings

__all__ = ["register_sklearn_versions"]


def register_sklearn_versions(
    settings: Settings,
    name: str,
    experiment: str,
    x: pd.DataFrame,
    versions: list[tuple[Any, dict[str, Any]]],
) -> None:
    """Register each fitted model as the next version of ``name``; alias champion -> 1.

    ``versions``: (model fitted on ``x``, extra options of ``mlflow.sklearn.log_model``), in
    version order.
    """
    from models._mlflow import mlflow  # first: featurestore.mlflow_plugins turns telemetry off

    mlflow.set_tracking_uri(settings.mlflow.tracking_uri)
    mlflow.set_experiment(experiment)
    for model, extra in versions:
        # MLflow warns about its own type-hint inference and about cloudpickle while logging.
        with mlflow.start_run(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mlflow.sklearn.log_model(
                model,
                name="model",
                signature=mlflow.models.infer_signature(x, model.predict(x)),
                registered_model_name=name,
                serialization_format="cloudpickle",
                pip_requirements=["scikit-learn"],
                **extra,
            )
    mlflow.MlflowClient().set_registered_model_alias(name, "champion", "1")

"""A user's models registered in MLflow with its own flavors: what benchmarks and tests serve.

The Predict benchmark and the integration tests register fitted models of their own (not the
store's trained models: scikit-learn pipelines, XGBoost boosters) under names of their own, as
a user would (models/README.md, "Serving your own model"); all do it here.
"""

from __future__ import annotations

import warnings
from typing import Any

import pandas as pd

from featurestore.config import Settings

__all__ = ["register_booster", "register_sklearn_versions"]


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


def register_booster(
    settings: Settings,
    name: str,
    experiment: str,
    booster: Any,
    x: pd.DataFrame,
    *,
    drift_reference: bool = False,
) -> None:
    """Register an XGBoost ``booster`` fitted on ``x`` (MLflow's xgboost flavor); champion -> 1.

    ``drift_reference``: record ``x`` as its drift reference in the same run
    (:func:`models.tracking.log_drift_reference`), as the README's example does.
    """
    import xgboost as xgb

    from models._mlflow import mlflow
    from models.tracking import log_drift_reference

    mlflow.set_tracking_uri(settings.mlflow.tracking_uri)
    mlflow.set_experiment(experiment)
    with mlflow.start_run(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLflow's advice while logging
        mlflow.xgboost.log_model(
            booster,
            name="model",
            signature=mlflow.models.infer_signature(x, booster.predict(xgb.DMatrix(x))),
            registered_model_name=name,
            pip_requirements=["xgboost"],  # inferring them runs the model in a child: seconds
        )
        if drift_reference:
            log_drift_reference(x)
    mlflow.MlflowClient().set_registered_model_alias(name, "champion", "1")

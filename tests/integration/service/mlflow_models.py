"""Tiny scikit-learn models registered in the running MLflow under a name unique to the test."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bench.user_models import register_sklearn_versions
from featurestore.config import Settings

COLUMNS = ["bars_1m__close", "rolling_1m__vwap_5m", "bars_1m__volume"]


@dataclass
class RegisteredModels:
    name: str
    regressor: Any
    """Version 1: 1-D scores."""
    classifier: Any
    """Version 2: class probabilities (the score is the positive class's)."""

    def expected_v1(self, rows: list[list[float]]) -> np.ndarray:
        return np.asarray(self.regressor.predict(pd.DataFrame(rows, columns=COLUMNS)))

    def expected_v2(self, rows: list[list[float]]) -> np.ndarray:
        proba = self.classifier.predict_proba(pd.DataFrame(rows, columns=COLUMNS))
        return np.asarray(proba)[:, -1]


def register_models(settings: Settings, name: str) -> RegisteredModels:
    """Register version 1 (a regressor) and 2 (a classifier); alias champion -> 1."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    rng = np.random.default_rng(3)
    x = pd.DataFrame(rng.normal(100, 10, (200, len(COLUMNS))), columns=COLUMNS)
    y = x["bars_1m__close"] * 0.5 - x["rolling_1m__vwap_5m"] * 0.2 + 3
    regressor = make_pipeline(
        SimpleImputer(strategy="constant", fill_value=0.0), LinearRegression()
    )
    regressor.fit(x, y)
    classifier = make_pipeline(
        SimpleImputer(strategy="constant", fill_value=0.0), LogisticRegression(max_iter=1000)
    )
    classifier.fit(x, (y > y.median()).astype(int))

    register_sklearn_versions(
        settings,
        name,
        f"test-{name}",
        x,
        [(regressor, {}), (classifier, {"pyfunc_predict_fn": "predict_proba"})],
    )
    return RegisteredModels(name, regressor, classifier)


def move_alias(settings: Settings, name: str, alias: str, version: str) -> None:
    from models._mlflow import mlflow

    mlflow.MlflowClient(settings.mlflow.tracking_uri).set_registered_model_alias(
        name, alias, version
    )


def delete_model(settings: Settings, name: str) -> None:
    from models._mlflow import mlflow

    mlflow.MlflowClient(settings.mlflow.tracking_uri).delete_registered_model(name)

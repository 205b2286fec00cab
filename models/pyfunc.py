"""The registered form of every tabular model: an MLflow ``PythonModel`` around the native one.

Contract (what Predict and the anomaly scorer rely on):

* ``mlflow.pyfunc.load_model("models:/NAME@ALIAS")`` loads it;
* its signature's input columns are the raw features, named ``view__feature``, all ``double``
  (send float64; a missing feature is NaN);
* ``predict(frame)`` returns a 1-D float64 array, one score per row: for a binary classifier the
  probability of the positive class, for a multi-class one the probability of
  ``positive_class``, for the anomaly model a score where higher is more anomalous.

The feature transform (:func:`models.inputs.model_inputs`) runs inside ``predict``, so a caller
never prepares inputs differently from training. The native model is an artifact (XGBoost JSON
or a joblib pickle of the scikit-learn estimator) that can be used on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import joblib  # type: ignore[import-untyped]
import numpy as np
import pandas as pd

from models._mlflow import PythonModel
from models.inputs import model_inputs

__all__ = ["NATIVE_ARTIFACT", "FeatureModel", "ModelConfig"]

NATIVE_ARTIFACT = "native"
"""The artifact key (and file stem) of the native model."""

Flavor = Literal["xgboost", "sklearn", "torch"]


@dataclass(frozen=True)
class ModelConfig:
    """What the wrapper needs besides the native model."""

    kind: str
    """``anomaly``, ``direction`` or ``regime``."""
    flavor: Flavor
    feature_columns: tuple[str, ...]
    positive_class: int | None = None
    """Column of ``predict_proba`` returned (classifiers)."""
    fill_values: Mapping[str, float] | None = None
    """Per model input, the value a NaN becomes (models that cannot take NaN)."""


class FeatureModel(PythonModel):
    """Raw ``view__feature`` columns in, one score per row out."""

    def __init__(self, config: ModelConfig) -> None:
        self.config = config
        self._model: Any = None

    def load_context(self, context: Any) -> None:
        """Load the native model from its artifact."""
        self._model = load_native(self.config.flavor, context.artifacts[NATIVE_ARTIFACT])

    def bind(self, native: Any) -> FeatureModel:
        """Use an in-memory native model (training evaluates through the same code path)."""
        self._model = native
        return self

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> np.ndarray:
        """One float64 score per row of ``model_input``."""
        return score(self._model, self.config, model_input)


def score(native: Any, config: ModelConfig, frame: pd.DataFrame) -> np.ndarray:
    """The wrapper's ``predict`` on a native model, usable without MLflow."""
    inputs = model_inputs(frame, config.feature_columns)
    if config.fill_values is not None:
        inputs = inputs.fillna(dict(config.fill_values))
    if config.kind == "anomaly":
        return np.asarray(-native.score_samples(inputs.to_numpy()), dtype="float64")
    proba = native.predict_proba(inputs)
    column = 1 if config.positive_class is None else config.positive_class
    return np.asarray(proba[:, column], dtype="float64")


def save_native(flavor: Flavor, native: Any, directory: str) -> str:
    """Write the native model under ``directory``; returns the file's path."""
    if flavor == "xgboost":
        path = f"{directory}/{NATIVE_ARTIFACT}.json"
        native.save_model(path)
    else:
        path = f"{directory}/{NATIVE_ARTIFACT}.joblib"
        joblib.dump(native, path)
    return path


def load_native(flavor: Flavor, path: str) -> Any:
    """Read a native model written by :func:`save_native`."""
    if flavor == "xgboost":
        import xgboost

        model = xgboost.XGBClassifier()
        model.load_model(path)
        return model
    return joblib.load(path)

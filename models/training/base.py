"""What every trainer returns, and the pieces they share."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import numpy as np
import pandas as pd

from models._mlflow import PythonModel
from models.data import Dataset
from models.data import Split
from models.pyfunc import FeatureModel
from models.pyfunc import ModelConfig
from models.pyfunc import save_native

__all__ = ["TrainedModel", "prefixed", "split_metrics"]


@dataclass
class TrainedModel:
    """A fitted model, how it did, and what to record with it."""

    kind: str
    config: ModelConfig
    native: Any
    metrics: dict[str, float]
    """``<model or baseline>.<split>.<metric>``, e.g. ``model.test.auc``."""
    params: dict[str, Any]
    reference: pd.DataFrame
    """The model inputs of the training rows: the drift reference."""
    dataset: Dataset
    split: Split
    threshold: float | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def wrapper(self) -> PythonModel:
        """The registered form, bound to the in-memory native model."""
        return FeatureModel(self.config).bind(self.native)

    def model_config(self) -> dict[str, Any]:
        """The registered form's configuration as MLflow logs it (:mod:`models.registered`)."""
        return FeatureModel(self.config).model_config()

    def save_native(self, directory: str) -> str:
        """Write the native model under ``directory``; returns its path."""
        return save_native(self.config.flavor, self.native, directory)

    def input_example(self) -> pd.DataFrame:
        """A few training rows as the registered model takes them (raw features, float64)."""
        frame = self.dataset.frame[list(self.config.feature_columns)]
        return frame.iloc[np.flatnonzero(self.split.train)[:5]].astype("float64")


def prefixed(prefix: str, metrics: Mapping[str, float]) -> dict[str, float]:
    """``metrics`` with ``prefix.`` before each name."""
    return {f"{prefix}.{name}": value for name, value in metrics.items()}


def split_metrics(
    name: str, split: Split, mask: np.ndarray, metric: Any, y: np.ndarray, scores: np.ndarray
) -> dict[str, float]:
    """``metric(y, scores)`` on the validation and test rows among ``mask``."""
    out: dict[str, float] = {}
    for part, rows in (("valid", split.valid & mask), ("test", split.test & mask)):
        if rows.any():
            out.update(prefixed(f"{name}.{part}", metric(y[rows], scores[rows])))
    return out

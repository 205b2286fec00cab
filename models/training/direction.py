"""Direction: will the price be higher ``horizon`` after ``t`` than at ``t``? (XGBoost).

Target: ``forward_return > 0`` (up) against ``< 0`` (down); rows where the price did not move
(direction 0) or has no label are left out. Baselines on the same rows: always the training
split's majority, and "the next move repeats the last one" (P(up) after an up / down minute,
from training frequencies).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xgboost

from featurestore.errors import ValidationError
from models.data import Dataset
from models.data import Split
from models.data import SplitSpec
from models.data import chronological_split
from models.data import shuffle_in_time
from models.inputs import model_inputs
from models.pyfunc import ModelConfig
from models.training.base import TrainedModel
from models.training.base import split_metrics
from models.training.metrics import binary_metrics
from models.training.metrics import conditional_baseline
from models.training.metrics import majority_baseline

__all__ = [
    "LABEL_COLUMNS",
    "direction_baselines",
    "fit_direction",
    "prepare",
    "xgb_params",
]

LABEL_COLUMNS = ["forward_return", "direction", "forward_vol"]
LAST_MOVE = "rolling_1m__price_momentum_1m"


def xgb_params(seed: int) -> dict[str, object]:
    """Small, regularised trees: the signal in minute bars is weak and easy to overfit."""
    return {
        "n_estimators": 300,
        "max_depth": 3,
        "learning_rate": 0.05,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "min_child_weight": 5,
        "tree_method": "hist",
        "random_state": seed,
        "n_jobs": 2,
        "early_stopping_rounds": 30,
    }


def prepare(
    dataset: Dataset, spec: SplitSpec, seed: int, shuffle_labels: bool
) -> tuple[pd.DataFrame, Split]:
    """The frame (labels permuted in time for the canary) and its chronological split."""
    frame = dataset.frame
    if shuffle_labels:
        frame = shuffle_in_time(frame, LABEL_COLUMNS, seed)
    return frame, chronological_split(frame["event_timestamp"], spec)


def direction_baselines(
    frame: pd.DataFrame, split: Split, usable: np.ndarray, y: np.ndarray
) -> dict[str, float]:
    """Metrics of always-majority and last-direction on the rows the model is judged on."""
    train = split.train & usable
    majority = majority_baseline(y[train], len(y))[:, 1]
    metrics = split_metrics("baseline_majority", split, usable, binary_metrics, y, majority)
    if LAST_MOVE in frame:
        last_up = (frame[LAST_MOVE].fillna(0.0).to_numpy() > 0).astype(int)
        repeat = conditional_baseline(last_up[train], y[train], last_up)[:, 1]
        name = "baseline_last_direction"
        metrics |= split_metrics(name, split, usable, binary_metrics, y, repeat)
    return metrics


def fit_direction(
    dataset: Dataset, spec: SplitSpec, seed: int, *, shuffle_labels: bool = False
) -> TrainedModel:
    """Fit on the train split, stop early on validation, report validation and test."""
    frame, split = prepare(dataset, spec, seed, shuffle_labels)
    direction = frame["direction"].astype("float64").to_numpy()
    usable = np.isin(direction, (-1.0, 1.0))
    y = (direction > 0).astype(int)
    train = split.train & usable
    if len(np.unique(y[train])) < 2 or not (split.valid & usable).any():
        raise ValidationError("too few labelled rows to train a direction model", field="rows")
    columns = dataset.feature_columns
    inputs = model_inputs(frame, columns)
    params = xgb_params(seed)
    model = xgboost.XGBClassifier(objective="binary:logistic", eval_metric="logloss", **params)
    valid = split.valid & usable
    model.fit(inputs[train], y[train], eval_set=[(inputs[valid], y[valid])], verbose=False)
    config = ModelConfig("direction", "xgboost", columns, positive_class=1)
    p_up = model.predict_proba(inputs)[:, 1]
    metrics = split_metrics("model", split, usable, binary_metrics, y, p_up)
    metrics |= direction_baselines(frame, split, usable, y)
    params |= {"best_iteration": int(model.best_iteration), "shuffle_labels": shuffle_labels}
    return TrainedModel("direction", config, model, metrics, params, inputs[train], dataset, split)

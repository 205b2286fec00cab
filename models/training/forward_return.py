"""The forward return, as a number: a Random Forest regression (scikit-learn).

Target: ``forward_return`` (the label of :mod:`featurestore.offline.labels`, ``horizon`` after each
sample). Metrics on the chronological split: RMSE, MAE and R² of the model against two baselines
on the same rows: the zero return (a random walk's best guess) and the last return (the return of
the same length that just ended, ``rolling_1m__price_momentum_5m`` for the default 5-minute
horizon: momentum persists).

Why scikit-learn and not a Spark ML batch job: the training set is one point-in-time export of
one feature service, thousands to a few million rows, which fits in memory here; a Spark job
would add ~10 s of start-up and a JVM to every training, and a Spark ML model cannot be scored
in-process by Predict, while a scikit-learn forest is called on a NumPy array in Predict's hot
path (:func:`models.pyfunc.matrix_scorer`). The forest takes NaN natively (scikit-learn >= 1.4),
so a missing feature needs no imputation. Its size is bounded (trees, depth) for Predict's
latency: scoring walks every tree.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import RandomForestRegressor
from sklearn.metrics import mean_absolute_error
from sklearn.metrics import mean_squared_error
from sklearn.metrics import r2_score

from featurestore.errors import ValidationError
from models.data import Dataset
from models.data import SplitSpec
from models.inputs import model_inputs
from models.pyfunc import ModelConfig
from models.training.base import TrainedModel
from models.training.base import split_metrics
from models.training.direction import prepare

__all__ = ["LAST_RETURN", "fit_forward_return", "regression_metrics", "rf_params"]

LAST_RETURN = "rolling_1m__price_momentum_5m"
"""The return that just ended, of the default horizon's length (the last-return baseline)."""


def rf_params(seed: int) -> dict[str, object]:
    """A small forest: minute returns are mostly noise, and Predict walks every tree per call."""
    return {
        "n_estimators": 60,
        "max_depth": 6,
        "min_samples_leaf": 20,
        "max_features": 0.5,
        "random_state": seed,
        "n_jobs": 1,
    }


def regression_metrics(y: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """RMSE, MAE and R² (R² < 0: worse than the rows' own mean)."""
    return {
        "rmse": float(np.sqrt(mean_squared_error(y, predicted))),
        "mae": float(mean_absolute_error(y, predicted)),
        "r2": float(r2_score(y, predicted)) if len(y) > 1 else float("nan"),
        "rows": float(len(y)),
    }


def fit_forward_return(
    dataset: Dataset, spec: SplitSpec, seed: int, *, shuffle_labels: bool = False
) -> TrainedModel:
    """Fit on the train split, report validation and test against both baselines."""
    frame, split = prepare(dataset, spec, seed, shuffle_labels)
    y = frame["forward_return"].astype("float64").to_numpy()
    usable = np.isfinite(y)
    train = split.train & usable
    if train.sum() < 50 or not (split.test & usable).any():
        raise ValidationError("too few labelled rows to train the return regression", field="rows")
    columns = dataset.feature_columns
    inputs = model_inputs(frame, columns)
    params = rf_params(seed)
    model = RandomForestRegressor(**params)
    model.fit(inputs.to_numpy()[train], y[train])
    predicted = model.predict(inputs.to_numpy())
    metrics = split_metrics("model", split, usable, regression_metrics, y, predicted)
    last = (
        frame[LAST_RETURN].astype("float64").fillna(0.0).to_numpy()
        if LAST_RETURN in frame
        else np.zeros(len(frame))
    )
    for name, baseline in (("baseline_zero", np.zeros(len(frame))), ("baseline_last_return", last)):
        metrics |= split_metrics(name, split, usable, regression_metrics, y, baseline)
    config = ModelConfig("forward_return", "sklearn", columns)
    params |= {"shuffle_labels": shuffle_labels, "target": "forward_return"}
    return TrainedModel("rf", config, model, metrics, params, inputs[train], dataset, split)

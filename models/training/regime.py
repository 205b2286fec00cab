"""Volatility regime: calm, normal or turbulent over the next 15 minutes (XGBoost).

Target (:mod:`models.data.targets`): the forward realized volatility's tercile, with edges from
the training split only. The registered model returns P(turbulent) (class 2), one score per row;
the native model (an artifact of the run) gives all three probabilities. Baselines: always the
training majority, and "the regime persists" (class frequencies given the tercile of the trailing
``realized_vol_15m``, from training).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xgboost

from featurestore.errors import ValidationError
from models.data import Dataset
from models.data import SplitSpec
from models.data import regime_classes
from models.data import regime_edges
from models.inputs import model_inputs
from models.pyfunc import ModelConfig
from models.training.base import TrainedModel
from models.training.base import split_metrics
from models.training.direction import prepare
from models.training.direction import xgb_params
from models.training.metrics import conditional_baseline
from models.training.metrics import majority_baseline
from models.training.metrics import multiclass_metrics

__all__ = ["TURBULENT", "fit_regime"]

TURBULENT = 2
TRAILING_VOL = "rolling_1m__realized_vol_15m"


def fit_regime(
    dataset: Dataset, spec: SplitSpec, seed: int, *, shuffle_labels: bool = False
) -> TrainedModel:
    """Fit on the train split, stop early on validation, report validation and test."""
    frame, split = prepare(dataset, spec, seed, shuffle_labels)
    vol = frame["forward_vol"]
    edges = regime_edges(vol[split.train])
    classes = regime_classes(vol, edges)
    usable = classes.notna().to_numpy()
    y = classes.fillna(0).astype(int).to_numpy()
    train, valid = split.train & usable, split.valid & usable
    if len(np.unique(y[train])) < 3 or not valid.any():
        raise ValidationError("too few labelled rows to train a regime model", field="rows")
    columns = dataset.feature_columns
    inputs = model_inputs(frame, columns)
    params = xgb_params(seed)
    model = xgboost.XGBClassifier(
        objective="multi:softprob", num_class=3, eval_metric="mlogloss", **params
    )
    model.fit(inputs[train], y[train], eval_set=[(inputs[valid], y[valid])], verbose=False)
    proba = model.predict_proba(inputs)
    metrics = split_metrics("model", split, usable, multiclass_metrics, y, proba)
    majority = majority_baseline(y[train], len(y), classes=3)
    metrics |= split_metrics("baseline_majority", split, usable, multiclass_metrics, y, majority)
    if TRAILING_VOL in frame:
        now = regime_classes(frame[TRAILING_VOL], edges).fillna(-1).astype(int).to_numpy()
        persist = conditional_baseline(now[train], y[train], now, classes=3)
        metrics |= split_metrics(
            "baseline_persistence", split, usable, multiclass_metrics, y, persist
        )
    config = ModelConfig("regime", "xgboost", columns, positive_class=TURBULENT)
    params |= {
        "best_iteration": int(model.best_iteration),
        "regime_edges": f"{edges[0]:.6g},{edges[1]:.6g}",
        "shuffle_labels": shuffle_labels,
    }
    reference = pd.DataFrame(inputs[train])
    return TrainedModel("regime", config, model, metrics, params, reference, dataset, split)

"""Anomalies: an IsolationForest on the feature vectors of closed minutes.

Score: ``-score_samples`` (higher = more anomalous). Threshold: the ``1 - flag_rate`` quantile of
the training rows' scores (98th percentile by default: at 99 % the rows after each price spike,
extreme in several features at once, fill the top and single-feature volume bursts fall below).

Where injected anomalies are known (demo data, tests), each one's window is the injected
minute's row and the 5 rows after it (the 5-bar windows still hold the injected bar); precision
is the share of flagged rows inside a window, recall the share of windows with a flagged row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest

from models.data import Dataset, SplitSpec, chronological_split
from models.demo.market import Injection
from models.inputs import model_inputs
from models.pyfunc import ModelConfig, score
from models.training.base import TrainedModel, prefixed
from models.training.metrics import event_precision_recall

__all__ = ["EVENT_WINDOW", "anomaly_windows", "fit_anomaly"]

EVENT_WINDOW = timedelta(minutes=5)


def anomaly_windows(
    frame: pd.DataFrame, injections: Sequence[Injection], window: timedelta = EVENT_WINDOW
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: whether it lies in an injected anomaly's window, and that anomaly's index."""
    ids = np.full(len(frame), -1)
    ts = pd.to_datetime(frame["event_timestamp"], utc=True)
    for i, inj in enumerate(injections):
        end = inj.bar_end
        hit = (frame["symbol"] == inj.symbol) & (ts >= end) & (ts <= end + pd.Timedelta(window))
        ids[hit.to_numpy()] = i
    return ids >= 0, ids


def fit_anomaly(
    dataset: Dataset,
    spec: SplitSpec,
    seed: int,
    *,
    flag_rate: float = 0.02,
    injections: Sequence[Injection] | None = None,
) -> TrainedModel:
    """Fit on the train split's rows; threshold from their scores; evaluate where labels exist."""
    frame = dataset.frame
    split = chronological_split(frame["event_timestamp"], spec)
    columns = dataset.feature_columns
    inputs = model_inputs(frame, columns)
    fill = inputs[split.train].median().fillna(0.0)
    params: dict[str, object] = {
        "n_estimators": 200,
        "max_samples": 256,
        "random_state": seed,
        "n_jobs": 1,
    }
    model = IsolationForest(**params)
    model.fit(inputs[split.train].fillna(fill).to_numpy())
    config = ModelConfig(
        "anomaly", "sklearn", columns, fill_values={k: float(v) for k, v in fill.items()}
    )
    scores = score(model, config, frame)
    threshold = float(np.quantile(scores[split.train], 1 - flag_rate))
    metrics = {
        "model.train.flagged_share": float((scores[split.train] >= threshold).mean()),
        "model.test.flagged_share": float((scores[split.test] >= threshold).mean()),
    }
    if injections:
        in_event, ids = anomaly_windows(frame, injections)
        flagged = scores >= threshold
        for part, rows in (
            ("valid", split.valid),
            ("test", split.test),
            ("all", np.ones_like(split.test)),
        ):
            metrics |= prefixed(
                f"model.{part}", event_precision_recall(flagged[rows], in_event[rows], ids[rows])
            )
    params |= {"flag_rate": flag_rate, "threshold": threshold}
    reference = inputs[split.train]
    trained = TrainedModel("anomaly", config, model, metrics, params, reference, dataset, split)
    trained.threshold = threshold
    return trained

"""Evaluation metrics and the baselines a model has to beat."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score
from sklearn.metrics import log_loss
from sklearn.metrics import precision_score
from sklearn.metrics import recall_score
from sklearn.metrics import roc_auc_score

__all__ = [
    "binary_metrics",
    "conditional_baseline",
    "event_precision_recall",
    "majority_baseline",
    "multiclass_metrics",
]

_EPS = 1e-6


def binary_metrics(y: np.ndarray, p_up: np.ndarray) -> dict[str, float]:
    """Accuracy (at 0.5), ROC AUC and log loss of positive-class probabilities."""
    y = np.asarray(y, dtype=int)
    p = np.clip(np.asarray(p_up, dtype="float64"), _EPS, 1 - _EPS)
    metrics = {
        "accuracy": float(accuracy_score(y, p >= 0.5)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "positive_rate": float(y.mean()),
        "rows": float(len(y)),
    }
    metrics["auc"] = float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")
    return metrics


def multiclass_metrics(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Accuracy, one-vs-rest macro AUC and log loss of class probabilities."""
    y = np.asarray(y, dtype=int)
    classes = list(range(proba.shape[1]))
    p = np.clip(proba, _EPS, 1.0)
    p = p / p.sum(axis=1, keepdims=True)
    metrics = {
        "accuracy": float(accuracy_score(y, p.argmax(axis=1))),
        "log_loss": float(log_loss(y, p, labels=classes)),
        "rows": float(len(y)),
    }
    present = np.unique(y)
    if len(present) == len(classes):
        metrics["auc"] = float(roc_auc_score(y, p, multi_class="ovr", labels=classes))
    else:
        metrics["auc"] = float("nan")
    return metrics


def majority_baseline(y_train: np.ndarray, n: int, classes: int = 2) -> np.ndarray:
    """Always the training split's class frequencies (so the majority class wins every row)."""
    freq = np.bincount(np.asarray(y_train, dtype=int), minlength=classes) / len(y_train)
    return np.tile(freq, (n, 1))


def conditional_baseline(
    state_train: np.ndarray, y_train: np.ndarray, state: np.ndarray, classes: int = 2
) -> np.ndarray:
    """Class probabilities given a known state (the last move, the current regime).

    Frequencies (Laplace-smoothed: one extra count per class, so no class gets probability 0
    and the log loss stays finite) of each class after each state on the training split; a
    state unseen in training gets the overall frequencies. With ``state = last minute went up``
    this is the probabilistic form of "the next move repeats the last one"; with ``state = the
    regime of the trailing volatility`` it is "the regime persists".
    """
    state_train = np.asarray(state_train, dtype=int)
    y_train = np.asarray(y_train, dtype=int)
    overall = (np.bincount(y_train, minlength=classes) + 1) / (len(y_train) + classes)
    state = np.asarray(state, dtype=int)
    out = np.tile(overall, (len(state), 1))
    for value in np.unique(state):
        seen = state_train == value
        if seen.any():
            counts = np.bincount(y_train[seen], minlength=classes) + 1
            out[state == value] = counts / (seen.sum() + classes)
    return out


def event_precision_recall(
    flagged: np.ndarray, in_event: np.ndarray, event_ids: np.ndarray
) -> dict[str, float]:
    """Row precision and event recall of anomaly flags.

    Args:
        flagged: per row, whether the model flagged it.
        in_event: per row, whether it lies in an injected anomaly's window.
        event_ids: per row, the id of its anomaly window (ignored where ``in_event`` is false).

    Precision is the share of flagged rows that lie in an anomaly window; recall is the share of
    anomalies with at least one flagged row in their window.
    """
    flagged = np.asarray(flagged, dtype=bool)
    in_event = np.asarray(in_event, dtype=bool)
    events = set(np.asarray(event_ids)[in_event].tolist())
    found = set(np.asarray(event_ids)[in_event & flagged].tolist())
    return {
        "precision": float(precision_score(in_event, flagged, zero_division=0.0)),
        "row_recall": float(recall_score(in_event, flagged, zero_division=0.0)),
        "event_recall": len(found) / len(events) if events else float("nan"),
        "flagged": float(flagged.sum()),
        "events": float(len(events)),
    }

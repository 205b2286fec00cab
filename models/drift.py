"""Population stability index of live model inputs against the training set, per feature.

The reference is recorded at training time (an artifact of the run): per model input, the inner
edges of ``bins`` quantile bins of the training rows and the share of rows in each bin (plus a
bin for missing values). Live rows are counted in the same bins, and

    PSI = sum over bins of (live - ref) * ln(live / ref)

with shares floored at 1e-4 so that an empty bin does not give infinity. Usual reading: below 0.1
stable, 0.1 to 0.2 a moderate shift, above 0.2 (the default threshold) a significant one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from featurestore.errors import ValidationError

__all__ = ["DEFAULT_THRESHOLD", "FeatureDrift", "population_stability", "reference_histograms"]

DEFAULT_THRESHOLD = 0.2
_FLOOR = 1e-4


@dataclass(frozen=True)
class FeatureDrift:
    """The PSI of one model input."""

    feature: str
    psi: float
    live_rows: int
    drifted: bool


def _shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    missing = np.isnan(values)
    counts = np.bincount(
        np.searchsorted(edges, values[~missing], side="right"), minlength=len(edges) + 1
    )
    return np.append(counts, missing.sum()) / max(len(values), 1)


def reference_histograms(inputs: pd.DataFrame, bins: int = 10) -> dict[str, Any]:
    """The drift reference of training inputs (JSON-ready)."""
    features: dict[str, Any] = {}
    for column in inputs.columns:
        values = inputs[column].to_numpy(dtype="float64")
        present = values[~np.isnan(values)]
        edges = (
            np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1]))
            if present.size
            else np.array([])
        )
        features[column] = {
            "edges": edges.tolist(),
            "shares": _shares(values, edges).tolist(),
        }
    return {"bins": bins, "rows": len(inputs), "features": features}


def population_stability(
    reference: dict[str, Any], live: pd.DataFrame, threshold: float = DEFAULT_THRESHOLD
) -> list[FeatureDrift]:
    """PSI of every reference feature on the ``live`` model inputs, worst first.

    Raises:
        ValidationError: ``live`` has no rows or lacks a reference feature.
    """
    if live.empty:
        raise ValidationError("no live rows to measure drift on", field="window")
    out = []
    for feature, ref in reference["features"].items():
        if feature not in live.columns:
            raise ValidationError(f"live inputs lack {feature!r}", field=feature)
        expected = np.maximum(np.asarray(ref["shares"], dtype="float64"), _FLOOR)
        actual = _shares(live[feature].to_numpy(dtype="float64"), np.asarray(ref["edges"]))
        actual = np.maximum(actual, _FLOOR)
        psi = float(np.sum((actual - expected) * np.log(actual / expected)))
        out.append(FeatureDrift(feature, psi, len(live), psi > threshold))
    return sorted(out, key=lambda d: -d.psi)

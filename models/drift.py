"""Population stability index of live model inputs against the training set, per feature.

The reference is recorded at training time (an artifact of the run): per model input, the inner
edges of ``bins`` quantile bins of the training rows' present values, the share of those values
in each bin, and the share of missing values. Live values are counted in the same bins, and

    PSI = sum over bins of (live - ref) * ln(live / ref)

with shares floored at 1e-4 so that an empty bin does not give infinity. Usual reading: below 0.1
stable, 0.1 to 0.2 a moderate shift, above 0.2 (the default threshold) a significant one.

Below :data:`MIN_ROWS_PER_BIN` live rows per bin the index is refused rather than computed: on n
rows and k bins, sampling alone gives a PSI of about (k - 1) / n, 0.45 on 20 rows of 10 bins.

Missing values are reported apart (share in training, share live), not binned into the PSI: the
rolling windows' warm-up leaves a few percent of training rows without a value, and a missing bin
that is empty live would alone add ~0.5 to the index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from featurestore.errors import ValidationError

__all__ = [
    "DEFAULT_THRESHOLD",
    "MIN_ROWS_PER_BIN",
    "FeatureDrift",
    "population_stability",
    "reference_histograms",
]

DEFAULT_THRESHOLD = 0.2
MIN_ROWS_PER_BIN = 10
"""Live rows needed per reference bin: sampling noise then stays near 0.1, half the threshold."""
_FLOOR = 1e-4


@dataclass(frozen=True)
class FeatureDrift:
    """The PSI of one model input."""

    feature: str
    psi: float
    live_rows: int
    drifted: bool
    missing_reference: float = 0.0
    """Share of training rows without a value."""
    missing_live: float = 0.0
    """Share of live rows without a value."""


def _shares(values: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, float]:
    """Shares of the present values per bin, and the share of missing values."""
    missing = np.isnan(values)
    bins = np.searchsorted(edges, values[~missing], side="right")
    counts = np.bincount(bins, minlength=len(edges) + 1)
    present = max(int((~missing).sum()), 1)
    return counts / present, float(missing.mean()) if len(values) else 0.0


def reference_histograms(inputs: pd.DataFrame, bins: int = 10) -> dict[str, Any]:
    """The drift reference of training inputs (JSON-ready)."""
    features: dict[str, Any] = {}
    inner = np.linspace(0, 1, bins + 1)[1:-1]
    for column in inputs.columns:
        values = inputs[column].to_numpy(dtype="float64")
        present = values[~np.isnan(values)]
        edges = np.unique(np.quantile(present, inner)) if present.size else np.array([])
        shares, missing = _shares(values, edges)
        features[column] = {"edges": edges.tolist(), "shares": shares.tolist(), "missing": missing}
    return {"bins": bins, "rows": len(inputs), "features": features}


def population_stability(
    reference: dict[str, Any], live: pd.DataFrame, threshold: float = DEFAULT_THRESHOLD
) -> list[FeatureDrift]:
    """PSI of every reference feature on the ``live`` model inputs, worst first.

    Raises:
        ValidationError: ``live`` has fewer than :data:`MIN_ROWS_PER_BIN` rows per bin, or
            lacks a reference feature.
    """
    needed = MIN_ROWS_PER_BIN * int(reference["bins"])
    if len(live) < needed:
        raise ValidationError(
            f"{len(live)} live rows to measure drift on; {needed} needed for {reference['bins']}"
            " bins (fewer give a PSI that is mostly sampling noise)",
            field="window",
        )
    out = []
    for feature, ref in reference["features"].items():
        if feature not in live.columns:
            raise ValidationError(f"live inputs lack {feature!r}", field=feature)
        expected = np.maximum(np.asarray(ref["shares"], dtype="float64"), _FLOOR)
        values = live[feature].to_numpy(dtype="float64")
        actual, missing = _shares(values, np.asarray(ref["edges"]))
        actual = np.maximum(actual, _FLOOR)
        psi = float(np.sum((actual - expected) * np.log(actual / expected)))
        drift = FeatureDrift(feature, psi, len(live), psi > threshold, ref["missing"], missing)
        out.append(drift)
    return sorted(out, key=lambda d: -d.psi)

"""Chronological train / validation / test splits with a purge gap between them.

Rows are never shuffled across time. The cut points are quantiles of the distinct sample times
(all symbols together, so one instant is in one split only); the ``gap`` before each cut drops
the rows whose labels would reach past it. The gap must be at least the label's reach
(horizon + max_wait), so no training label reads a price of the validation or test period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pandas as pd

from featurestore.errors import ValidationError

__all__ = ["Split", "SplitSpec", "chronological_split"]


@dataclass(frozen=True)
class SplitSpec:
    """Shares of the time line, and the purge gap before each cut."""

    train: float = 0.6
    valid: float = 0.2
    gap: timedelta = timedelta(minutes=6)

    def __post_init__(self) -> None:
        """Refuse shares that leave no test set and a negative gap (ValidationError)."""
        if not (0 < self.train < 1 and 0 < self.valid < 1 and self.train + self.valid < 1):
            raise ValidationError(
                "train and valid shares must be in (0, 1) and sum below 1", field="split"
            )
        if self.gap < timedelta(0):
            raise ValidationError("split gap must not be negative", field="gap")


@dataclass(frozen=True)
class Split:
    """Boolean masks over the rows, and where the cuts fell."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    valid_start: pd.Timestamp
    test_start: pd.Timestamp


def chronological_split(times: pd.Series, spec: SplitSpec = SplitSpec()) -> Split:
    """Split rows by their ``times``: train before, then validation, then test.

    Raises:
        ValidationError: a split comes out empty (too little data for the gap).
    """
    ts = pd.to_datetime(times, utc=True)
    distinct = np.sort(ts.unique())
    if len(distinct) < 3:
        raise ValidationError("fewer than 3 distinct sample times; cannot split", field="rows")
    valid_start = pd.Timestamp(distinct[int(len(distinct) * spec.train)]).tz_convert("UTC")
    test_start = pd.Timestamp(distinct[int(len(distinct) * (spec.train + spec.valid))]).tz_convert(
        "UTC"
    )
    gap = pd.Timedelta(spec.gap)
    train = (ts < valid_start - gap).to_numpy()
    valid = ((ts >= valid_start) & (ts < test_start - gap)).to_numpy()
    test = (ts >= test_start).to_numpy()
    for name, mask in (("train", train), ("validation", valid), ("test", test)):
        if not mask.any():
            raise ValidationError(
                f"the {name} split is empty (the data spans too little time for a gap of "
                f"{spec.gap})",
                field="rows",
            )
    return Split(train, valid, test, valid_start, test_start)

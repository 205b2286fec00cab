"""Training sets: point-in-time features of a feature service, with labels strictly after.

The features of each sample ``(symbol, t)`` come from the offline store's point-in-time export
(features with ``event_timestamp <= t``), named ``view__feature``; the labels come from bar
closes after ``t`` (:func:`featurestore.offline.add_forward_labels`, :mod:`models.data.targets`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import pandas as pd

from featurestore.offline import (
    LabelSpec,
    PostgresOfflineStore,
    TrainingRequest,
    add_forward_labels,
)
from models.data.source import DataWindow, read_closes, sample_times
from models.data.targets import add_forward_volatility, minute_closes

__all__ = ["Dataset", "DatasetSpec", "load_dataset", "shuffle_in_time"]

SAMPLE_VIEW = "rolling_1m"
PRICE_VIEW = "bars_1m"


@dataclass(frozen=True)
class DatasetSpec:
    """What to export and which labels to add."""

    feature_service: str
    window: DataWindow = field(default_factory=DataWindow)
    labels: LabelSpec = field(default_factory=LabelSpec)
    vol_horizon: timedelta = timedelta(minutes=15)
    """Look-ahead of the forward realized volatility (the regime target)."""

    @property
    def label_reach(self) -> timedelta:
        """How far after a sample its labels read: the least purge gap between splits."""
        return max(self.labels.horizon + self.labels.max_wait, self.vol_horizon)


@dataclass(frozen=True)
class Dataset:
    """One row per sample: ``symbol``, ``event_timestamp``, the features, the labels."""

    frame: pd.DataFrame
    feature_columns: tuple[str, ...]
    feature_service: str

    @property
    def start(self) -> pd.Timestamp:
        """The first sample time."""
        return pd.Timestamp(self.frame["event_timestamp"].min())

    @property
    def end(self) -> pd.Timestamp:
        """The last sample time."""
        return pd.Timestamp(self.frame["event_timestamp"].max())


def load_dataset(store: PostgresOfflineStore, dsn: str, spec: DatasetSpec) -> Dataset:
    """Export the samples of ``spec.window`` with their features and add the labels.

    Labels: ``forward_return`` and ``direction`` (see :class:`LabelSpec`), ``forward_vol`` (see
    :mod:`models.data.targets`). Rows stay in time order.
    """
    defs = store.definitions
    samples = sample_times(dsn, defs.view(SAMPLE_VIEW), spec.window)
    request = TrainingRequest(feature_service=spec.feature_service, full_feature_names=True)
    frame = store.to_pandas(samples, request)
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    columns = tuple(c for c in frame.columns if "__" in c)
    pad = max(spec.labels.max_staleness, spec.label_reach)
    bars = read_closes(dsn, defs.view(PRICE_VIEW), spec.window, pad)
    closes = minute_closes(bars)
    frame = add_forward_labels(frame, closes, spec.labels)
    frame = add_forward_volatility(frame, closes, spec.vol_horizon)
    frame[list(columns)] = frame[list(columns)].astype("float64")
    return Dataset(frame.reset_index(drop=True), columns, spec.feature_service)


def shuffle_in_time(frame: pd.DataFrame, columns: list[str], seed: int) -> pd.DataFrame:
    """The leakage canary's input: ``columns`` permuted across rows, everything else in place."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(frame))
    out = frame.copy()
    for column in columns:
        out[column] = frame[column].to_numpy()[order]
    return out

"""Training sets: point-in-time features of a feature service, with labels strictly after.

The features of each sample ``(symbol, t)`` come from the offline store's point-in-time export
(features with ``event_timestamp <= t``), named ``view__feature``; the labels come from bar
closes after ``t`` (:func:`featurestore.offline.add_forward_labels`, :mod:`models.data.targets`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from dataclasses import field
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from featurestore.definitions import Definitions
from featurestore.errors import ValidationError
from featurestore.offline import LabelSpec
from featurestore.offline import PostgresOfflineStore
from featurestore.offline import TrainingRequest
from featurestore.offline import add_forward_labels
from models.data.source import DataWindow
from models.data.source import continuation
from models.data.source import read_closes
from models.data.source import sample_times
from models.data.targets import add_forward_volatility
from models.data.targets import minute_closes
from models.data.warm import warm_rows

__all__ = ["Dataset", "DatasetSpec", "load_dataset", "read_dataset", "shuffle_in_time"]

logger = logging.getLogger(__name__)

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
    samples = _warm_samples(dsn, defs, spec)
    request = TrainingRequest(feature_service=spec.feature_service, full_feature_names=True)
    frame = store.to_pandas(samples, request)
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    columns = tuple(c for c in frame.columns if "__" in c)
    pad = max(spec.labels.max_staleness, spec.label_reach)
    bars = read_closes(dsn, defs.view(PRICE_VIEW), spec.window, pad)
    closes = minute_closes(bars)
    # The last minute's close may be of a minute still running: the bars say how far the
    # market was seen, and labels whose horizon it has not reached are null (dropped in training).
    frame = add_forward_labels(frame, closes, spec.labels, seen=bars)
    frame = add_forward_volatility(frame, closes, spec.vol_horizon, seen=bars)
    frame[list(columns)] = frame[list(columns)].astype("float64")
    return Dataset(frame.reset_index(drop=True), columns, spec.feature_service)


def _warm_samples(dsn: str, definitions: Definitions, spec: DatasetSpec) -> pd.DataFrame:
    """The sample times of the window whose features have full windows (:mod:`.warm`).

    A log's first minutes, and those after each time the feed was stopped, are left out: a
    model would learn half-empty 20-minute windows as normal.
    """
    view = definitions.view(SAMPLE_VIEW)
    samples = sample_times(dsn, view, spec.window)
    continues = continuation(dsn, view, spec.window.start)
    warm_up = definitions.warm_up(spec.feature_service)
    warm = warm_rows(samples["event_timestamp"], warm_up, continues=continues)
    if not warm.any():
        raise ValidationError(
            f"no rows of {view.source.table} in this window have full windows (the first"
            f" {warm_up.total_seconds() / 60:g} minutes after the feed (re)starts are left"
            " out); nothing to train on",
            field="window",
        )
    if not warm.all():
        logger.info("training: %d of %d samples left out, their windows still filling",
                 int((~warm).sum()), len(samples))  # fmt: skip
    return samples[warm].reset_index(drop=True)


def read_dataset(path: Path, feature_service: str, window: DataWindow) -> Dataset:
    """A training set from an exported file (Parquet, or CSV) instead of the offline store.

    The file holds ``symbol``, ``event_timestamp``, the features named ``view__feature`` and the
    labels (``forward_return``, ``direction``; ``forward_vol`` for the regime model), as
    ``featurestore export --labels`` writes them; rows are kept within ``window``.

    Raises:
        ValidationError: the file cannot be read, or lacks a column, or no row is in the window.
    """
    try:
        frame = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise ValidationError(f"data file {path}: {exc}", field="data_file") from exc
    missing = [c for c in ("symbol", "event_timestamp", "forward_return") if c not in frame]
    if missing:
        raise ValidationError(f"data file {path} lacks column(s) {missing}", field="data_file")
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    if "direction" not in frame:
        frame["direction"] = np.sign(frame["forward_return"])
    keep = pd.Series(True, index=frame.index)
    if window.start is not None:
        keep &= frame["event_timestamp"] >= window.start
    if window.end is not None:
        keep &= frame["event_timestamp"] <= window.end
    if window.symbols is not None:
        keep &= frame["symbol"].isin(window.symbols)
    frame = frame[keep].sort_values(["event_timestamp", "symbol"], kind="stable")
    if frame.empty:
        raise ValidationError(f"data file {path} has no rows in the window", field="window")
    columns = tuple(c for c in frame.columns if "__" in c)
    frame[list(columns)] = frame[list(columns)].astype("float64")
    return Dataset(frame.reset_index(drop=True), columns, feature_service)


def shuffle_in_time(frame: pd.DataFrame, columns: list[str], seed: int) -> pd.DataFrame:
    """The leakage canary's input: ``columns`` permuted across rows, everything else in place."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(frame))
    out = frame.copy()
    for column in columns:
        out[column] = frame[column].to_numpy()[order]
    return out

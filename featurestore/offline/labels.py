"""Labels for market data that cannot see the future of the features.

Definitions (bars are 1-minute bars whose ``event_timestamp`` is the bar's END, the moment the
bar is complete, so a bar with ``event_timestamp <= t`` holds only trades before ``t``):

* ``ref_close(t)``: the close of the latest bar with ``event_timestamp <= t`` and
  ``event_timestamp >= t - max_staleness`` -- the last price known at ``t``, the same value a
  feature at ``t`` sees; null when there is none.
* ``future_close(t)``: the close of the first bar with ``event_timestamp >= t + horizon`` and
  ``event_timestamp <= t + horizon + max_wait``; null when there is none (a gap, or the end of
  the data). With ``horizon > 0`` this bar ends strictly after ``t``: the label's future part
  comes only from bars strictly after ``t``.
* ``forward_return = future_close / ref_close - 1``.
* ``direction``: ``1`` when ``forward_return > threshold``, ``-1`` when it is
  ``< -threshold``, ``0`` otherwise, null when the return is null.

Nothing after ``t + horizon + max_wait`` and nothing in ``(t, t + horizon)`` is read, and
features are joined with ``event_timestamp <= t``: features and labels never overlap.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pandas as pd

from featurestore.errors import ValidationError

__all__ = ["LabelSpec", "add_forward_labels"]


@dataclass(frozen=True)
class LabelSpec:
    """How to compute the labels."""

    horizon: timedelta = timedelta(minutes=5)
    """How far ahead the future price is taken; must be positive."""
    max_wait: timedelta = timedelta(minutes=1)
    """How long after ``t + horizon`` a bar may end and still count."""
    max_staleness: timedelta = timedelta(minutes=5)
    """How old the reference bar may be."""
    threshold: float = 0.0
    """Returns within ``[-threshold, threshold]`` are direction 0."""
    prefix: str = ""
    """Prepended to the label column names (``forward_return``, ``direction``)."""

    def __post_init__(self) -> None:
        if self.horizon <= timedelta(0):
            raise ValidationError("label horizon must be positive", field="horizon")
        if self.max_wait < timedelta(0) or self.max_staleness < timedelta(0):
            raise ValidationError(
                "max_wait and max_staleness must not be negative", field="max_wait"
            )
        if self.threshold < 0:
            raise ValidationError("threshold must not be negative", field="threshold")


def add_forward_labels(
    entity_rows: pd.DataFrame,
    bars: pd.DataFrame,
    spec: LabelSpec = LabelSpec(),
    *,
    key: str = "symbol",
    timestamp_column: str = "event_timestamp",
    price_column: str = "close",
) -> pd.DataFrame:
    """Entity rows (order and columns kept) with ``forward_return`` and ``direction`` added.

    Args:
        entity_rows: One row per training example: ``key`` and ``timestamp_column`` (UTC).
        bars: Bars of the same symbols: ``key``, ``event_timestamp`` (bar end), ``price_column``
            and optionally ``created_timestamp`` (of several bars with the same key and time,
            the latest created wins).
        spec: Horizon, tolerances and threshold.
        key: Entity key column, in both frames.
        timestamp_column: Entity rows' time column.
        price_column: Bars' price column.
    """
    for frame, name in ((entity_rows, "entity_rows"), (bars, "bars")):
        if frame.empty:
            raise ValidationError(f"{name} is empty", field=name)
    for column in (key, timestamp_column):
        if column not in entity_rows.columns:
            raise ValidationError(f"entity rows have no column {column!r}", field=column)
    for column in (key, "event_timestamp", price_column):
        if column not in bars.columns:
            raise ValidationError(f"bars have no column {column!r}", field=column)

    t = _utc(entity_rows[timestamp_column], timestamp_column)
    left = pd.DataFrame(
        {
            "_row": np.arange(len(entity_rows)),
            "_key": entity_rows[key].to_numpy(),
            "_t": t.to_numpy(),
        }
    )
    left["_t_future"] = left["_t"] + spec.horizon
    order = ["event_timestamp"] + (["created_timestamp"] if "created_timestamp" in bars else [])
    right = bars.assign(event_timestamp=_utc(bars["event_timestamp"], "event_timestamp"))
    right = right.sort_values(order).drop_duplicates([key, "event_timestamp"], keep="last")
    right = right.rename(columns={key: "_key"})[["_key", "event_timestamp", price_column]]

    ref = pd.merge_asof(
        left.sort_values("_t"),
        right,
        left_on="_t",
        right_on="event_timestamp",
        by="_key",
        direction="backward",
        tolerance=pd.Timedelta(spec.max_staleness),
        allow_exact_matches=True,
    )
    fut = pd.merge_asof(
        left.sort_values("_t_future"),
        right,
        left_on="_t_future",
        right_on="event_timestamp",
        by="_key",
        direction="forward",
        tolerance=pd.Timedelta(spec.max_wait),
        allow_exact_matches=True,
    )
    ref_close = ref.set_index("_row")[price_column].sort_index().to_numpy(dtype="float64")
    future_close = fut.set_index("_row")[price_column].sort_index().to_numpy(dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        forward = future_close / ref_close - 1.0
    direction = pd.array(
        np.where(forward > spec.threshold, 1, np.where(forward < -spec.threshold, -1, 0)),
        dtype="Int8",
    )
    direction[np.isnan(forward)] = pd.NA
    out = entity_rows.copy()
    out[f"{spec.prefix}forward_return"] = forward
    out[f"{spec.prefix}direction"] = direction
    return out


def _utc(values: pd.Series, name: str) -> pd.Series:
    try:
        converted = pd.to_datetime(values)
    except (ValueError, TypeError) as exc:
        raise ValidationError(
            f"column {name!r} does not hold timestamps: {exc}", field=name
        ) from exc
    if converted.isna().any():
        raise ValidationError(f"column {name!r} has null timestamps", field=name)
    if converted.dt.tz is None:
        # Naive timestamps are UTC by the store's convention (see featurestore.offline.entities).
        return converted.dt.tz_localize("UTC").astype("datetime64[ns, UTC]")
    return converted.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")

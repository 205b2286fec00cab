"""Targets beyond the forward return: forward realized volatility and its regime class.

``forward_vol(t)``: the standard deviation (ddof 1) of the one-minute log returns of the closes
of the minutes ending in ``(t, t + horizon]``, each against the previous minute's close (the first
against the last close known at ``t``); null with fewer than ``min_returns`` returns, and null
until the horizon has passed (a bar of the symbol at or after ``t + horizon``,
:func:`featurestore.offline.labels.horizon_passed`). Only minute closes strictly after ``t``
enter it, like the labels of :func:`featurestore.offline.add_forward_labels`.

``regime``: 0 (calm), 1 (normal) or 2 (turbulent), by the terciles of ``forward_vol`` on the
TRAIN split only (:func:`regime_edges`), so validation and test rows never shape the classes.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

from featurestore.offline.labels import horizon_passed

__all__ = ["add_forward_volatility", "minute_closes", "regime_classes", "regime_edges"]


def minute_closes(bars: pd.DataFrame) -> pd.DataFrame:
    """The last close per symbol and minute END, whatever the bars' granularity.

    Bars stamped at a minute's end stay in that minute; rows stamped inside a minute (as-of-trade
    bars) count for the minute ending next; of several rows the latest (then latest created) wins.
    """
    order = ["event_timestamp"] + (["created_timestamp"] if "created_timestamp" in bars else [])
    b = bars.sort_values(order)
    minute = b["event_timestamp"].dt.ceil("min")
    out = b.assign(event_timestamp=minute).groupby(["symbol", "event_timestamp"], sort=True)
    return out["close"].last().reset_index()


def add_forward_volatility(
    rows: pd.DataFrame,
    closes: pd.DataFrame,
    horizon: timedelta = timedelta(minutes=15),
    *,
    min_returns: int = 5,
    column: str = "forward_vol",
    seen: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """``rows`` (order kept) with ``column`` added, from :func:`minute_closes` output.

    ``seen``: the bars the closes were made from (``symbol``, ``event_timestamp``), which say how
    far each symbol's market has been seen; by default the closes, whose last minute may still
    be running.
    """
    result = np.full(len(rows), np.nan)
    positions = pd.RangeIndex(len(rows))
    ts = pd.to_datetime(rows["event_timestamp"], utc=True)
    passed = horizon_passed(rows["symbol"], ts + horizon, closes if seen is None else seen)
    for symbol, part in closes.groupby("symbol", sort=False):
        mask = (rows["symbol"] == symbol).to_numpy()
        if not mask.any():
            continue
        times = part["event_timestamp"].to_numpy(dtype="datetime64[ns]")
        logp = np.log(part["close"].to_numpy(dtype="float64"))
        r = np.diff(logp)  # r[i-1] = return of minute i against minute i-1
        s1 = np.concatenate([[0.0], np.cumsum(r)])
        s2 = np.concatenate([[0.0], np.cumsum(r * r)])
        t = ts[mask].dt.tz_convert(None).to_numpy(dtype="datetime64[ns]")
        first = np.searchsorted(times, t, side="right")  # first minute strictly after t
        last = np.searchsorted(times, t + np.timedelta64(horizon), side="right") - 1
        # returns of minutes first..last need a previous close: minute first-1 must exist.
        lo = np.maximum(first, 1) - 1  # index into r
        hi = last  # r index of minute `last` is last-1; exclusive bound in s is `last`
        n = hi - lo
        ok = (first >= 1) & (n >= min_returns)
        total = s1[np.clip(hi, 0, None)] - s1[lo]
        squares = s2[np.clip(hi, 0, None)] - s2[lo]
        with np.errstate(invalid="ignore", divide="ignore"):
            var = (squares - total * total / n) / (n - 1)
        vol = np.where(ok & passed[mask], np.sqrt(np.clip(var, 0.0, None)), np.nan)
        result[positions[mask]] = vol
    return rows.assign(**{column: result})


def regime_edges(train_vol: pd.Series) -> tuple[float, float]:
    """The tercile edges of forward volatility on the training rows."""
    values = train_vol.dropna().to_numpy(dtype="float64")
    if values.size < 3:
        raise ValueError("too few training rows with a forward volatility for terciles")
    low, high = np.quantile(values, [1 / 3, 2 / 3])
    return float(low), float(high)


def regime_classes(vol: pd.Series, edges: tuple[float, float]) -> pd.Series:
    """0, 1 or 2 per row by ``edges``; null where ``vol`` is null."""
    values = vol.to_numpy(dtype="float64")
    classes = np.digitize(values, edges, right=True).astype("float64")
    classes[np.isnan(values)] = np.nan
    return pd.Series(classes, index=vol.index).astype("Int8")

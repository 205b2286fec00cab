"""A pandas reference of the ``bars_1m`` and ``rolling_1m`` feature rows, computed from trades.

The processors (``processors/``) compute these in Spark from the event log; this reference lets
demos, tests and benchmarks fill offline tables from a trade frame without a Spark session. It
follows the catalog's definitions (:mod:`featurestore.definitions.catalog`): one bar per symbol
and minute with trades, ``event_timestamp`` = the minute's END; rolling windows count bars (minutes
with trades), and a window with fewer bars than it needs gives null.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd

from featurestore.errors import ValidationError

__all__ = ["bars_1m", "rolling_1m"]


def bars_1m(trades: pd.DataFrame, created: datetime | None = None) -> pd.DataFrame:
    """One-minute OHLCV bars (the ``bars_1m`` view's rows) of a trades frame."""
    if trades.empty:
        raise ValidationError("no trades to compute bars from", field="trades")
    t = trades.sort_values("event_time", kind="stable")
    t = t.assign(
        event_timestamp=t["event_time"].dt.floor("min") + pd.Timedelta(minutes=1),
        notional=t["price"] * t["size"],
    )
    grouped = t.groupby(["symbol", "event_timestamp"], sort=True)
    bars = grouped.agg(
        open=("price", "first"),
        high=("price", "max"),
        low=("price", "min"),
        close=("price", "last"),
        volume=("size", "sum"),
        trade_count=("size", "size"),
        notional=("notional", "sum"),
    ).reset_index()
    bars["volume"] = bars["volume"].astype("float64")
    bars["trade_count"] = bars["trade_count"].astype("int64")
    bars["avg_trade_size"] = bars["volume"] / bars["trade_count"]
    bars["vwap"] = bars["notional"] / bars["volume"]
    bars["created_timestamp"] = pd.Timestamp(created or datetime.now(UTC))
    return bars.drop(columns=["notional"])


def rolling_1m(bars: pd.DataFrame, created: datetime | None = None) -> pd.DataFrame:
    """The ``rolling_1m`` view's rows: windows over each symbol's last bars."""
    b = bars.sort_values(["symbol", "event_timestamp"]).reset_index(drop=True)
    g = b.groupby("symbol", sort=False)
    notional = b["vwap"] * b["volume"]
    log_return = np.log(b["close"] / g["close"].shift(1))

    def over(values: pd.Series, n: int, how: str) -> pd.Series:
        windows = values.groupby(b["symbol"], sort=False).rolling(n, min_periods=n)
        result = getattr(windows, how)(**({"ddof": 1} if how == "std" else {}))
        return result.reset_index(level=0, drop=True).sort_index()

    out = pd.DataFrame({"symbol": b["symbol"], "event_timestamp": b["event_timestamp"]})
    for n in (5, 15):
        out[f"vwap_{n}m"] = over(notional, n, "sum") / over(b["volume"], n, "sum")
        out[f"realized_vol_{n}m"] = over(log_return, n, "std")
    out["price_momentum_1m"] = b["close"] / g["close"].shift(1) - 1
    out["price_momentum_5m"] = b["close"] / g["close"].shift(5) - 1
    out["volume_5m"] = over(b["volume"], 5, "sum")
    out["volume_ratio"] = b["volume"] / over(b["volume"], 15, "mean")
    out["sma_5"] = over(b["close"], 5, "mean")
    out["sma_20"] = over(b["close"], 20, "mean")
    out["created_timestamp"] = pd.Timestamp(created or datetime.now(UTC))
    return out

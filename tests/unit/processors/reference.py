"""An independent pandas computation of the processors' features (groupby / rolling).

Written from the feature definitions, not from the state machine, for trades that arrive in
event-time order without duplicates (what a real trade file is). Used by the unit tests and by
the end-to-end test against the stores.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MINUTE_US = 60_000_000


def reference_bars(trades: pd.DataFrame, lateness_us: int = 5_000_000) -> pd.DataFrame:
    """bars_1m rows: one per (symbol, distinct event time), plus each closed minute's last us.

    ``trades`` has columns symbol, event_us, price, size, kafka_ms, partition, offset, in log
    order per symbol.
    """
    df = trades.copy()
    df["minute"] = df["event_us"] // MINUTE_US * MINUTE_US
    df["notional"] = df["price"] * df["size"]
    g = df.groupby(["symbol", "minute"], sort=False)
    df["c_volume"] = g["size"].cumsum()
    df["c_notional"] = g["notional"].cumsum()
    df["c_count"] = g.cumcount() + 1
    df["c_high"] = g["price"].cummax()
    df["c_low"] = g["price"].cummin()
    df["c_open"] = g["price"].transform("first")
    df["c_created"] = g["kafka_ms"].cummax()
    df["c_first"] = g["offset"].cummin()
    df["c_last"] = g["offset"].cummax()
    per_time = df.groupby(["symbol", "event_us"], sort=False).tail(1)
    rows = pd.DataFrame(
        {
            "symbol": per_time["symbol"].to_numpy(),
            "event_us": per_time["event_us"].to_numpy(),
            "created_ms": per_time["c_created"].to_numpy(),
            "open": per_time["c_open"].to_numpy(),
            "high": per_time["c_high"].to_numpy(),
            "low": per_time["c_low"].to_numpy(),
            "close": per_time["price"].to_numpy(),
            "volume": per_time["c_volume"].to_numpy(),
            "trade_count": per_time["c_count"].to_numpy(),
            "notional": per_time["c_notional"].to_numpy(),
            "first_offset": per_time["c_first"].to_numpy(),
            "last_offset": per_time["c_last"].to_numpy(),
        }
    )
    closed = closed_bars(trades, lateness_us)
    closing = closed.assign(event_us=closed["end_us"] - 1)[rows.columns]
    out = pd.concat([rows, closing], ignore_index=True)
    out = out.drop_duplicates(["symbol", "event_us"], keep="last")
    out["avg_trade_size"] = out["volume"] / out["trade_count"]
    out["vwap"] = np.where(
        out["volume"] > 0, out["notional"] / out["volume"].where(out["volume"] > 0), np.nan
    )
    return out.drop(columns="notional").sort_values(["symbol", "event_us"]).reset_index(drop=True)


def closed_bars(trades: pd.DataFrame, lateness_us: int = 5_000_000) -> pd.DataFrame:
    """Complete bars of the minutes each symbol's latest event time has closed."""
    df = trades.assign(
        minute=trades["event_us"] // MINUTE_US * MINUTE_US,
        notional=trades["price"] * trades["size"],
    )
    bars = (
        df.groupby(["symbol", "minute"])
        .agg(
            open=("price", "first"),
            high=("price", "max"),
            low=("price", "min"),
            close=("price", "last"),
            volume=("size", "sum"),
            trade_count=("price", "size"),
            notional=("notional", "sum"),
            created_ms=("kafka_ms", "max"),
            first_offset=("offset", "min"),
            last_offset=("offset", "max"),
        )
        .reset_index()
    )
    bars["end_us"] = bars["minute"] + MINUTE_US
    latest = df.groupby("symbol")["event_us"].max()
    bars = bars[bars["end_us"] + lateness_us <= bars["symbol"].map(latest)]
    return bars.reset_index(drop=True)


def _std(window: np.ndarray) -> float:
    return float(np.std(window, ddof=1))


def reference_rolling(trades: pd.DataFrame, lateness_us: int = 5_000_000) -> pd.DataFrame:
    """rolling_1m rows at each closed minute's end, windows over bars (empty minutes skipped)."""
    out = []
    for symbol, bars in closed_bars(trades, lateness_us).groupby("symbol"):
        bars = bars.sort_values("minute")
        close, volume = bars["close"], bars["volume"]
        returns = np.log(close).diff()
        frame = pd.DataFrame(
            {
                "symbol": symbol,
                "event_us": bars["end_us"],
                "created_ms": bars["created_ms"],
                "vwap_5m": bars["notional"].rolling(5).sum() / volume.rolling(5).sum(),
                "vwap_15m": bars["notional"].rolling(15).sum() / volume.rolling(15).sum(),
                # Two-pass std per window: pandas' running variance loses digits when returns
                # are near-constant.
                "realized_vol_5m": returns.rolling(5).apply(_std, raw=True),
                "realized_vol_15m": returns.rolling(15).apply(_std, raw=True),
                "price_momentum_1m": (close - bars["open"]) / bars["open"],
                "price_momentum_5m": (close - bars["open"].shift(4)) / bars["open"].shift(4),
                "volume_5m": volume.rolling(5).sum(),
                "volume_ratio": volume / volume.rolling(20).mean(),
                "sma_5": close.rolling(5).mean(),
                "sma_20": close.rolling(20).mean(),
            }
        )
        out.append(frame)
    return (
        pd.concat(out, ignore_index=True).sort_values(["symbol", "event_us"]).reset_index(drop=True)
    )

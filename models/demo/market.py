"""Trades for demos and tests: the synthetic market with injected anomalies, or any trade source.

Injections are made at the trade level, so they travel through the whole pipeline (Kafka,
features, scorer) like real market events:

* ``price_spike``: every trade of the symbol in that minute is priced ``1 + magnitude`` times
  higher, and ``extra_trades`` more trades at the spiked price are added; the next minute trades
  at the normal price again.
* ``volume_burst``: ``extra_trades`` trades of ``burst_size`` shares each, at the price of the
  symbol's last trade, are added in that minute.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Literal

import numpy as np
import pandas as pd

from featurestore.errors import ValidationError
from featurestore.events.model import Trade
from featurestore.ingest.sources.base import SourceRecord
from featurestore.ingest.validate import RecordRejectedError
from featurestore.ingest.validate import validate_trade

__all__ = ["TRADE_COLUMNS", "Injection", "inject", "plan_injections", "trades_frame"]

TRADE_COLUMNS = ("symbol", "event_time", "price", "size", "exchange")
"""The columns of a trades frame (``event_time`` aware UTC)."""

InjectionKind = Literal["price_spike", "volume_burst"]


@dataclass(frozen=True)
class Injection:
    """One anomaly injected into a symbol's trades during one minute."""

    symbol: str
    minute: datetime
    """Start of the minute (aware UTC); the bar ending at ``minute + 1 min`` carries it."""
    kind: InjectionKind
    magnitude: float = 0.04
    """Relative price jump of a ``price_spike``."""
    extra_trades: int = 30
    burst_size: int = 20_000
    """Shares per added trade of a ``volume_burst``."""

    @property
    def bar_end(self) -> pd.Timestamp:
        """The ``event_timestamp`` of the feature rows of the injected minute."""
        return pd.Timestamp(self.minute) + pd.Timedelta(minutes=1)


def trades_frame(records: Iterable[SourceRecord | Trade]) -> pd.DataFrame:
    """The valid trades of ``records`` as a frame sorted by time; rejected records are dropped.

    Sources keep their own validation (:func:`featurestore.ingest.validate_trade`): a record
    the ingest would dead-letter is not a trade here either.
    """
    rows: list[tuple[str, datetime, float, int, str]] = []
    for record in records:
        if isinstance(record, SourceRecord):
            try:
                record = validate_trade(record)
            except RecordRejectedError:
                continue
        rows.append((record.symbol, record.event_time, record.price, record.size, record.exchange))
    frame = pd.DataFrame(rows, columns=list(TRADE_COLUMNS))
    frame["event_time"] = pd.to_datetime(frame["event_time"], utc=True)
    frame["price"] = frame["price"].astype("float64")
    frame["size"] = frame["size"].astype("int64")
    return frame.sort_values("event_time", kind="stable").reset_index(drop=True)


def plan_injections(
    trades: pd.DataFrame,
    count: int,
    *,
    seed: int = 0,
    warmup: timedelta = timedelta(minutes=30),
    spacing: timedelta = timedelta(minutes=20),
    kinds: Sequence[InjectionKind] = ("price_spike", "volume_burst"),
) -> list[Injection]:
    """Pick ``count`` minutes (after ``warmup``, ``spacing`` apart per symbol) to inject into.

    Only minutes where the symbol trades are picked, alternating the ``kinds``.
    """
    if trades.empty:
        raise ValidationError("no trades to inject anomalies into", field="trades")
    rng = np.random.default_rng(seed)
    start = trades["event_time"].min() + pd.Timedelta(warmup)
    minutes = trades.assign(minute=trades["event_time"].dt.floor("min"))
    counts = minutes[minutes["minute"] >= start].groupby(["symbol", "minute"]).size()
    candidates = counts[counts >= 3].index.to_list()
    order = rng.permutation(len(candidates))
    chosen: list[Injection] = []
    taken: dict[str, list[pd.Timestamp]] = {}
    for i in order:
        symbol, minute = candidates[i]
        near = taken.setdefault(symbol, [])
        if any(abs(minute - t) < pd.Timedelta(spacing) for t in near):
            continue
        near.append(minute)
        kind = kinds[len(chosen) % len(kinds)]
        chosen.append(Injection(str(symbol), minute.to_pydatetime(), kind))
        if len(chosen) == count:
            break
    return sorted(chosen, key=lambda inj: (inj.minute, inj.symbol))


def inject(trades: pd.DataFrame, injections: Iterable[Injection], *, seed: int = 0) -> pd.DataFrame:
    """A copy of ``trades`` with the anomalies injected, sorted by time."""
    rng = np.random.default_rng(seed)
    out = trades.copy()
    added = []
    minute = out["event_time"].dt.floor("min")
    for inj in injections:
        at = pd.Timestamp(inj.minute)
        mask = (out["symbol"] == inj.symbol) & (minute == at)
        # the price before the minute, from the trades as given (not those already spiked)
        before = trades[(trades["symbol"] == inj.symbol) & (trades["event_time"] < at)]
        last = before.iloc[-1] if len(before) else out.loc[mask].iloc[0]
        last_price = float(last["price"])
        # the venue of the symbol's last trade before, where the trades have venues
        venue = {"exchange": last["exchange"]} if "exchange" in trades else {}
        offsets = np.sort(rng.uniform(0.5, 59.5, inj.extra_trades))
        times = at + pd.to_timedelta(offsets, unit="s")
        if inj.kind == "price_spike":
            out.loc[mask, "price"] = (out.loc[mask, "price"] * (1 + inj.magnitude)).round(2)
            prices = np.round(last_price * (1 + inj.magnitude), 2)
            sizes = np.full(inj.extra_trades, 100)
        else:
            prices = last_price
            sizes = np.full(inj.extra_trades, inj.burst_size)
        added.append(
            pd.DataFrame(
                {
                    "symbol": inj.symbol,
                    "event_time": times,
                    "price": prices,
                    "size": sizes,
                    **venue,
                }
            )
        )
    out = pd.concat([out, *added], ignore_index=True)
    out["size"] = out["size"].astype("int64")
    return out.sort_values("event_time", kind="stable").reset_index(drop=True)

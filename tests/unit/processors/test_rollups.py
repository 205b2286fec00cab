"""The OHLCV rollups of ``registry/rollups.py`` against an independent roll-up of real trades.

A day of real IBM trades goes through the feature engine as the processors run it (the
declared ``ohlcv_1m``, and ``ohlcv_5m`` and ``ohlcv_1h`` chained from it, in batches). The
expected bars come straight from the trades with pandas, not from the engine's 1-minute rows:
for a bar ending at B, the trades of ``[B - bar, B)`` give open (first by time, then log order),
high, low, close, volume, count, notional and VWAP. Every row the engine emits is that bar,
and so is the latest row at or before any time t (what a point-in-time read returns): the bar
ending at the last boundary at or before t.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache

import numpy as np
import pandas as pd
import pytest

from featurestore.definitions import Definitions
from featurestore.definitions.catalog import market_definitions
from featurestore.ingest.paths import market_data_dir
from featurestore.ingest.sources.lean import LeanTradeFile
from featurestore.ingest.validate import validate_trade
from processors.features import EventBatch
from processors.features import PartitionFeatureState
from processors.features import ViewChain
from processors.features import compile_chain
from processors.features import compile_topic
from processors.features import process_chain

TRADES = "20131007_ibm_Trade_Tick.csv.gz"
BARS_US = {"ohlcv_1m": 60_000_000, "ohlcv_5m": 300_000_000, "ohlcv_1h": 3_600_000_000}
FEATURES = ("open", "high", "low", "close", "volume", "trade_count", "notional", "vwap")
BATCH = 3_000


@cache
def _definitions() -> Definitions:
    return market_definitions()


@cache
def _trades() -> pd.DataFrame:
    path = market_data_dir() / TRADES
    if not path.is_file():
        pytest.fail(f"{path} is missing: the shared market data is part of the checkout's setup")
    rows = [validate_trade(record) for record in LeanTradeFile(path)]
    return pd.DataFrame(
        {
            "symbol": [t.symbol for t in rows],
            "event_us": [int(t.event_time.timestamp() * 1_000_000) for t in rows],
            "price": [t.price for t in rows],
            "size": [float(t.size) for t in rows],
            "trade_id": [t.trade_id for t in rows],
        }
    ).rename_axis("offset")


def _batches(trades: pd.DataFrame) -> Iterator[EventBatch]:
    for start in range(0, len(trades), BATCH):
        chunk = trades.iloc[start : start + BATCH]
        yield EventBatch.of(
            entity=chunk["symbol"].tolist(),
            event_us=chunk["event_us"].tolist(),
            kafka_ms=(chunk["event_us"] // 1000).tolist(),
            partition=[0] * len(chunk),
            offset=chunk.index.tolist(),
            event_id=chunk["trade_id"].tolist(),
            fields={"price": chunk["price"].tolist(), "size": chunk["size"].tolist()},
        )


@cache
def _engine_rows() -> dict[str, pd.DataFrame]:
    """Each rollup view's rows, the last emission per (symbol, time) as the stores keep them."""
    by_name = {v.name: v for v in _definitions().views}
    runs = [
        ViewChain((compile_topic([by_name["ohlcv_1m"]], join_key="symbol"),)),
        compile_chain(by_name["ohlcv_5m"], by_name, "symbol"),
        compile_chain(by_name["ohlcv_1h"], by_name, "symbol"),
    ]
    states = [[PartitionFeatureState() for _ in run.stages] for run in runs]
    emitted: dict[str, list[pd.DataFrame]] = {name: [] for name in BARS_US}
    for batch in _batches(_trades()):
        for run, state in zip(runs, states, strict=True):
            for view, columns in process_chain(run, state, batch).rows.items():
                emitted[view].append(pd.DataFrame({k: np.asarray(v) for k, v in columns.items()}))
    return {
        view: pd.concat(frames).drop_duplicates(["entity", "event_us"], keep="last")
        .sort_values("event_us").reset_index(drop=True)
        for view, frames in emitted.items()
    }  # fmt: skip


@cache
def _by_time() -> pd.DataFrame:
    """The trades in time order, ties in log order."""
    return _trades().reset_index().sort_values(["event_us", "offset"], kind="stable")


def _bar(end_us: int, bar_us: int) -> dict[str, float | None]:
    """The bar of ``[end_us - bar_us, end_us)``, straight from the trades."""
    trades = _by_time()
    times = trades.event_us.to_numpy()
    lo, hi = np.searchsorted(times, [end_us - bar_us, end_us], side="left")
    inside = trades.iloc[lo:hi]
    if inside.empty:
        return dict.fromkeys(FEATURES, None) | {"volume": 0.0, "trade_count": 0, "notional": 0.0}
    notional = float((inside.price * inside["size"]).sum())
    volume = float(inside["size"].sum())
    return {
        "open": float(inside.price.iloc[0]),
        "high": float(inside.price.max()),
        "low": float(inside.price.min()),
        "close": float(inside.price.iloc[-1]),
        "volume": volume,
        "trade_count": len(inside),
        "notional": notional,
        "vwap": notional / volume,
    }


def _values(row: pd.Series) -> dict[str, float | None]:
    return {f: None if pd.isna(row[f]) else float(row[f]) for f in FEATURES}


def _same(got: dict[str, float | None], want: dict[str, float | None]) -> bool:
    return all(
        (got[f] is None and want[f] is None)
        or (got[f] is not None and want[f] is not None and got[f] == pytest.approx(want[f]))
        for f in FEATURES
    )


@pytest.mark.parametrize("view", list(BARS_US))
def test_every_row_is_the_bar_of_the_trades_before_it(view: str) -> None:
    rows, trades, bar_us = _engine_rows()[view], _trades(), BARS_US[view]
    assert len(rows) > 10
    assert (rows.event_us % bar_us == 0).all()  # rows at bar ends only
    for row in rows.itertuples(index=False):
        got, want = _values(pd.Series(row._asdict())), _bar(int(row.event_us), bar_us)
        assert _same(got, want), (view, row.event_us, got, want)
    # Every bar with a trade that has closed (its end is at or before the last trade's bar
    # boundary, which the watermark has passed) has its row.
    traded = set(((trades.event_us // bar_us) + 1) * bar_us)
    closed = {b for b in traded if b <= int(trades.event_us.max()) // bar_us * bar_us}
    assert closed <= set(rows.event_us), sorted(closed - set(rows.event_us))[:5]


@pytest.mark.parametrize("view", list(BARS_US))
def test_as_of_any_time_the_latest_row_is_the_last_ended_bar(view: str) -> None:
    rows, bar_us = _engine_rows()[view], BARS_US[view]
    first, last = int(rows.event_us.iloc[0]), int(rows.event_us.iloc[-1])
    rng = np.random.default_rng(11)
    for t in sorted(rng.integers(first, last, size=300).tolist()):
        latest = rows[rows.event_us <= t].iloc[-1]  # a point-in-time read as of t
        want = _bar(t // bar_us * bar_us, bar_us)
        assert _same(_values(latest), want), (view, t, int(latest.event_us), want)


def test_rollups_keep_their_tables_for_a_bounded_time() -> None:
    by_name = {v.name: v for v in _definitions().views}
    retention = {name: by_name[name].source.retention for name in BARS_US}
    assert all(r is not None for r in retention.values())
    assert retention["ohlcv_1m"] < retention["ohlcv_5m"] < retention["ohlcv_1h"]  # type: ignore[operator]

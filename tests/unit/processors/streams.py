"""Trade streams for the state machine's tests, and a runner folding emissions as stores do."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd

from processors.core import (
    BAR_COLUMNS,
    ROLLING_COLUMNS,
    Emission,
    MachineOptions,
    RowBlock,
    SymbolState,
    TradeBatch,
    process_trades,
)

T0 = 1_700_000_000_000_000 - 1_700_000_000_000_000 % 60_000_000  # a minute boundary, in us


def in_order_trades(rng: np.random.Generator, n: int, *, symbol: str = "AAA") -> pd.DataFrame:
    """``n`` trades in event-time order: repeated times, quiet minutes, zero sizes, jumps."""
    gaps = rng.choice([0, 1, 250, 20_000, 900_000, 4_000_000, 95_000_000], size=n,
                      p=[0.1, 0.05, 0.2, 0.3, 0.25, 0.08, 0.02])  # fmt: skip
    event_us = T0 + np.cumsum(gaps)
    price = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    size = rng.choice([0, 1, 100, 200, 500, 37], size=n, p=[0.02, 0.1, 0.5, 0.2, 0.08, 0.1])
    return pd.DataFrame(
        {
            "symbol": symbol,
            "event_us": event_us.astype(np.int64),
            "price": np.round(price, 4),
            "size": size.astype(np.float64),
            "kafka_ms": (event_us // 1000 + rng.integers(0, 3, n)).astype(np.int64),
            "partition": 0,
            "offset": np.arange(n, dtype=np.int64),
            "trade_id": [f"{symbol}-{i}" for i in range(n)],
        }
    )


def disordered(rng: np.random.Generator, trades: pd.DataFrame) -> pd.DataFrame:
    """The same trades with local swaps, far-late trades and duplicated ids mixed in."""
    df = trades.copy()
    n = len(df)
    order = np.arange(n, dtype=float) + rng.normal(0, 3, n)  # local disorder
    late = rng.random(n) < 0.01
    order[late] += rng.integers(50, 2000, late.sum())  # arrive much later in the log
    df = df.iloc[np.argsort(order, kind="stable")].reset_index(drop=True)
    dups = df.sample(frac=0.03, random_state=int(rng.integers(1 << 30)))
    positions = rng.integers(0, n, len(dups))
    parts = [df]
    for (_, row), pos in zip(dups.iterrows(), positions, strict=True):
        parts.append(pd.DataFrame([row]).assign(_pos=pos + 0.5))
    df = pd.concat([df.assign(_pos=np.arange(n, dtype=float)), *parts[1:]])
    df = df.sort_values("_pos", kind="stable").drop(columns="_pos").reset_index(drop=True)
    df["offset"] = np.arange(len(df), dtype=np.int64)
    return df


def batch_of(df: pd.DataFrame) -> TradeBatch:
    return TradeBatch.of(
        df["event_us"].to_numpy(),
        df["price"].to_numpy(),
        df["size"].to_numpy(),
        list(df["trade_id"]),
        kafka_ms=df["kafka_ms"].to_numpy(),
        partition=df["partition"].to_numpy(),
        offset=df["offset"].to_numpy(),
    )


def run_split(
    df: pd.DataFrame, cuts: Sequence[int] = (), options: MachineOptions | None = None
) -> tuple[Emission, SymbolState]:
    """Run one symbol's trades through fresh state in consecutive calls split at ``cuts``.

    The state goes through its byte form between calls, as it does in Spark's state store.
    """
    symbol = str(df["symbol"].iloc[0])
    state = SymbolState(symbol)
    total = Emission()
    bounds = [0, *sorted(cuts), len(df)]
    for a, b in itertools.pairwise(bounds):
        state = SymbolState.from_bytes(state.to_bytes())
        total.extend(process_trades(state, batch_of(df.iloc[a:b]), options), a)
    return total, state


def frame(block: RowBlock, names: tuple[str, ...], symbol: str) -> pd.DataFrame:
    out = pd.DataFrame({n: block.columns[n] for n in names})
    out.insert(0, "symbol", symbol)
    return out


def collapsed_frames(emission: Emission, symbol: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    bars, rolling = emission.collapsed()
    return frame(bars, BAR_COLUMNS, symbol), frame(rolling, ROLLING_COLUMNS, symbol)

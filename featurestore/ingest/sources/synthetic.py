"""A synthetic market: many symbols, realistic price paths and sizes, deterministic by seed.

Model, per symbol: a geometric Brownian motion with its own volatility (15-80 % a year) and a
small drift, plus rare jumps (probability ``jump_probability`` per trade, size normal with
``jump_sigma``), priced on a one-cent tick. Trades arrive as one Poisson process of ``rate``
events per second of event time, spread over the symbols with Zipf-like popularity (a few
symbols trade much more than the rest). Sizes are lognormal; most trades are round lots of 100.

Given the same :class:`MarketConfig` (seed and start included), the stream is identical: every
random draw comes from one ``numpy`` generator, in fixed-size blocks.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from featurestore.errors import ConfigurationError
from featurestore.ingest.sources.arrivals import BLOCK
from featurestore.ingest.sources.arrivals import Arrivals
from featurestore.ingest.sources.arrivals import GeneratorBounds
from featurestore.ingest.sources.base import RecordKind
from featurestore.ingest.sources.base import SourceRecord

__all__ = ["RARE_JUMPS", "MarketConfig", "SyntheticMarket"]

RARE_JUMPS = 1e-5
"""A jump probability at which natural jumps are rare (1 in 100,000 trades): the demo market and
``make run``'s feed, so that injected anomalies are what stands out."""

_TRADING_YEAR_S = 252 * 6.5 * 3600
_EXCHANGES = ("Q", "P", "Z", "K", "N", "D", "J", "Y", "B", "X")
_EXCHANGE_WEIGHTS = (0.22, 0.2, 0.15, 0.1, 0.08, 0.1, 0.05, 0.05, 0.03, 0.02)
_LETTERS = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketConfig(GeneratorBounds):
    """Parameters of a synthetic market (an event is a trade)."""

    symbols: int = 50
    """Number of instruments."""
    rate: float = 1000.0
    """Mean trades per second of event time, over all symbols."""
    jump_probability: float = 0.0005
    jump_sigma: float = 0.03
    round_lot_share: float = 0.7
    """Share of trades whose size is a multiple of 100."""

    def check(self) -> None:
        """Raise ConfigurationError when the parameters cannot describe a market."""
        self.check_start("synthetic market")
        if self.symbols < 1 or self.rate <= 0:
            raise ConfigurationError("synthetic market: needs >= 1 symbol and a rate > 0")


class SyntheticMarket:
    """An iterable of synthetic trades (as source records, validated like any other source)."""

    kind: RecordKind = "trade"

    def __init__(self, config: MarketConfig) -> None:
        """Set up the symbols and their parameters from the seed."""
        config.check()
        self.config = config
        self.name = f"synthetic-seed{config.seed}"
        rng = np.random.default_rng(config.seed)
        self._rng = rng
        self.symbols = self._tickers(rng, config.symbols)
        n = config.symbols
        self._vol = rng.uniform(0.15, 0.8, n)
        self._drift = rng.normal(0.05, 0.1, n)
        self._price0 = np.exp(rng.normal(math.log(60.0), 0.9, n))
        popularity = 1.0 / np.arange(1, n + 1) ** 0.8
        self._weights = popularity / popularity.sum()

    @staticmethod
    def _tickers(rng: np.random.Generator, n: int) -> list[str]:
        names: list[str] = []
        seen: set[str] = set()
        while len(names) < n:
            length = int(rng.integers(2, 5))
            name = "".join(rng.choice(_LETTERS, length))
            if name not in seen:
                seen.add(name)
                names.append(name)
        return names

    def __iter__(self) -> Iterator[SourceRecord]:
        """Yield trades until the count or the duration is reached (forever without either)."""
        cfg = self.config
        rng = np.random.default_rng([cfg.seed, 1])
        prices = self._price0.copy()
        last_t = np.zeros(len(self.symbols))
        arrivals = Arrivals(rng, cfg.rate, cfg)
        for block in arrivals.blocks():
            who = rng.choice(len(self.symbols), BLOCK, p=self._weights)
            shocks = rng.standard_normal(BLOCK)
            jumps = np.where(
                rng.random(BLOCK) < cfg.jump_probability,
                rng.normal(0.0, cfg.jump_sigma, BLOCK),
                0.0,
            )
            sizes = np.maximum(1, np.rint(rng.lognormal(4.6, 1.1, BLOCK))).astype(np.int64)
            lots = rng.random(BLOCK) < cfg.round_lot_share
            sizes = np.where(lots, np.maximum(100, np.rint(sizes / 100) * 100), sizes)
            venues = rng.choice(len(_EXCHANGES), BLOCK, p=_EXCHANGE_WEIGHTS)
            for i in block:
                t = arrivals.t
                s = int(who[i])
                dt = max(t - last_t[s], 1e-6) / _TRADING_YEAR_S
                vol = self._vol[s]
                prices[s] *= math.exp(
                    (self._drift[s] - 0.5 * vol * vol) * dt
                    + vol * math.sqrt(dt) * float(shocks[i])
                    + float(jumps[i])
                )
                last_t[s] = t
                yield SourceRecord(
                    self.name,
                    arrivals.emitted,
                    {
                        "symbol": self.symbols[s],
                        "price": max(0.01, round(float(prices[s]), 2)),
                        "size": int(sizes[i]),
                        "event_time": arrivals.event_time(),
                        "exchange": _EXCHANGES[int(venues[i])],
                        "conditions": (),
                        "trade_id": f"{self.name}:{arrivals.emitted}",
                        "currency": "USD",
                    },
                )

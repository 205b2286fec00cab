"""One symbol's trades in log order, as numpy columns (the state machine's input)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["MINUTE_US", "TradeBatch"]

MINUTE_US = 60_000_000
"""One minute in microseconds: event times are integer microseconds since the epoch."""

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class TradeBatch:
    """Trades of one symbol, sorted by (partition, offset): the order of the event log.

    Times are integers (event time in microseconds, Kafka record time in milliseconds) so that
    every comparison is exact.
    """

    event_us: I64
    price: F64
    size: F64
    kafka_ms: I64
    """Kafka record timestamp: when the trade entered the log."""
    partition: I64
    offset: I64
    trade_id: Sequence[str]
    """Trade ids, for deduplication."""

    def __post_init__(self) -> None:
        n = len(self.event_us)
        lengths = {
            len(self.price),
            len(self.size),
            len(self.kafka_ms),
            len(self.partition),
            len(self.offset),
            len(self.trade_id),
        }
        if lengths != {n}:
            raise ValueError(f"trade batch columns have different lengths: {lengths | {n}}")

    def __len__(self) -> int:
        return len(self.event_us)

    @classmethod
    def of(
        cls,
        event_us: Sequence[int] | I64,
        price: Sequence[float] | F64,
        size: Sequence[float] | F64,
        trade_id: Sequence[str],
        *,
        kafka_ms: Sequence[int] | I64 | None = None,
        partition: Sequence[int] | I64 | None = None,
        offset: Sequence[int] | I64 | None = None,
    ) -> TradeBatch:
        """Build a batch from sequences; offsets default to 0..n-1, Kafka time to event time."""
        ev = np.asarray(event_us, dtype=np.int64)
        n = len(ev)
        return cls(
            event_us=ev,
            price=np.asarray(price, dtype=np.float64),
            size=np.asarray(size, dtype=np.float64),
            kafka_ms=np.asarray(ev // 1000 if kafka_ms is None else kafka_ms, dtype=np.int64),
            partition=np.asarray(np.zeros(n) if partition is None else partition, dtype=np.int64),
            offset=np.asarray(np.arange(n) if offset is None else offset, dtype=np.int64),
            trade_id=list(trade_id),
        )

    def slice(self, start: int, stop: int) -> TradeBatch:
        """Trades ``start..stop`` (a view, no copy of the numeric columns)."""
        return TradeBatch(
            self.event_us[start:stop],
            self.price[start:stop],
            self.size[start:stop],
            self.kafka_ms[start:stop],
            self.partition[start:stop],
            self.offset[start:stop],
            self.trade_id[start:stop],
        )

    def take(self, index: npt.NDArray[np.intp]) -> TradeBatch:
        """The trades at ``index`` (in that order)."""
        ids = self.trade_id
        return TradeBatch(
            self.event_us[index],
            self.price[index],
            self.size[index],
            self.kafka_ms[index],
            self.partition[index],
            self.offset[index],
            [ids[i] for i in index.tolist()],
        )

    @staticmethod
    def concat(batches: Sequence[TradeBatch]) -> TradeBatch:
        """One batch of several, in order."""
        ids: list[str] = []
        for batch in batches:
            ids.extend(batch.trade_id)
        return TradeBatch(
            np.concatenate([b.event_us for b in batches]),
            np.concatenate([b.price for b in batches]),
            np.concatenate([b.size for b in batches]),
            np.concatenate([b.kafka_ms for b in batches]),
            np.concatenate([b.partition for b in batches]),
            np.concatenate([b.offset for b in batches]),
            ids,
        )

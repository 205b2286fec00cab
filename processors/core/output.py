"""What the state machine emits: blocks of feature rows as numpy columns, and counters.

Rows may be emitted more than once for the same (symbol, event time) within and across calls
(a row at time t is re-emitted when another trade at t, or a late trade of the same minute,
arrives). A later emission always includes everything an earlier one did, and its
``created_ms`` is never smaller, so the stores keep the last one: the upsert of the offline
table and the write-if-newer of Redis both do. :meth:`Emission.collapsed` applies the same rule
in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from processors.core.rolling import ROLLING_FEATURES

__all__ = ["BAR_COLUMNS", "BAR_FEATURES", "LINEAGE", "ROLLING_COLUMNS", "Emission", "RowBlock"]

BAR_FEATURES = (
    "open",
    "high",
    "low",
    "close",
    "volume",
    "trade_count",
    "avg_trade_size",
    "vwap",
)
LINEAGE = ("partition", "first_offset", "last_offset")
BAR_COLUMNS = ("event_us", "created_ms", *BAR_FEATURES, *LINEAGE)
"""Columns of bars_1m rows; NaN is null; ``trade_count`` and the lineage are int64."""
ROLLING_COLUMNS = ("event_us", "created_ms", *ROLLING_FEATURES, *LINEAGE)
"""Columns of rolling_1m rows; NaN is null."""

_INT_COLUMNS = frozenset({"event_us", "created_ms", "trade_count", *LINEAGE})

Array = npt.NDArray[np.generic]


@dataclass(frozen=True)
class RowBlock:
    """Rows of one view as equal-length numpy columns."""

    columns: Mapping[str, Array]

    def __len__(self) -> int:
        return len(self.columns["event_us"])

    @classmethod
    def empty(cls, names: Iterable[str]) -> RowBlock:
        """A block without rows."""
        return cls({n: np.empty(0, np.int64 if n in _INT_COLUMNS else np.float64) for n in names})

    @classmethod
    def from_rows(cls, names: tuple[str, ...], rows: list[tuple[float | int, ...]]) -> RowBlock:
        """A block from row tuples in ``names`` order."""
        if not rows:
            return cls.empty(names)
        cols = list(zip(*rows, strict=True))
        return cls(
            {
                name: np.asarray(col, np.int64 if name in _INT_COLUMNS else np.float64)
                for name, col in zip(names, cols, strict=True)
            }
        )

    @staticmethod
    def concat(blocks: list[RowBlock], names: tuple[str, ...]) -> RowBlock:
        """One block of several, in order."""
        blocks = [b for b in blocks if len(b)]
        if not blocks:
            return RowBlock.empty(names)
        if len(blocks) == 1:
            return blocks[0]
        return RowBlock({n: np.concatenate([b.columns[n] for b in blocks]) for n in names})

    def last_per_time(self) -> RowBlock:
        """Keep the last emission of each event time, ordered by event time."""
        times = self.columns["event_us"]
        if len(times) <= 1:
            return self
        # np.unique on the reversed column finds each time's last occurrence.
        _, rev_index = np.unique(times[::-1], return_index=True)
        keep = len(times) - 1 - rev_index
        return RowBlock({n: c[keep] for n, c in self.columns.items()})

    def take(self, index: npt.NDArray[np.intp]) -> RowBlock:
        """The rows at ``index``."""
        return RowBlock({n: c[index] for n, c in self.columns.items()})


@dataclass
class Emission:
    """What one call of the state machine produced for one symbol."""

    bars: list[RowBlock] = field(default_factory=list)
    rolling: list[RowBlock] = field(default_factory=list)
    late: list[int] = field(default_factory=list)
    """Indices (into the call's batch) of trades for minutes already closed: dead-lettered."""
    duplicates: int = 0
    """Trades dropped because their id was already seen in an open minute."""

    def bar_rows(self) -> RowBlock:
        """Every bars_1m row emitted, in emission order."""
        return RowBlock.concat(self.bars, BAR_COLUMNS)

    def rolling_rows(self) -> RowBlock:
        """Every rolling_1m row emitted, in emission order."""
        return RowBlock.concat(self.rolling, ROLLING_COLUMNS)

    def collapsed(self) -> tuple[RowBlock, RowBlock]:
        """(bars, rolling) with only the last emission per event time, by event time."""
        return self.bar_rows().last_per_time(), self.rolling_rows().last_per_time()

    def extend(self, other: Emission, index_offset: int = 0) -> None:
        """Append another emission (of the trades that followed, ``index_offset`` later)."""
        self.bars.extend(other.bars)
        self.rolling.extend(other.rolling)
        self.late.extend(i + index_offset for i in other.late)
        self.duplicates += other.duplicates

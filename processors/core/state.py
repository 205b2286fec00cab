"""What the state machine remembers per symbol between calls, and its serialized form.

The states of a Kafka partition's symbols are stored with the feature rows they led to, in one
PostgreSQL transaction (:mod:`processors.state_table`), so that a restarted job continues exactly
where the last committed micro-batch left it.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from processors.core.trades import MINUTE_US

__all__ = ["HISTORY_BARS", "NO_OPEN_MINUTE", "ClosedBar", "IdChunk", "MinuteAgg", "SymbolState"]

HISTORY_BARS = 20
"""Closed bars kept per symbol: the longest rolling window (sma_20, volume_ratio)."""

_FORMAT = 2
_SEP = "\x1f"
"""Joins a minute's trade ids: one string encodes and decodes ~10x faster than a JSON list."""


NO_OPEN_MINUTE = 2**62
"""The oldest open minute of a symbol without open minutes: every stored id chunk is older."""


class IdChunk(NamedTuple):
    """Trade ids of one open minute of a symbol, stored apart from the state they dedupe.

    A minute's ids are most of a state's size (~80,000 per partition at 5,000 events/s), so
    they are journaled: each save adds the ids seen since the last one, and a chunk is deleted
    once its minute has closed (``processors/state_table.py``).
    """

    symbol: str
    minute_us: int
    ids: list[str]


def _pack_ids(ids: Collection[str]) -> str | list[str]:
    joined = _SEP.join(ids)
    if ids and joined.count(_SEP) == len(ids) - 1:
        return joined
    return list(ids)  # none, or an id holds the separator itself


def _unpack_ids(packed: str | list[str]) -> set[str]:
    return set(packed) if isinstance(packed, list) else set(packed.split(_SEP))


@dataclass
class MinuteAgg:
    """The running bar of one minute that is still open (not yet past the watermark).

    ``open`` is the price of the trade with the earliest event time (ties: first in the log),
    ``close`` of the latest (ties: last in the log).
    """

    start_us: int
    open: float = 0.0
    open_us: int = 0
    high: float = 0.0
    low: float = 0.0
    close: float = 0.0
    close_us: int = 0
    volume: float = 0.0
    notional: float = 0.0
    """Sum of price * size, for the VWAP."""
    count: int = 0
    kafka_ms: int = 0
    """Latest Kafka record time of the trades included (the rows' created_timestamp)."""
    partition: int = 0
    first_offset: int = 0
    last_offset: int = 0
    ids: set[str] = field(default_factory=set)
    """Trade ids seen in this minute, for deduplication until it closes."""
    unsaved: list[str] = field(default_factory=list, compare=False, repr=False)
    """Ids added since they were last taken for storage (:meth:`SymbolState.take_new_ids`)."""

    @property
    def end_us(self) -> int:
        """The minute's end (exclusive)."""
        return self.start_us + MINUTE_US

    def add(
        self,
        event_us: int,
        price: float,
        size: float,
        kafka_ms: int,
        partition: int,
        offset: int,
        trade_id: str,
    ) -> None:
        """Fold one trade in (the reference path; the vectorized path must agree with it)."""
        if self.count == 0:
            self.open = self.high = self.low = self.close = price
            self.open_us = self.close_us = event_us
            self.kafka_ms = kafka_ms
            self.first_offset = self.last_offset = offset
        else:
            if event_us < self.open_us:
                self.open, self.open_us = price, event_us
            if event_us >= self.close_us:
                self.close, self.close_us = price, event_us
            self.high = max(self.high, price)
            self.low = min(self.low, price)
            self.kafka_ms = max(self.kafka_ms, kafka_ms)
            self.first_offset = min(self.first_offset, offset)
            self.last_offset = max(self.last_offset, offset)
        self.volume += size
        self.notional += price * size
        self.count += 1
        self.partition = partition
        self.ids.add(trade_id)
        self.unsaved.append(trade_id)

    def closed(self) -> ClosedBar:
        """The complete bar, as the rolling features need it."""
        return ClosedBar(self.end_us, self.open, self.close, self.volume, self.notional)


@dataclass(frozen=True)
class ClosedBar:
    """A closed minute, reduced to what the rolling features use."""

    end_us: int
    open: float
    close: float
    volume: float
    notional: float


@dataclass
class SymbolState:
    """Everything the state machine knows about one symbol."""

    symbol: str
    max_event_us: int | None = None
    """The latest event time seen: the symbol's own event-time watermark is this - lateness."""
    minutes: dict[int, MinuteAgg] = field(default_factory=dict)
    """Open minutes by start time."""
    history: list[ClosedBar] = field(default_factory=list)
    """The last :data:`HISTORY_BARS` closed bars, oldest first."""

    def to_bytes(self) -> bytes:
        """A versioned JSON form (floats round-trip exactly)."""
        return json.dumps(self.to_doc(), separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> SymbolState:
        """Read what :meth:`to_bytes` wrote."""
        return cls.from_doc(json.loads(data))

    def to_doc(self, *, ids: bool = True) -> dict[str, Any]:
        """The state as JSON-ready values (floats round-trip exactly through JSON).

        Args:
            ids: include the open minutes' trade ids (False: they are stored as
                :class:`IdChunk` journal entries, see :meth:`take_new_ids`).
        """
        return {
            "format": _FORMAT,
            "symbol": self.symbol,
            "max_event_us": self.max_event_us,
            "minutes": [
                [
                    m.start_us, m.open, m.open_us, m.high, m.low, m.close, m.close_us,
                    m.volume, m.notional, m.count, m.kafka_ms, m.partition, m.first_offset,
                    m.last_offset, *([_pack_ids(m.ids)] if ids else []),
                ]
                for m in self.minutes.values()
            ],
            "history": [[b.end_us, b.open, b.close, b.volume, b.notional] for b in self.history],
        }  # fmt: skip

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> SymbolState:
        """Read what :meth:`to_doc` returned."""
        if doc.get("format") != _FORMAT:
            raise ValueError(f"unknown processor state format {doc.get('format')!r}")
        minutes = {}
        for row in doc["minutes"]:
            agg = MinuteAgg(*row[:14])
            if len(row) > 14:  # ids inside the doc: journal them at the next save too
                agg.ids = _unpack_ids(row[14])
                agg.unsaved = list(agg.ids)
            minutes[agg.start_us] = agg
        return cls(
            symbol=doc["symbol"],
            max_event_us=doc["max_event_us"],
            minutes=minutes,
            history=[ClosedBar(*row) for row in doc["history"]],
        )

    def take_new_ids(self) -> list[IdChunk]:
        """The ids added to open minutes since the last call, one chunk per minute."""
        chunks = []
        for m in self.minutes.values():
            if m.unsaved:
                chunks.append(IdChunk(self.symbol, m.start_us, m.unsaved))
                m.unsaved = []
        return chunks

    def restore_ids(self, chunk: IdChunk) -> None:
        """Add a stored chunk's ids to its minute (a chunk of a closed minute is ignored)."""
        minute = self.minutes.get(chunk.minute_us)
        if minute is not None:
            minute.ids.update(chunk.ids)

    def oldest_open_minute(self) -> int:
        """Start of the oldest open minute; :data:`NO_OPEN_MINUTE` when none is open."""
        return min(self.minutes, default=NO_OPEN_MINUTE)

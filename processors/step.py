"""One Kafka partition's step: its next records and its state in; rows, dead letters and state out.

Trades are keyed by symbol, so a Kafka partition holds a fixed set of symbols and a symbol's
trades are in one partition, in log order. The step is the whole of the per-partition work,
free of I/O: skip what the state has already applied (a replayed batch), decode each record
with its writer schema, feed each symbol's trades to its state machine in log order, and
collect the rows the stores must hold. The stream and the backfill both run it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from featurestore.events import AvroDeserializer
from processors.core import IdChunk, MachineOptions, SymbolState, process_trades
from processors.decode import DeadLetter, KafkaRecords, TradeDecoder, decode_records
from processors.tables import SymbolRows, bars_table, latest_rows, rolling_table

__all__ = ["PartitionState", "StepResult", "run_step"]

_FORMAT = 1


@dataclass
class PartitionState:
    """Everything a processor knows about one Kafka partition of its topic."""

    next_offset: int = 0
    """The first offset not applied yet: records before it are skipped."""
    symbols: dict[str, SymbolState] = field(default_factory=dict)
    """The state machine of each symbol seen in the partition."""

    def to_bytes(self) -> bytes:
        """A versioned JSON form of the symbols' states without their trade ids.

        The ids go to the journal: :meth:`take_new_ids` after each step, :meth:`from_bytes`
        takes them back. Floats round-trip exactly.
        """
        doc = {
            "format": _FORMAT,
            "symbols": [s.to_doc(ids=False) for s in self.symbols.values()],
        }
        return json.dumps(doc, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(
        cls, next_offset: int, data: bytes | None, ids: Iterable[IdChunk] = ()
    ) -> PartitionState:
        """Read what :meth:`to_bytes` wrote (``None``: no symbol yet) and the stored id chunks.

        Chunks of minutes that are no longer open are ignored.
        """
        if not data:
            return cls(next_offset)
        doc: dict[str, Any] = json.loads(data)
        if doc.get("format") != _FORMAT:
            raise ValueError(f"unknown partition state format {doc.get('format')!r}")
        states = (SymbolState.from_doc(d) for d in doc["symbols"])
        state = cls(next_offset, {s.symbol: s for s in states})
        for chunk in ids:
            symbol = state.symbols.get(chunk.symbol)
            if symbol is not None:
                symbol.restore_ids(chunk)
        return state

    def take_new_ids(self) -> list[IdChunk]:
        """Trade ids added to open minutes since the last call: the journal's new chunks."""
        return [chunk for s in self.symbols.values() for chunk in s.take_new_ids()]

    def id_horizons(self) -> dict[str, int]:
        """Per symbol, its oldest open minute: its stored chunks of earlier minutes can go."""
        return {name: s.oldest_open_minute() for name, s in self.symbols.items()}


@dataclass(frozen=True)
class StepResult:
    """What one step wrote down for the stores."""

    bars: pa.Table
    """bars_1m rows, one per (symbol, event time): the last emission of each."""
    rolling: pa.Table
    """rolling_1m rows, likewise."""
    latest_bars: pa.Table
    """Each symbol's latest bars_1m row of this step (what Redis gets)."""
    latest_rolling: pa.Table
    """Each symbol's latest rolling_1m row of this step."""
    dead: list[DeadLetter]
    records: int
    """Records applied (after the skip)."""
    skipped: int
    """Records before the state's next offset: already applied."""
    duplicates: int
    late: int
    decode_s: float
    machine_s: float


def run_step(
    records: KafkaRecords,
    state: PartitionState,
    decoder: TradeDecoder | AvroDeserializer,
    *,
    topic: str,
    join_key: str = "symbol",
    lateness_us: int = 5_000_000,
) -> StepResult:
    """Apply one partition's next records (in log order) to its state, in place.

    Raises:
        ValueError: the records span several partitions.
    """
    began = time.perf_counter()
    if len(records) and records.partition[0] != records.partition[-1]:
        raise ValueError("a step takes the records of one Kafka partition")
    first = int(np.searchsorted(records.offset, state.next_offset, side="left"))
    fresh = records.slice(first)
    decoded = decode_records(fresh, decoder)
    decoded_at = time.perf_counter()
    options = MachineOptions(lateness_us=lateness_us)
    dead = list(decoded.dead)
    bars: list[SymbolRows] = []
    rolling: list[SymbolRows] = []
    late = duplicates = 0
    for symbol, index in decoded.by_symbol().items():
        symbol_state = state.symbols.get(symbol)
        if symbol_state is None:
            symbol_state = state.symbols[symbol] = SymbolState(symbol)
        emission = process_trades(symbol_state, decoded.trades.take(index), options)
        bar_rows, rolling_rows = emission.collapsed()
        bars.append((symbol, bar_rows))
        rolling.append((symbol, rolling_rows))
        dead += [decoded.dead_letter(int(index[i]), "late") for i in emission.late]
        late += len(emission.late)
        duplicates += emission.duplicates
    if len(fresh):
        state.next_offset = int(fresh.offset[-1]) + 1
    dead.sort(key=lambda d: d.offset)
    return StepResult(
        bars=bars_table(bars, join_key=join_key, topic=topic),
        rolling=rolling_table(rolling, join_key=join_key, topic=topic),
        latest_bars=bars_table(latest_rows(bars), join_key=join_key, topic=topic),
        latest_rolling=rolling_table(latest_rows(rolling), join_key=join_key, topic=topic),
        dead=dead,
        records=len(fresh),
        skipped=first,
        duplicates=duplicates,
        late=late,
        decode_s=decoded_at - began,
        machine_s=time.perf_counter() - decoded_at,
    )

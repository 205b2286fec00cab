"""One call for one symbol: decode its records, advance its state, return rows and dead letters.

This is the whole of the per-key work, shared by the stream (inside Spark's
``applyInPandasWithState``) and the backfill (inside ``applyInPandas``), so that both run the
same code on the same log and produce the same rows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

from processors.core import MachineOptions, SymbolState, process_trades
from processors.decode import decode_records, decoder_for
from processors.tables import bars_table, dead_letter_table, rolling_table

__all__ = ["GroupJob", "GroupResult"]


@dataclass(frozen=True)
class GroupResult:
    """What one symbol's records of one batch became."""

    symbol: str | None
    bars: pa.Table
    rolling: pa.Table
    dead: pa.Table
    records: int
    duplicates: int
    late: int
    decode_s: float
    machine_s: float


@dataclass(frozen=True)
class GroupJob:
    """The per-symbol work, with what it needs to know (picklable: it travels to Spark workers)."""

    registry_url: str
    join_key: str = "symbol"
    lateness_us: int = 5_000_000

    def run(
        self, key: bytes | None, records: pd.DataFrame, state: SymbolState | None
    ) -> tuple[GroupResult, SymbolState | None]:
        """Process ``records`` (columns topic, key, value, partition, offset, timestamp_ms)."""
        began = time.perf_counter()
        symbol = bytes(key).decode("utf-8", "replace") if key is not None else None
        decoded = decode_records(records, decoder_for(self.registry_url), symbol)
        decoded_at = time.perf_counter()
        topic = str(records["topic"].iloc[0]) if len(records) else ""
        dead = list(decoded.dead)
        if symbol is None:
            state = None
            empty = process_trades(SymbolState(""), decoded.trades.slice(0, 0))
            bars, rolling = empty.collapsed()
            late = duplicates = 0
        else:
            state = state or SymbolState(symbol)
            emission = process_trades(
                state, decoded.trades, MachineOptions(lateness_us=self.lateness_us)
            )
            bars, rolling = emission.collapsed()
            dead += [decoded.dead_letter(i, "late") for i in emission.late]
            late, duplicates = len(emission.late), emission.duplicates
        done = time.perf_counter()
        name = symbol or ""
        result = GroupResult(
            symbol=symbol,
            bars=bars_table(bars, symbol=name, join_key=self.join_key, topic=topic),
            rolling=rolling_table(rolling, symbol=name, join_key=self.join_key, topic=topic),
            dead=dead_letter_table(dead),
            records=len(records),
            duplicates=duplicates,
            late=late,
            decode_s=decoded_at - began,
            machine_s=done - decoded_at,
        )
        return result, state

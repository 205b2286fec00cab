"""The per-symbol state machine: one symbol's trades in log order in, feature rows out.

Rules (see ``processors/README.md`` for the why):

- Minutes are ``[start, start + 60 s)`` of event time. A minute **closes** when the symbol's
  own latest event time reaches ``minute end + lateness``; nothing else (processing time,
  other symbols, batch boundaries) closes it.
- Every trade that moves the latest event time to ``t`` (or repeats it) emits a ``bars_1m``
  row at ``event_timestamp = t``: the bar of the minute holding ``t``, over that minute's trades
  seen so far. A later trade at the same ``t`` re-emits the row with itself included.
- A trade older than the latest time, in a minute still open, is folded into its minute; if
  that is the minute of the latest time, the row at the latest time is re-emitted with it,
  otherwise its effect shows in the minute's closing row.
- When a minute closes it emits a ``bars_1m`` row at its last microsecond (``end - 1 us``),
  holding the complete bar (a trade at exactly that microsecond has the same row key and the
  same meaning: the bar as of that instant), and a ``rolling_1m`` row at its end.
- A trade whose minute has closed is **late**: dropped from the features and dead-lettered.
  A trade whose id was seen in a minute still open is a **duplicate**: dropped and counted.
- ``created_timestamp`` is the latest Kafka record time of the trades a row includes; lineage
  is the partition and the first and last offsets of those trades.

Outputs depend only on the log: processing trades ``[0, n)`` in one call or in any split into
consecutive calls, carrying the state, gives the same rows once re-emissions are collapsed (the
last emission of a row key wins, which is what the stores keep). Most trades arrive in order;
they take a vectorized path (numpy cumulative operations per minute), and a trade out of order
or repeated takes the reference path, trade by trade. Both give bit-identical results: sums are
accumulated in the same order.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from processors.core.output import BAR_COLUMNS, ROLLING_COLUMNS, Emission, RowBlock
from processors.core.rolling import rolling_features
from processors.core.state import HISTORY_BARS, MinuteAgg, SymbolState
from processors.core.trades import MINUTE_US, TradeBatch

__all__ = ["MachineOptions", "process_trades"]

_SLOW_RUN = 256
"""Trades taken by the reference path after an out-of-order or repeated trade."""


@dataclass(frozen=True)
class MachineOptions:
    """Settings of the state machine."""

    lateness_us: int = 5_000_000
    """How long after its end a minute stays open for late trades (event time)."""
    vectorized: bool = True
    """Use the numpy path for in-order trades (False: the reference path only, for tests)."""

    def __post_init__(self) -> None:
        if self.lateness_us < 0:
            raise ValueError("lateness must be >= 0")


def _minute(event_us: int) -> int:
    return event_us - event_us % MINUTE_US


def _bar_row(agg: MinuteAgg, event_us: int) -> tuple[float | int, ...]:
    volume = agg.volume
    return (
        event_us, agg.kafka_ms, agg.open, agg.high, agg.low, agg.close, volume, agg.count,
        volume / agg.count, agg.notional / volume if volume > 0 else math.nan,
        agg.partition, agg.first_offset, agg.last_offset,
    )  # fmt: skip


def _close_minutes(
    state: SymbolState, options: MachineOptions, bars: list[tuple[float | int, ...]],
    rolling: list[tuple[float | int, ...]],
) -> None:  # fmt: skip
    """Close every open minute the latest event time has passed, oldest first."""
    assert state.max_event_us is not None
    horizon = state.max_event_us - options.lateness_us
    for start in sorted(state.minutes):
        if start + MINUTE_US > horizon:
            break
        agg = state.minutes.pop(start)
        bars.append(_bar_row(agg, agg.end_us - 1))
        state.history.append(agg.closed())
        del state.history[:-HISTORY_BARS]
        rolling.append(
            (agg.end_us, agg.kafka_ms, *rolling_features(state.history),
             agg.partition, agg.first_offset, agg.last_offset)
        )  # fmt: skip


def _reference(state: SymbolState, trades: TradeBatch, options: MachineOptions) -> Emission:
    """Trade by trade: the definition the vectorized path must agree with."""
    out = Emission()
    bars: list[tuple[float | int, ...]] = []
    rolling: list[tuple[float | int, ...]] = []
    for i in range(len(trades)):
        trade_id = trades.trade_id[i]
        if any(trade_id in m.ids for m in state.minutes.values()):
            out.duplicates += 1
            continue
        event_us = int(trades.event_us[i])
        start = _minute(event_us)
        latest = state.max_event_us
        if latest is not None and start + MINUTE_US + options.lateness_us <= latest:
            out.late.append(i)
            continue
        agg = state.minutes.get(start)
        if agg is None:
            agg = state.minutes[start] = MinuteAgg(start)
        agg.add(
            event_us,
            float(trades.price[i]),
            float(trades.size[i]),
            int(trades.kafka_ms[i]),
            int(trades.partition[i]),
            int(trades.offset[i]),
            trade_id,
        )
        if latest is None or event_us > latest:
            state.max_event_us = latest = event_us
            _close_minutes(state, options, bars, rolling)
        if start == _minute(latest):
            bars.append(_bar_row(agg, latest))
    out.bars.append(RowBlock.from_rows(BAR_COLUMNS, bars))
    out.rolling.append(RowBlock.from_rows(ROLLING_COLUMNS, rolling))
    return out


def _in_order_prefix(state: SymbolState, trades: TradeBatch) -> int:
    """How many leading trades are in event-time order and new (the vectorized path's domain)."""
    ts = trades.event_us
    n = len(ts)
    if n == 0:
        return 0
    floor = np.iinfo(np.int64).min if state.max_event_us is None else state.max_event_us
    running = np.maximum.accumulate(np.concatenate(([floor], ts)))[:-1]
    behind = np.flatnonzero(ts < running)
    end = int(behind[0]) if len(behind) else n
    ids = trades.trade_id
    open_ids = [m.ids for m in state.minutes.values()]
    head = ids[:end]
    if len(set(head)) == end and all(s.isdisjoint(head) for s in open_ids):
        return end
    seen: set[str] = set()
    for i, trade_id in enumerate(head):
        if trade_id in seen or any(trade_id in s for s in open_ids):
            return i
        seen.add(trade_id)
    return end


def _accumulate(
    ufunc: np.ufunc, initial: float | int, values: npt.NDArray[Any]
) -> npt.NDArray[Any]:
    """Running ``ufunc`` of ``values`` starting from ``initial`` (same order as a loop)."""
    result: npt.NDArray[Any] = ufunc.accumulate(np.concatenate(([initial], values)))[1:]
    return result


def _vectorized(state: SymbolState, trades: TradeBatch, options: MachineOptions) -> Emission:
    """Trades in event-time order with new ids: cumulative numpy operations per minute."""
    out = Emission()
    ts = trades.event_us
    n = len(ts)
    starts = ts - ts % MINUTE_US
    cuts = np.flatnonzero(starts[1:] != starts[:-1]) + 1
    bounds = [0, *cuts.tolist(), n]
    # Rows at the last trade of each run of equal event times.
    row_at = np.ones(n, dtype=bool)
    row_at[:-1] = ts[1:] != ts[:-1]
    blocks: list[dict[str, npt.NDArray[np.generic]]] = []
    for a, b in itertools.pairwise(bounds):
        start = int(starts[a])
        agg = state.minutes.get(start)
        if agg is None:
            agg = state.minutes[start] = MinuteAgg(start)
            first = a
            # The first trade opens the bar; the rest accumulate onto it, as agg.add does.
            agg.add(int(ts[a]), float(trades.price[a]), float(trades.size[a]),
                    int(trades.kafka_ms[a]), int(trades.partition[a]), int(trades.offset[a]),
                    trades.trade_id[a])  # fmt: skip
            head = {
                "volume": np.array([agg.volume]), "notional": np.array([agg.notional]),
                "high": np.array([agg.high]), "low": np.array([agg.low]),
                "kafka_ms": np.array([agg.kafka_ms]), "first": np.array([agg.first_offset]),
                "last": np.array([agg.last_offset]), "count": np.array([1]),
            }  # fmt: skip
            a += 1
        else:
            first = a
            head = None
        price = trades.price[a:b]
        size = trades.size[a:b]
        volume = _accumulate(np.add, agg.volume, size)
        notional = _accumulate(np.add, agg.notional, price * size)
        high = _accumulate(np.maximum, agg.high, price)
        low = _accumulate(np.minimum, agg.low, price)
        kafka_ms = _accumulate(np.maximum, agg.kafka_ms, trades.kafka_ms[a:b])
        first_off = _accumulate(np.minimum, agg.first_offset, trades.offset[a:b])
        last_off = _accumulate(np.maximum, agg.last_offset, trades.offset[a:b])
        count = agg.count + np.arange(1, b - a + 1, dtype=np.int64)
        if head is not None:
            volume = np.concatenate((head["volume"], volume))
            notional = np.concatenate((head["notional"], notional))
            high = np.concatenate((head["high"], high))
            low = np.concatenate((head["low"], low))
            kafka_ms = np.concatenate((head["kafka_ms"], kafka_ms))
            first_off = np.concatenate((head["first"], first_off))
            last_off = np.concatenate((head["last"], last_off))
            count = np.concatenate((head["count"], count))
        close = trades.price[first:b]
        if b > a:
            agg.close, agg.close_us = float(trades.price[b - 1]), int(ts[b - 1])
            agg.volume, agg.notional = float(volume[-1]), float(notional[-1])
            agg.high, agg.low = float(high[-1]), float(low[-1])
            agg.kafka_ms, agg.count = int(kafka_ms[-1]), int(count[-1])
            agg.first_offset, agg.last_offset = int(first_off[-1]), int(last_off[-1])
            agg.partition = int(trades.partition[b - 1])
            agg.ids.update(trades.trade_id[a:b])
            agg.unsaved.extend(trades.trade_id[a:b])
        keep = row_at[first:b]
        with np.errstate(divide="ignore", invalid="ignore"):
            vwap = np.where(volume > 0, notional / volume, np.nan)
        blocks.append(
            {
                "event_us": ts[first:b][keep],
                "created_ms": kafka_ms[keep],
                "open": np.full(int(keep.sum()), agg.open),
                "high": high[keep],
                "low": low[keep],
                "close": close[keep],
                "volume": volume[keep],
                "trade_count": count[keep],
                "avg_trade_size": (volume / count)[keep],
                "vwap": vwap[keep],
                "partition": trades.partition[first:b][keep],
                "first_offset": first_off[keep],
                "last_offset": last_off[keep],
            }
        )
    out.bars.extend(RowBlock(block) for block in blocks)
    state.max_event_us = int(ts[-1])
    closing_bars: list[tuple[float | int, ...]] = []
    closing_rolling: list[tuple[float | int, ...]] = []
    _close_minutes(state, options, closing_bars, closing_rolling)
    out.bars.append(RowBlock.from_rows(BAR_COLUMNS, closing_bars))
    out.rolling.append(RowBlock.from_rows(ROLLING_COLUMNS, closing_rolling))
    return out


def process_trades(
    state: SymbolState, trades: TradeBatch, options: MachineOptions | None = None
) -> Emission:
    """Feed one symbol's next trades (in log order) to its state; returns what they emit.

    ``state`` is updated in place. Callers concatenate emissions of consecutive calls; see
    :meth:`Emission.collapsed` for the rows the stores end up holding.
    """
    options = options or MachineOptions()
    out = Emission()
    done = 0
    n = len(trades)
    while done < n:
        rest = trades.slice(done, n)
        prefix = _in_order_prefix(state, rest) if options.vectorized else 0
        if prefix:
            out.extend(_vectorized(state, rest.slice(0, prefix), options), done)
            done += prefix
            continue
        step = n - done if not options.vectorized else min(_SLOW_RUN, n - done)
        out.extend(_reference(state, rest.slice(0, step), options), done)
        done += step
    return out

"""One Kafka partition's step: several symbols, any split into batches, replays skipped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from featurestore.events import AvroSerializer, InMemorySchemaStore, Trade
from processors.core import IdChunk, MinuteAgg, SymbolState, process_trades
from processors.decode import KafkaRecords, TradeDecoder
from processors.step import PartitionState, StepResult, run_step
from processors.tables import bars_table
from tests.unit.processors.streams import batch_of, disordered, in_order_trades

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _partition(rng: np.random.Generator) -> tuple[pd.DataFrame, KafkaRecords, TradeDecoder]:
    """Three symbols' trades interleaved in one partition (one disordered, with duplicates)."""
    frames = [
        in_order_trades(rng, 700, symbol="AAA"),
        disordered(rng, in_order_trades(rng, 600, symbol="BBB")),
        in_order_trades(rng, 500, symbol="CCC"),
    ]
    # Interleave the symbols at random, each keeping its own order.
    keys = [np.sort(rng.random(len(f))) for f in frames]
    df = pd.concat([f.assign(_key=k) for f, k in zip(frames, keys, strict=True)])
    df = df.sort_values("_key", kind="stable").drop(columns="_key").reset_index(drop=True)
    df["offset"] = np.arange(len(df), dtype=np.int64)
    df["partition"] = 3
    store = InMemorySchemaStore()
    serializer = AvroSerializer.for_topic(store, "t", Trade)
    values = []
    for r in df.itertuples():
        when = EPOCH + timedelta(microseconds=int(r.event_us))
        trade = Trade(str(r.symbol), float(r.price), int(r.size), when, "Q", str(r.trade_id))
        values.append(serializer.encode(trade))
    records = KafkaRecords.of(
        [s.encode() for s in df["symbol"]], values, df["partition"], df["offset"], df["kafka_ms"]
    )
    return df, records, TradeDecoder(store)


class _Storage:
    """The stored form of a partition's state, as ``processors.state_table`` keeps it."""

    def __init__(self) -> None:
        self.journal: list[IdChunk] = []
        self.saved_chunks = 0

    def round_trip(self, state: PartitionState) -> PartitionState:
        """Save (the state without ids; new id chunks added, closed minutes' dropped), load."""
        blob = state.to_bytes()
        new = state.take_new_ids()
        self.saved_chunks += len(new)
        horizons = state.id_horizons()
        kept = [c for c in self.journal if c.minute_us >= horizons.get(c.symbol, -1)]
        self.journal = kept + new
        return PartitionState.from_bytes(state.next_offset, blob, self.journal)


def _steps(
    records: KafkaRecords, decoder: TradeDecoder, cuts: list[int]
) -> tuple[list[StepResult], PartitionState]:
    state = PartitionState()
    storage = _Storage()
    results = []
    for a, b in zip([0, *cuts], [*cuts, len(records)], strict=True):
        # The state goes through its stored form between steps, as it does in PostgreSQL.
        state = storage.round_trip(state)
        results.append(run_step(records.slice(a, b), state, decoder, topic="t"))
    return results, state


def _stored(tables: list[pa.Table]) -> pd.DataFrame:
    """What an upsert keeps: the last row written per (symbol, event time)."""
    frame = pa.concat_tables(tables).to_pandas()
    frame = frame.drop_duplicates(["symbol", "event_timestamp"], keep="last")
    return frame.sort_values(["symbol", "event_timestamp"]).reset_index(drop=True)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_any_split_of_a_partition_stores_the_same_rows_as_one_step(seed: int) -> None:
    rng = np.random.default_rng(seed)
    df, records, decoder = _partition(rng)
    whole, state = _steps(records, decoder, [])
    cuts = sorted(rng.choice(np.arange(1, len(records)), size=12, replace=False).tolist())
    split, split_state = _steps(records, decoder, cuts)
    for view in ("bars", "rolling"):
        one = _stored([getattr(r, view) for r in whole])
        many = _stored([getattr(r, view) for r in split])
        pd.testing.assert_frame_equal(one, many)
    assert split_state == state
    assert state.next_offset == len(records)
    assert sum(r.late for r in split) == whole[0].late > 0
    assert sum(r.duplicates for r in split) == whole[0].duplicates > 0
    for table in (r.bars for r in split):
        # pyarrow 25's CSV writer (COPY's input) garbles a table whose first chunk is empty.
        assert all(len(chunk) for chunk in table.column(0).chunks)
    late = sorted(d.offset for r in split for d in r.dead)
    assert late == sorted(d.offset for d in whole[0].dead)
    assert all(d.reason == "late" and d.partition == 3 for d in whole[0].dead)
    # Each symbol's rows are its own state machine's, as if it were alone in the partition.
    for symbol, trades in df.groupby("symbol", sort=False):
        emission = process_trades(SymbolState(symbol), batch_of(trades))
        bars, _ = emission.collapsed()
        want = bars_table([(symbol, bars)], join_key="symbol", topic="t").to_pandas()
        got = _stored([whole[0].bars])
        got = got[got["symbol"] == symbol].reset_index(drop=True)
        pd.testing.assert_frame_equal(got, want)


def test_a_replayed_batch_is_skipped_and_changes_nothing() -> None:
    _, records, decoder = _partition(np.random.default_rng(7))
    whole, state = _steps(records, decoder, [])
    storage = _Storage()  # one step from a fresh state: every id is new in this state
    state = storage.round_trip(state)
    before = storage.round_trip(state)
    replay = run_step(records.slice(400, 1200), state, decoder, topic="t")
    assert replay.skipped == 800 and replay.records == 0
    assert replay.bars.num_rows == replay.rolling.num_rows == 0 and replay.dead == []
    assert state == before and state.next_offset == len(records)
    # A batch that overlaps what was applied: only its new records count.
    first, state = _steps(records.slice(0, 900), decoder, [])
    overlap = run_step(records.slice(400, len(records)), state, decoder, topic="t")
    assert overlap.skipped == 500 and overlap.records == len(records) - 900
    for view in ("bars", "rolling"):
        pd.testing.assert_frame_equal(
            _stored([getattr(r, view) for r in whole]),
            _stored([getattr(first[0], view), getattr(overlap, view)]),
        )


def test_latest_rows_are_each_symbols_last_row() -> None:
    _, records, decoder = _partition(np.random.default_rng(11))
    (result,), _ = _steps(records, decoder, [])
    bars = result.bars.to_pandas()
    latest = result.latest_bars.to_pandas().set_index("symbol")
    for symbol, rows in bars.groupby("symbol"):
        assert latest.loc[symbol, "event_timestamp"] == rows["event_timestamp"].max()
    assert len(latest) == 3


def test_a_step_takes_one_partition() -> None:
    records = KafkaRecords.of([b"A", b"A"], [b"x", b"y"], [0, 1], [0, 0], [0, 0])
    with pytest.raises(ValueError, match="one Kafka partition"):
        run_step(records, PartitionState(), TradeDecoder(InMemorySchemaStore()), topic="t")


@pytest.mark.parametrize(
    "ids", [set(), {""}, {"a"}, {"a", "b", ""}, {"x\x1fy", "z"}, {f"id-{i}" for i in range(500)}]
)
def test_trade_ids_survive_the_stored_form(ids: set[str]) -> None:
    state = SymbolState("X", 10)
    agg = MinuteAgg(0)
    for trade_id in ids:
        agg.add(10, 1.0, 1.0, 0, 0, 0, trade_id)
    state.minutes[0] = agg
    stored = PartitionState(5, {"X": state})
    back = _Storage().round_trip(stored)
    assert back.symbols["X"].minutes[0].ids == ids


def test_the_journal_holds_only_open_minutes_and_each_id_once() -> None:
    """Each save stores only the ids seen since the last; closed minutes' chunks are dropped."""
    _, records, decoder = _partition(np.random.default_rng(5))
    state, storage = PartitionState(), _Storage()
    for a in range(0, len(records), 150):
        state = storage.round_trip(state)
        run_step(records.slice(a, a + 150), state, decoder, topic="t")
    state = storage.round_trip(state)
    stored = [i for chunk in storage.journal for i in chunk.ids]
    assert len(stored) == len(set(stored))  # no id journaled twice
    open_ids = {i for s in state.symbols.values() for m in s.minutes.values() for i in m.ids}
    assert set(stored) == open_ids and open_ids
    assert all(c.minute_us in state.symbols[c.symbol].minutes for c in storage.journal)
    assert storage.saved_chunks > len(storage.journal)  # closed minutes' chunks went away

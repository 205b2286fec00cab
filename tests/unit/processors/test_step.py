"""One Kafka partition's step: several symbols, any split into batches, replays skipped.

The state goes through its stored form between steps (the state blob plus the journal of
open tiles' events, as ``processors.state_table`` keeps them), so a restart anywhere gives
the same rows as one uninterrupted step.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from featurestore.definitions import market_definitions
from featurestore.events import AvroSerializer, InMemorySchemaStore, Trade
from processors.decode import EventDecoder, KafkaRecords
from processors.features import EventChunk
from processors.step import PartitionState, StepResult, run_step
from processors.views import MaterializedViews

T0 = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
VIEWS = MaterializedViews.resolve(market_definitions("p", source_topic="t"), "t")


def _partition(rng: np.random.Generator, n: int = 1500) -> tuple[KafkaRecords, EventDecoder]:
    """Three symbols interleaved in one partition, with disorder, duplicates and late trades."""
    store = InMemorySchemaStore()
    serializer = AvroSerializer.for_topic(store, "t", Trade)
    symbols = rng.choice(["AAA", "BBB", "CCC"], n)
    at = np.cumsum(rng.integers(0, 2_000_000, n))  # ~1 trade a second: ~25 minutes
    at = at - rng.integers(0, 3_000_000, n) * (rng.random(n) < 0.05)  # some out of order
    at = at - 90_000_000 * (rng.random(n) < 0.01)  # some late
    values, keys, ids = [], [], []
    for i in range(n):
        trade_id = f"id-{i}" if rng.random() > 0.03 else f"id-{max(i - 1, 0)}"
        trade = Trade(
            str(symbols[i]), float(100 + rng.normal()), int(rng.integers(1, 500)),
            T0 + timedelta(microseconds=int(at[i])), "Q", trade_id,
        )  # fmt: skip
        values.append(serializer.encode(trade))
        keys.append(str(symbols[i]).encode())
        ids.append(trade_id)
    kafka_ms = (T0.timestamp() * 1000 + np.arange(n) * 500).astype(np.int64)
    records = KafkaRecords.of(keys, values, [3] * n, np.arange(n), kafka_ms)
    return records, EventDecoder(store, VIEWS.plan.source)


class _Storage:
    """The stored form of a view's state: the blob, and the journal of open tiles."""

    def __init__(self) -> None:
        self.journal: list[EventChunk] = []

    def round_trip(self, state: PartitionState) -> PartitionState:
        blob = state.to_bytes()
        new = state.take_new_events()
        horizons = state.horizons()
        kept = [c for c in self.journal if c.tile_us >= horizons.get(c.entity, -1)]
        self.journal = kept + new
        return PartitionState.from_bytes(state.next_offset, blob, self.journal)


def _run(
    records: KafkaRecords, states: dict[str, PartitionState], decoder: EventDecoder
) -> StepResult:
    return run_step(records, states, decoder, VIEWS.plans, VIEWS.plan.source)


def _steps(
    records: KafkaRecords, decoder: EventDecoder, cuts: list[int]
) -> tuple[list[StepResult], dict[str, PartitionState]]:
    states = {name: PartitionState() for name in VIEWS.plans}
    storage = {name: _Storage() for name in VIEWS.plans}
    results = []
    for a, b in zip([0, *cuts], [*cuts, len(records)], strict=True):
        states = {name: storage[name].round_trip(s) for name, s in states.items()}
        results.append(_run(records.slice(a, b), states, decoder))
    return results, states


def _stored(results: list[StepResult], view: str) -> pd.DataFrame:
    """What an upsert keeps: the last row written per (symbol, event time)."""
    return _stored_tables([r.rows[view] for r in results])


def _stored_tables(tables: list[pa.Table]) -> pd.DataFrame:
    frame = pa.concat_tables(tables).to_pandas()
    frame = frame.drop_duplicates(["symbol", "event_timestamp"], keep="last")
    return frame.sort_values(["symbol", "event_timestamp"]).reset_index(drop=True)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_any_split_of_a_partition_stores_the_same_rows_as_one_step(seed: int) -> None:
    rng = np.random.default_rng(seed)
    records, decoder = _partition(rng)
    whole, state = _steps(records, decoder, [])
    cuts = sorted(rng.choice(np.arange(1, len(records)), 12, replace=False).tolist())
    split, split_state = _steps(records, decoder, cuts)
    assert whole[0].late > 0 and whole[0].duplicates > 0
    for view in ("bars_1m", "rolling_1m"):
        expected = _stored(whole, view)
        assert len(expected) > 50
        pd.testing.assert_frame_equal(_stored(split, view), expected)  # bit for bit
    assert sum(r.late for r in split) == whole[0].late
    assert sum(r.duplicates for r in split) == whole[0].duplicates
    assert [d.offset for r in split for d in r.dead] == [d.offset for d in whole[0].dead]
    for name in VIEWS.plans:
        assert split_state[name].next_offset == state[name].next_offset == len(records)


def test_a_replayed_batch_is_skipped() -> None:
    records, decoder = _partition(np.random.default_rng(7), n=300)
    states = {name: PartitionState() for name in VIEWS.plans}
    first = _run(records.slice(0, 200), states, decoder)
    again = _run(records.slice(100, 300), states, decoder)
    assert (first.records, first.skipped) == (200, 0)
    assert (again.records, again.skipped) == (100, 100)
    assert {s.next_offset for s in states.values()} == {300}


def test_a_view_added_later_catches_up_and_sends_no_dead_letter_twice() -> None:
    records, decoder = _partition(np.random.default_rng(5), n=900)
    whole = _run(records, {name: PartitionState() for name in VIEWS.plans}, decoder)
    # rolling_1m ran alone up to offset 600; bars_1m is added then and starts from 0.
    states = {"rolling_1m": PartitionState()}
    alone = run_step(
        records.slice(0, 600), states, decoder, {"rolling_1m": VIEWS.plans["rolling_1m"]},
        VIEWS.plan.source,
    )  # fmt: skip
    states["bars_1m"] = PartitionState()
    later = _run(records, states, decoder)
    for name in VIEWS.plans:
        got = [r.rows[name] for r in ([alone, later] if name == "rolling_1m" else [later])]
        pd.testing.assert_frame_equal(_stored_tables(got), _stored_tables([whole.rows[name]]))
    resent = [d.offset for d in later.dead]
    assert all(o >= 600 for o in resent)
    assert sorted([d.offset for d in alone.dead] + resent) == [d.offset for d in whole.dead]


def test_latest_rows_are_each_symbols_newest() -> None:
    records, decoder = _partition(np.random.default_rng(9), n=400)
    result = _run(records, {name: PartitionState() for name in VIEWS.plans}, decoder)
    bars = result.rows["bars_1m"].to_pandas()
    latest = result.latest["bars_1m"].to_pandas().set_index("symbol")
    newest = bars.groupby("symbol")["event_timestamp"].max()
    assert (latest["event_timestamp"] == newest.reindex(latest.index)).all()

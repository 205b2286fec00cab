"""One Kafka partition's step: several symbols, any split into batches, replays skipped.

The state goes through its stored form between steps (the state blob plus the journal of
open tiles' events, as ``processors.state_table`` keeps them), so a restart anywhere gives
the same rows as one uninterrupted step.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from featurestore.definitions import AggFunction
from featurestore.definitions import Aggregation
from featurestore.definitions import Definitions
from featurestore.definitions import Feature
from featurestore.definitions import FeatureView
from featurestore.definitions import market_definitions
from featurestore.definitions import stream_definitions
from featurestore.errors import ConfigurationError
from featurestore.events import AvroSerializer
from featurestore.events import InMemorySchemaStore
from featurestore.events import Metric
from featurestore.events import Trade
from processors.decode import EventDecoder
from processors.decode import KafkaRecords
from processors.features import EventChunk
from processors.step import PartitionState
from processors.step import StepResult
from processors.step import held_by
from processors.step import run_step
from processors.views import MaterializedViews

T0 = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)


def _market(project: str, topic: str) -> Definitions:
    """The market's two first views (the rollups chained from ohlcv_1m have their own tests)."""
    defs = market_definitions(project, source_topic=topic)
    return replace(defs, views=tuple(v for v in defs.views if v.name in ("bars_1m", "rolling_1m")))


VIEWS = MaterializedViews.resolve(_market("p", "t"), "t")


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
        self.dropped: set[str] = set()
        """Entities whose horizon was given while the state no longer held them."""

    def round_trip(self, state: PartitionState) -> PartitionState:
        blob = state.to_bytes()
        new = state.take_new_events()
        horizons = state.horizons()
        self.dropped |= set(horizons) - set(state.features.entities)
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


def _stored_tables(tables: list[pa.Table], key: str = "symbol") -> pd.DataFrame:
    frame = pa.concat_tables(tables).to_pandas()
    frame = frame.drop_duplicates([key, "event_timestamp"], keep="last")
    return frame.sort_values([key, "event_timestamp"]).reset_index(drop=True)


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


def _with_chained_views() -> MaterializedViews:
    """The market views, 5-minute rows chained from rolling_1m and 15-minute ones from those."""
    defs = _market("p", "t")
    rolling = defs.view("rolling_1m")
    assert rolling.stream is not None
    minute = timedelta(minutes=1)

    def chained(name: str, upstream: str, aggs: list[Aggregation]) -> FeatureView:
        assert rolling.stream is not None
        return replace(
            rolling,
            name=name,
            features=tuple(Feature(a.name) for a in aggs),
            stream=replace(rolling.stream, aggregations=tuple(aggs), derived={}, upstream=upstream),
        )

    five = chained(
        "rolling_5m_of_1m",
        "rolling_1m",
        [
            Aggregation("volume_1m", AggFunction.SUM, 5 * minute, 5 * minute, "volume_5m"),
            Aggregation("close_1m", AggFunction.LAST, 5 * minute, 5 * minute, "close_5m"),
            Aggregation("vwap_1m", AggFunction.MAX, 10 * minute, 5 * minute, "max_vwap_10m"),
        ],
    )
    fifteen = chained(
        "rolling_15m_of_5m",
        "rolling_5m_of_1m",
        [Aggregation("volume_5m", AggFunction.SUM, 15 * minute, 15 * minute, "volume_15m")],
    )
    # Listed before their upstream views: the step orders them.
    return MaterializedViews.resolve(replace(defs, views=(fifteen, five, *defs.views)), "t")


CHAINED = _with_chained_views()


def _chained_steps(
    records: KafkaRecords, decoder: EventDecoder, cuts: list[int], plans: list[str]
) -> tuple[list[StepResult], dict[str, PartitionState]]:
    """Steps over ``records`` cut at ``cuts``; from step k on the views ``plans[k]`` run.

    Each step reads from the oldest of the views' next offsets, as the processor does: a view
    added later starts from offset 0 while the others skip what they applied.
    """
    states: dict[str, PartitionState] = {}
    storage = {name: _Storage() for name in CHAINED.plans}
    results = []
    for k, b in enumerate([*cuts, len(records)]):
        for name in plans[k].split(","):
            states.setdefault(name, PartitionState())
        states = {name: storage[name].round_trip(s) for name, s in states.items()}
        a = min(s.next_offset for s in states.values())
        chosen = {n: c for n, c in CHAINED.plans.items() if n in states}
        results.append(run_step(records.slice(a, b), states, decoder, chosen, CHAINED.plan.source))
    return results, states


def test_chained_views_catch_up_then_read_their_upstream_s_rows_and_equal_one_step() -> None:
    rng = np.random.default_rng(11)
    records, decoder = _partition(rng, n=2400)
    everything = ",".join(CHAINED.plans)
    whole, _ = _chained_steps(records, decoder, [], [everything])
    cuts = sorted(rng.choice(np.arange(1, len(records)), 10, replace=False).tolist())
    # The 5-minute view starts with the others; the 15-minute one is added after 4 steps and
    # computes its upstream stages itself until it has caught up.
    first = "bars_1m,rolling_1m,rolling_5m_of_1m"
    split, states = _chained_steps(
        records, decoder, cuts, [first] * 4 + [everything] * (len(cuts) - 3)
    )
    for view in CHAINED.plans:
        expected = _stored(whole, view)
        assert len(expected) > 5, view
        got = _stored_tables([r.rows[view] for r in split if view in r.rows])
        pd.testing.assert_frame_equal(got, expected)  # bit for bit
    assert states["rolling_5m_of_1m"].shared and states["rolling_15m_of_5m"].shared
    assert not states["rolling_5m_of_1m"].features.entities  # its upstream's copy is gone
    five = _stored(whole, "rolling_5m_of_1m")
    assert (five["event_timestamp"].dt.minute % 5 == 0).all()


def test_a_chained_view_whose_upstream_fell_behind_is_refused() -> None:
    records, decoder = _partition(np.random.default_rng(3), n=300)
    states = {name: PartitionState() for name in CHAINED.plans}
    run_step(records.slice(0, 200), states, decoder, CHAINED.plans, CHAINED.plan.source)
    states["rolling_5m_of_1m"] = PartitionState()  # reset alone
    with pytest.raises(ConfigurationError, match=r"feature view 'rolling_15m_of_5m' reads the"):
        run_step(records.slice(200, 300), states, decoder, CHAINED.plans, CHAINED.plan.source)


def _quiet_market(minutes: int) -> tuple[KafkaRecords, EventDecoder, MaterializedViews]:
    """Two symbols trading every 20 s for ``minutes``, read by every view of the market."""
    views = MaterializedViews.resolve(market_definitions("p", source_topic="t"), "t")
    store = InMemorySchemaStore()
    serializer = AvroSerializer.for_topic(store, "t", Trade)
    values, keys = [], []
    n = minutes * 3 * 2
    for i in range(n):
        symbol = "AAA" if i % 2 == 0 else "BBB"
        at = T0 + timedelta(seconds=10 * i)
        values.append(serializer.encode(Trade(symbol, 100.0 + i % 7, 10, at, "Q", f"id-{i}")))
        keys.append(symbol.encode())
    kafka_ms = (T0.timestamp() * 1000 + np.arange(n) * 10_000).astype(np.int64)
    records = KafkaRecords.of(keys, values, [0] * n, np.arange(n), kafka_ms)
    return records, EventDecoder(store, views.plan.source), views


def test_the_tiles_a_partition_holds_stop_growing_past_the_longest_reach() -> None:
    records, decoder, views = _quiet_market(minutes=180)
    reach = max(s.horizon_us + s.source.lateness_us for c in views.plans.values() for s in c.stages)
    assert reach // 60_000_000 == 121  # ohlcv_1h: its hour, the hour before, a tile (+ 5 s)
    states = {name: PartitionState() for name in views.plans}
    held = {}
    for minute in range(10, 181, 10):  # a batch per 10 minutes: 60 records
        batch = records.slice((minute - 10) * 6, minute * 6)
        run_step(batch, states, decoder, views.plans, views.plan.source)
        held[minute] = held_by(states)
    assert held[60].tiles < held[120].tiles  # the windows fill up to the reach ...
    assert held[130] == held[150] == held[180]  # ... then old tiles go as new ones come


def test_an_entity_gone_quiet_is_forgotten_and_the_rows_are_those_of_one_step() -> None:
    """Host a reports for 10 minutes, host b for three hours: past the longest reach a is gone.

    The metric views read no ``prev()``, so an entity whose tiles have all been pruned holds
    nothing: it is dropped, its horizon is given once (its journaled events go), and the rows
    stored over steps with round trips are those of one step over the whole log.
    """
    views = MaterializedViews.resolve(stream_definitions({"metrics": "m"}, "p"), "m")
    assert not any(stage.source.prevs for c in views.plans.values() for stage in c.stages)
    store = InMemorySchemaStore()
    serializer = AvroSerializer.for_topic(store, "m", Metric)
    values, keys = [], []
    for i in range(180 * 3):  # b every 20 s; a too for the first 10 minutes
        for host in ("a", "b") if i < 30 else ("b",):
            at = T0 + timedelta(seconds=20 * i)
            values.append(serializer.encode(Metric(host, at, 0.5 + i % 7, f"{host}-{i}", "cpu")))
            keys.append(host.encode())
    n = len(values)
    kafka_ms = (T0.timestamp() * 1000 + np.arange(n) * 10_000).astype(np.int64)
    records = KafkaRecords.of(keys, values, [0] * n, np.arange(n), kafka_ms)
    decoder = EventDecoder(store, views.plan.source)

    whole = {name: PartitionState() for name in views.plans}
    one = run_step(records, whole, decoder, views.plans, views.plan.source)
    states = {name: PartitionState() for name in views.plans}
    storage = {name: _Storage() for name in views.plans}
    results = []
    for a in range(0, n, 60):
        states = {name: storage[name].round_trip(s) for name, s in states.items()}
        batch = records.slice(a, min(a + 60, n))
        results.append(run_step(batch, states, decoder, views.plans, views.plan.source))
    for name, plan in views.plans.items():
        for state in states[name].stages(len(plan.stages)):
            assert set(state.entities) <= {"b"}, name
        assert "a" in storage[name].dropped, name
        assert not [c for c in storage[name].journal if c.entity == "a"], name
        pd.testing.assert_frame_equal(  # bit for bit
            _stored_tables([r.rows[name] for r in results], "entity"),
            _stored_tables([one.rows[name]], "entity"),
        )

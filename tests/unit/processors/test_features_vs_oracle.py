"""The feature engine against the independent oracle, on random definitions and streams.

Each seed draws one source (tile, lateness, id field, computed columns with ``prev``,
``prev_nonnull``, ``when`` and ``coalesce``), a few running and non-running views with random
functions, windows and slides, and one partition's events with ties, disorder within and beyond
the lateness, repeated ids, quiet stretches and nulls, aggregations over "the last N tiles", and
sometimes views chained from a window-end view (and from that one in turn). The events go
through :func:`process_chain` in random consecutive batches, the state sometimes through its
bytes between them; the emissions, collapsed to the last one per ``(entity, event_us)`` as the
stores keep them, must be the oracle's rows.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace
from datetime import timedelta
from typing import Any
from typing import cast

import numpy as np
import pytest

from featurestore.definitions.columns import ROW_METADATA
from featurestore.definitions.model import AggFunction
from featurestore.definitions.model import Aggregation
from featurestore.definitions.model import FeatureView
from featurestore.definitions.model import StreamComputation
from featurestore.definitions.model import StreamSource
from processors.features import EventBatch
from processors.features import EventChunk
from processors.features import PartitionFeatureState
from processors.features import ViewChain
from processors.features import compile_chain
from processors.features import compile_topic
from processors.features import process_chain
from processors.features import running
from processors.features import stats
from tests.unit.processors.oracle import OracleResult
from tests.unit.processors.oracle import SourceEvent
from tests.unit.processors.oracle import compute_features
from tests.unit.processors.stream_views import stream_view
from tests.unit.processors.stream_views import trades_source

T0 = 1_700_000_000_000_000 - 1_700_000_000_000_000 % 3_600_000_000  # an hour boundary, in us
BEFORE_EPOCH = -5 * 3_600_000_000 + 17  # some streams start here: tiles floor below zero
KAFKA0_MS = 1_700_000_000_000
S = 1_000_000
SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)
PARTITION = 3
FIELDS = ("price", "size")
COLUMNS = {
    "notional": "price * size",
    "ret": "ln(price / prev(price))",
    "dsize": "size - prev(size)",
    "mix": "sqrt(notional) / (1 + abs(ret) * 100) - exp(-size / 10)",
    "big": "when(size >= 10, price)",
    "dbig": "big - prev_nonnull(big)",
    "lastsize": "prev_nonnull(size)",
    "signed": "when(price >= prev(price), size, -size)",
    "filled": "coalesce(big, prev_nonnull(big), price / 100)",
    "tick": "when(price > prev(price), 1, when(price < prev(price), -1))",
    "tick_size": "coalesce(tick, prev_nonnull(tick)) * size",  # registry/README's tick rule
}
DERIVED = (
    "{a} / {b}",
    "sqrt(abs({a})) - {b} * 2",
    "ln({a}) + exp(-abs({b}) / 1000)",
    "-({a} - {b}) / ({a} + 1)",
)
REL_TOL = 1e-9
ABS_TOL = 1e-12
SHOWN = 15

Value = float | None
Row = dict[str, Any]


@dataclass(frozen=True)
class Scenario:
    """One seed's definitions, events and batching."""

    views: list[FeatureView]
    events: list[SourceEvent]
    cuts: list[int]
    """Positions where a batch ends (the last is len(events))."""
    round_trips: set[int]
    """Batches before which the state goes through its bytes."""


# --- drawing ------------------------------------------------------------------------------------


def draw_source(rng: np.random.Generator, tile_us: int) -> StreamSource:
    lateness_us = int(rng.choice([0, tile_us // 4, tile_us, 2 * tile_us + 123]))
    return trades_source(
        timedelta(microseconds=lateness_us),
        "trade_id" if rng.random() < 0.7 else None,
        COLUMNS,
    )


def draw_view(
    rng: np.random.Generator, name: str, source: StreamSource, tile_us: int
) -> FeatureView:
    running = bool(rng.random() < 0.4)
    aggregations = []
    for j in range(int(rng.integers(1, 5))):
        function = AggFunction(rng.choice([f.value for f in AggFunction]))
        column = str(rng.choice([*FIELDS, *COLUMNS]))
        if running:
            slide = tile_us
            window = tile_us * int(rng.choice([1, 2, 3, 5]))
        else:
            slide = tile_us * int(rng.choice([1, 2, 3]))
            window = slide * int(rng.choice([1, 2, 3])) + tile_us * int(rng.random() < 0.2)
        last_tiles = None if running or rng.random() < 0.7 else int(rng.integers(1, 4))
        aggregations.append(
            Aggregation(
                column,
                function,
                timedelta(microseconds=window),
                timedelta(microseconds=slide),
                f"{function.value}_{column}_{j}",
                last_tiles,
            )
        )
    derived = {}
    for k in range(int(rng.integers(0, 3))):
        a, b = rng.choice([x.name for x in aggregations], size=2)
        derived[f"derived_{k}"] = str(rng.choice(DERIVED)).format(a=a, b=b)
    return stream_view(
        name,
        StreamComputation(
            source=source,
            aggregations=tuple(aggregations),
            derived=derived,
            tile=timedelta(microseconds=tile_us),
            running=running,
        ),
    )


def draw_events(rng: np.random.Generator, source: StreamSource, tile_us: int) -> list[SourceEvent]:
    """One partition's log: ties, disorder, repeated ids, quiet tiles, nulls."""
    lateness_us = source.watermark_delay // timedelta(microseconds=1)
    entities = [f"S{i:02d}" for i in range(int(rng.integers(1, 13)))]
    n = int(rng.integers(30, 120))
    base = T0 if rng.random() < 0.85 else BEFORE_EPOCH
    frontier = base + int(rng.integers(0, 3 * tile_us))
    offset = int(rng.integers(0, 10_000))
    price = {e: 100.0 * float(rng.uniform(0.5, 2)) for e in entities}
    events: list[SourceEvent] = []
    for i in range(n):
        entity = str(rng.choice(entities))
        gap = rng.choice(
            [0, int(rng.integers(0, tile_us // 5)), int(rng.integers(0, tile_us)),
             tile_us * int(rng.integers(1, 5)), tile_us * int(rng.integers(5, 40))],
            p=[0.15, 0.4, 0.3, 0.12, 0.03],
        )  # fmt: skip
        frontier += int(gap)
        mine = [e for e in events if e.entity == entity]
        kind = rng.random()
        if kind < 0.7 or not mine:
            at = frontier
        elif kind < 0.86:
            at = frontier - int(rng.integers(0, lateness_us + tile_us + 1))
        elif kind < 0.91:
            at = frontier - int(rng.integers(lateness_us + tile_us, lateness_us + 6 * tile_us))
        elif kind < 0.94:
            at = mine[int(rng.integers(0, len(mine)))].event_us
        else:  # on a tile boundary: in one window, not in the one before; W exactly there
            if rng.random() < 0.5:
                frontier += -frontier % tile_us
            at = frontier - frontier % tile_us
        event_id: str | None = f"t{i}"
        reuse = rng.random()
        if reuse < 0.12 and mine:
            earlier = mine[-int(rng.integers(1, min(len(mine), 4) + 1))]
            event_id = earlier.event_id
            if rng.random() < 0.5:
                at = earlier.event_us
        elif reuse < 0.14 and events:
            event_id = events[int(rng.integers(0, len(events)))].event_id
        price[entity] *= math.exp(float(rng.normal(0, 0.003)))
        p = round(price[entity], 4)
        u = rng.random()
        p = math.nan if u < 0.05 else 0.0 if u < 0.07 else p
        size = float(rng.choice([0, 1, 2, 5, 10, 100])) if rng.random() >= 0.05 else math.nan
        offset += int(rng.choice([1, 1, 1, 2]))
        events.append(
            SourceEvent(
                entity=entity,
                event_us=at,
                kafka_ms=KAFKA0_MS + (at - base) // 1000 + int(rng.integers(-3, 40)),
                partition=PARTITION,
                offset=offset,
                event_id=event_id if source.id_field is not None else None,
                fields={"price": p, "size": size},
            )
        )
    return events


def draw_chained(rng: np.random.Generator, name: str, upstream: FeatureView) -> FeatureView:
    """A window-end view over the rows of ``upstream`` (random functions of its features)."""
    stream = upstream.stream
    assert stream is not None
    tile_us = stream.tile // timedelta(microseconds=1)
    aggregations = []
    for j in range(int(rng.integers(1, 4))):
        function = AggFunction(rng.choice([f.value for f in AggFunction]))
        column = str(rng.choice(upstream.feature_names))
        slide = tile_us * int(rng.choice([1, 2, 5]))
        window = slide * int(rng.choice([1, 2, 3])) + tile_us * int(rng.random() < 0.2)
        aggregations.append(
            Aggregation(
                column, function, timedelta(microseconds=window), timedelta(microseconds=slide),
                f"{function.value}_{column}_{j}",
                None if rng.random() < 0.7 else int(rng.integers(1, 4)),
            )
        )  # fmt: skip
    derived = {}
    if rng.random() < 0.5:
        a, b = rng.choice([x.name for x in aggregations], size=2)
        derived["derived_0"] = str(rng.choice(DERIVED)).format(a=a, b=b)
    return stream_view(
        name,
        replace(
            stream, aggregations=tuple(aggregations), derived=derived, running=False,
            upstream=upstream.name,
        ),
    )  # fmt: skip


def draw(seed: int) -> Scenario:
    rng = np.random.default_rng(seed)
    tile_us = int(rng.choice([S, 60 * S]))
    source = draw_source(rng, tile_us)
    views = [draw_view(rng, f"v{k}", source, tile_us) for k in range(int(rng.integers(1, 4)))]
    # Chained views: over a window-end view, and sometimes over that chained view in turn.
    window_end = [v for v in views if v.stream is not None and not v.stream.running]
    if window_end and rng.random() < 0.6:
        views.append(draw_chained(rng, "c0", window_end[int(rng.integers(len(window_end)))]))
        if rng.random() < 0.4:
            views.append(draw_chained(rng, "c1", views[-1]))
    events = draw_events(rng, source, tile_us)
    styles = [1, int(rng.integers(2, 9)), len(events) // int(rng.integers(2, 5))]
    calls = styles[int(rng.integers(0, 3))]  # one batch, a few, or batches of 2-4 events
    inner = rng.choice(
        np.arange(1, len(events)), size=min(calls - 1, len(events) - 1), replace=False
    )
    cuts = [*sorted(int(c) for c in inner), len(events)]
    round_trips = {k for k in range(len(cuts)) if rng.random() < 0.5}
    return Scenario(views, events, cuts, round_trips)


# --- running the engine --------------------------------------------------------------------------


def batch_of(events: Sequence[SourceEvent], with_ids: bool) -> EventBatch:
    return EventBatch.of(
        entity=[e.entity for e in events],
        event_us=[e.event_us for e in events],
        kafka_ms=[e.kafka_ms for e in events],
        partition=[e.partition for e in events],
        offset=[e.offset for e in events],
        event_id=[str(e.event_id) for e in events] if with_ids else None,
        fields={f: [float(cast("float", e.fields[f])) for e in events] for f in FIELDS},
    )


@dataclass
class EngineResult:
    rows: dict[str, dict[tuple[str, int], Row]]
    """Per view, the last emission per (entity, event_us)."""
    late: list[int]
    duplicates: list[int]


def run_engine(scenario: Scenario) -> EngineResult:
    """The views computed from the events together; each chained one through its own chain."""
    direct = [v for v in scenario.views if v.stream is not None and v.stream.upstream is None]
    by_name = {v.name: v for v in scenario.views}
    runs = [ViewChain((compile_topic(direct, join_key="symbol"),))]
    runs += [
        compile_chain(v, by_name, "symbol") for v in scenario.views if v not in direct
    ]  # fmt: skip
    with_ids = scenario.views[0].stream is not None and scenario.views[0].stream.source.id_field
    states = [[PartitionFeatureState() for _ in run.stages] for run in runs]
    # As a processor stores them: a chain's first stage without its events, which go to a
    # journal after each step (its chunks of tiles no longer read deleted); the others whole.
    journals: list[list[EventChunk]] = [[] for _ in runs]
    for stages in states:
        stages[0].journal = True
    result = EngineResult({v.name: {} for v in scenario.views}, [], [])
    for k, (start, end) in enumerate(itertools.pairwise([0, *scenario.cuts])):
        batch = batch_of(scenario.events[start:end], bool(with_ids))
        for i, run in enumerate(runs):
            if k in scenario.round_trips:
                first = PartitionFeatureState.from_bytes(
                    states[i][0].to_bytes(events=False), journals[i]
                )
                first.journal = True
                rest = [PartitionFeatureState.from_bytes(s.to_bytes()) for s in states[i][1:]]
                states[i] = [first, *rest]
            out = process_chain(run, states[i], batch)
            new = states[i][0].take_new_events()
            horizons = states[i][0].horizons()  # deleted before the new chunks are added
            journals[i] = [c for c in journals[i] if c.tile_us >= horizons.get(c.entity, c.tile_us)]
            journals[i] += new
            if i == 0:
                result.late += [start + int(i) for i in out.late]
                result.duplicates += [start + int(i) for i in out.duplicates]
            for view, columns in out.rows.items():
                # The columns validation reserves are exactly those besides the features.
                assert set(columns) == {*ROW_METADATA, *by_name[view].feature_names}, view
                collapsed = result.rows.setdefault(view, {})
                names = list(columns)
                for r in range(len(columns["event_us"])):
                    row = {c: columns[c][r] for c in names}
                    collapsed[(str(row["entity"]), int(row["event_us"]))] = row
    return result


# --- comparing -----------------------------------------------------------------------------------


def as_value(x: Any) -> Value:
    if x is None:
        return None
    f = float(x)
    return None if math.isnan(f) else f


def same(a: Value, b: Value) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def when(us: int, tile_us: int) -> str:
    """An event time with its tile start, for messages."""
    return f"{us} (tile {us - us % tile_us} + {(us % tile_us) / 1e6:.6f}s)"


def describe(scenario: Scenario) -> str:
    lines = []
    first = scenario.views[0].stream
    assert first is not None
    src = first.source
    lines.append(
        f"tile {first.tile}, lateness {src.watermark_delay}, id field {src.id_field}, "
        f"{len(scenario.events)} events, batches end at {scenario.cuts}, "
        f"state round trips before batches {sorted(scenario.round_trips)}"
    )
    for view in scenario.views:
        stream = view.stream
        assert stream is not None
        aggs = ", ".join(
            f"{a.name}={a.function.value}({a.column}) w={a.window} s={a.slide}"
            for a in stream.aggregations
        )
        lines.append(
            f"  {view.name} running={stream.running}: {aggs}; derived {dict(stream.derived)}"
        )
    return "\n".join(lines)


def mismatches(scenario: Scenario, engine: EngineResult, oracle: OracleResult) -> list[str]:
    first = scenario.views[0].stream
    assert first is not None
    tile_us = first.tile // timedelta(microseconds=1)
    out: list[str] = []
    for what, got, want in (
        ("late", engine.late, oracle.late),
        ("duplicates", engine.duplicates, oracle.duplicates),
    ):
        if sorted(got) != list(want):
            for i in sorted(set(got) ^ set(want)):
                e = scenario.events[i]
                side = "engine only" if i in got else "oracle only"
                out.append(
                    f"{what}: event {i} ({side}): entity {e.entity} at {when(e.event_us, tile_us)} "
                    f"id {e.event_id}"
                )
    for view in scenario.views:
        got_rows = engine.rows.get(view.name, {})
        want_rows = oracle.rows[view.name]
        for key in sorted(set(want_rows) - set(got_rows)):
            out.append(
                f"{view.name}: row {key[0]} at {when(key[1], tile_us)} missing from the engine"
            )
        for key in sorted(set(got_rows) - set(want_rows)):
            out.append(f"{view.name}: row {key[0]} at {when(key[1], tile_us)} not in the oracle")
        for key in sorted(set(got_rows) & set(want_rows)):
            engine_row, oracle_row = got_rows[key], want_rows[key]
            expected: dict[str, Value] = {
                "created_ms": oracle_row.created_ms,
                "first_offset": oracle_row.first_offset,
                "last_offset": oracle_row.last_offset,
                **oracle_row.values,
            }
            for column, value in expected.items():
                if column not in engine_row:
                    out.append(f"{view.name}: the engine has no column {column}")
                    continue
                engine_value = as_value(engine_row[column])
                if not same(engine_value, value):
                    out.append(
                        f"{view.name}: {key[0]} at {when(key[1], tile_us)}: {column}: "
                        f"engine {engine_value!r}, oracle {value!r}"
                    )
    return out


SEEDS = range(24)


@functools.cache
def case(seed: int) -> tuple[Scenario, OracleResult]:
    """A seed's scenario and the oracle's answer (drawn once per session)."""
    scenario = draw(seed)
    return scenario, compute_features(scenario.views, scenario.events)


def check(label: str, scenario: Scenario, oracle: OracleResult) -> None:
    found = mismatches(scenario, run_engine(scenario), oracle)
    if found:
        shown = "\n".join(found[:SHOWN])
        pytest.fail(
            f"{label}: {len(found)} mismatches; scenario:\n{describe(scenario)}\n"
            f"first {min(len(found), SHOWN)}:\n{shown}",
            pytrace=False,
        )


@pytest.mark.parametrize("seed", SEEDS)
def test_engine_matches_the_oracle(seed: int) -> None:
    scenario, oracle = case(seed)
    check(f"seed {seed}", scenario, oracle)
    assert sum(len(rows) for rows in oracle.rows.values()) > 0


@pytest.mark.parametrize("seed", [0, 5, 11])
def test_engine_matches_the_oracle_with_its_matrices_cut_small(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The entities folded one by one and their running rows computed a few at a time (the
    paths a batch with a very busy entity takes) give the same rows."""
    monkeypatch.setattr(stats, "GROUPED_MAX_EVENTS", 2)
    monkeypatch.setattr(running, "MATRIX_CELLS", 8)
    scenario, oracle = case(seed)
    check(f"seed {seed}, small matrices", scenario, oracle)


def edge_case(one_event_batches: bool) -> Scenario:
    """Late and duplicate events right at their limits, events on tile boundaries."""
    source = replace(
        draw_source(np.random.default_rng(0), S),
        watermark_delay=timedelta(milliseconds=500),
        id_field="trade_id",
    )
    plain = stream_view(
        "plain",
        StreamComputation(
            source=source,
            aggregations=(
                Aggregation("size", AggFunction.COUNT, 2 * SECOND, SECOND, "n"),
                Aggregation("price", AggFunction.FIRST, SECOND, SECOND, "first"),
                # Two percentiles of one column and window: one sorted copy serves both.
                Aggregation("price", AggFunction.P25, 2 * SECOND, SECOND, "price_p25"),
                Aggregation("price", AggFunction.P90, 2 * SECOND, SECOND, "price_p90"),
            ),
            derived={"ratio": "first / n"},
            tile=SECOND,
        ),
    )
    running = stream_view(
        "running",
        StreamComputation(
            source=source,
            aggregations=(
                Aggregation("ret", AggFunction.SUM, 2 * SECOND, SECOND, "sum"),
                Aggregation("size", AggFunction.LAST, SECOND, SECOND, "last"),
                Aggregation("size", AggFunction.MEDIAN, 2 * SECOND, SECOND, "size_median"),
                Aggregation("size", AggFunction.P90, 2 * SECOND, SECOND, "size_p90"),
            ),
            tile=SECOND,
            running=True,
        ),
    )
    log = [  # (entity, ms after T0, id): the comments give W before the event
        ("A", 10_200, "a"),
        ("A", 12_100, "b"),
        ("A", 11_500, "c"),  # 12.1: tile 11 open until 12.5
        ("A", 10_900, "d"),  # 12.1: late
        ("A", 12_900, "b"),  # 12.1: duplicate
        ("B", 12_300, "b"),  # another entity's id
        ("A", 13_600, "e"),
        ("A", 12_400, "b"),  # 13.6: late before duplicate
        ("A", 13_700, "a"),  # 13.6: id a's tile closed: accepted
        ("A", 13_800, "a"),  # 13.7: duplicate
        ("B", 14_500, "h"),
        ("A", 13_000, "i"),  # 14.5: tile 13 closes at 14.5 exactly: late
        ("A", 14_000, "j"),  # on a boundary
        ("A", 14_000, "j"),  # duplicate at the same time
        ("A", 14_000, "k"),  # a tie
        ("B", 16_000, "l"),
    ]
    events = [
        SourceEvent(
            entity=entity,
            event_us=T0 + ms * 1000,
            kafka_ms=KAFKA0_MS + i,
            partition=PARTITION,
            offset=100 + i,
            event_id=event_id,
            fields={"price": 100.0 + i, "size": math.nan if i % 5 == 3 else float(i)},
        )
        for i, (entity, ms, event_id) in enumerate(log)
    ]
    cuts = list(range(1, len(events) + 1)) if one_event_batches else [len(events)]
    return Scenario([plain, running], events, cuts, set(range(0, len(cuts), 2)))


@pytest.mark.parametrize("one_event_batches", [False, True])
def test_engine_matches_the_oracle_at_the_edges(one_event_batches: bool) -> None:
    scenario = edge_case(one_event_batches)
    oracle = compute_features(scenario.views, scenario.events)
    assert oracle.late == (3, 7, 11)
    assert oracle.duplicates == (4, 9, 13)
    check("edge case", scenario, oracle)


def test_the_draws_cover_what_they_should() -> None:
    """Across the seeds the streams have late events, duplicates, nulls and both view kinds."""
    late = duplicates = running = plain = chained = chained_rows = twice = last_tiles = 0
    for seed in SEEDS:
        scenario, oracle = case(seed)
        late += len(oracle.late)
        duplicates += len(oracle.duplicates)
        for view in scenario.views:
            assert view.stream is not None
            running += view.stream.running
            plain += not view.stream.running
            chained += view.stream.upstream is not None
            twice += view.stream.upstream == "c0"
            chained_rows += len(oracle.rows[view.name]) if view.stream.upstream else 0
            last_tiles += sum(a.last_tiles is not None for a in view.stream.aggregations)
    assert min(late, duplicates, running, plain, chained) > 5
    assert twice >= 2 and chained_rows > 100 and last_tiles > 5


@pytest.mark.parametrize("one_event_batches", [False, True])
def test_prev_of_a_computed_column_is_its_value_in_the_previous_event(
    one_event_batches: bool,
) -> None:
    """``prev(notional)`` of a computed column reads it like ``prev`` of a field: within a
    batch as across batches (it was null within a batch)."""
    source = trades_source(
        timedelta(0),
        None,
        {
            "notional": "price * size",
            "d_notional": "notional - prev(notional)",
            "d_price": "price - prev(price)",
        },
    )
    aggregations = tuple(
        Aggregation(column, function, MINUTE, MINUTE, f"{function.value}_{column}")
        for column in ("d_notional", "d_price")
        for function in (AggFunction.COUNT, AggFunction.SUM)
    )
    view = stream_view(
        "deltas", StreamComputation(source=source, aggregations=aggregations, tile=MINUTE)
    )
    events = [
        SourceEvent(
            entity=entity,
            event_us=T0 + seconds * S,
            kafka_ms=KAFKA0_MS + i,
            partition=PARTITION,
            offset=i,
            event_id=None,
            fields={"price": price, "size": 1.0},
        )
        for i, (entity, seconds, price) in enumerate(
            [
                ("A", 1, 1.0),
                ("A", 2, 2.0),
                ("B", 3, 5.0),
                ("A", 4, 3.0),
                ("A", 5, 4.0),
                ("B", 6, 7.0),
                ("C", 200, 1.0),
            ]  # C's event closes the first minute
        )
    ]
    cuts = list(range(1, len(events) + 1)) if one_event_batches else [len(events)]
    scenario = Scenario([view], events, cuts, set())
    oracle = compute_features(scenario.views, scenario.events)
    rows = {key: row for key, row in oracle.rows["deltas"].items() if key[1] == T0 + 60 * S}
    # A: notional 1, 2, 3, 4 -> deltas 1, 1, 1; B: 5, 7 -> 2 (the first of each is null)
    assert {key[0]: (row.values["count_d_notional"], row.values["sum_d_notional"])
            for key, row in rows.items()} == {"A": (3.0, 3.0), "B": (1.0, 2.0)}  # fmt: skip
    check("prev of a computed column", scenario, oracle)

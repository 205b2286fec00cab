"""The oracle itself, on cases small enough to work out by hand (the expected values are ours)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import timedelta

import pytest

from featurestore.definitions.expressions import parse
from featurestore.definitions.model import AggFunction
from featurestore.definitions.model import Aggregation
from featurestore.definitions.model import FeatureView
from featurestore.definitions.model import StreamComputation
from featurestore.definitions.model import StreamSource
from tests.unit.processors.oracle import History
from tests.unit.processors.oracle import OracleResult
from tests.unit.processors.oracle import SourceEvent
from tests.unit.processors.oracle import aggregate
from tests.unit.processors.oracle import compute_features
from tests.unit.processors.oracle import evaluate
from tests.unit.processors.stream_views import stream_view
from tests.unit.processors.stream_views import trades_source

S = 1_000_000  # one second in us
T0 = 1_700_000_000 * S  # a whole second (and minute) since the epoch
NAN = math.nan


def agg(column: str, function: AggFunction, window_s: int, slide_s: int, name: str) -> Aggregation:
    return Aggregation(
        column, function, timedelta(seconds=window_s), timedelta(seconds=slide_s), name
    )


def view(
    src: StreamSource,
    aggregations: Sequence[Aggregation],
    derived: Mapping[str, str] | None = None,
    running: bool = False,
) -> FeatureView:
    return stream_view(
        "v",
        StreamComputation(
            source=src,
            aggregations=tuple(aggregations),
            derived=dict(derived or {}),
            tile=timedelta(seconds=1),
            running=running,
        ),
    )


def ev(
    entity: str,
    at_us: int,
    *,
    id: str | None = None,
    price: float = 1.0,
    size: float = 1.0,
    kafka_ms: int = 0,
    offset: int = 0,
) -> SourceEvent:
    return SourceEvent(entity, T0 + at_us, kafka_ms, 0, offset, id, {"price": price, "size": size})


def table(result: OracleResult, *features: str) -> dict[tuple[str, int], tuple[object, ...]]:
    """Rows as (entity, us after T0) -> (created_ms, first_offset, last_offset, *features)."""
    return {
        (entity, at - T0): (
            row.created_ms,
            row.first_offset,
            row.last_offset,
            *(row.values[f] for f in features),
        )
        for (entity, at), row in result.rows["v"].items()
    }


# --- expressions and functions -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 + 2 * 3", 7.0),
        ("(1 + 2) * 3", 9.0),
        ("-2 * -3", 6.0),
        ("2 - 3 - 4", -5.0),
        ("8 / 2 / 2", 2.0),
        ("1.5e1 + .5", 15.5),
        ("x / 0", None),
        ("x / (y - y)", None),
        ("ln(0)", None),
        ("ln(-1)", None),
        ("ln(exp(2))", 2.0),
        ("sqrt(-1)", None),
        ("sqrt(x)", 2.0),
        ("abs(-3) - -x", 7.0),
        ("x + z", None),
        ("-z", None),
        ("sqrt(z)", None),
        ("prev(x)", 10.0),
        ("prev(z) * 0", None),
        ("prev_nonnull(z)", 5.0),
        ("prev_nonnull(x)", 10.0),
        ("prev_nonnull(w)", None),
    ],
)
def test_expressions(text: str, expected: float | None) -> None:
    current = {"x": 4.0, "y": 1.0, "z": None, "w": None}
    previous = History(
        last={"x": 10.0, "y": 0.0, "z": None, "w": None}, known={"x": 10.0, "y": 0.0, "z": 5.0}
    )
    got = evaluate(parse(text, allow_prev=True), current, previous)
    assert got == pytest.approx(expected) if expected is not None else got is None


def test_prev_without_a_previous_event_is_null() -> None:
    assert evaluate(parse("x - prev(x)", allow_prev=True), {"x": 1.0}, None) is None


def test_aggregate_functions() -> None:
    values = [3.0, None, 1.0, 3.0, 2.0]
    variance = (0.75**2 + 1.25**2 + 0.75**2 + 0.25**2) / 3  # mean 2.25
    expected = {
        AggFunction.COUNT: 4.0,
        AggFunction.SUM: 9.0,
        AggFunction.MEAN: 2.25,
        AggFunction.MIN: 1.0,
        AggFunction.MAX: 3.0,
        AggFunction.VAR: variance,
        AggFunction.STD: math.sqrt(variance),
        AggFunction.FIRST: 3.0,
        AggFunction.LAST: 2.0,
        AggFunction.COUNT_DISTINCT: 3.0,
        # sorted 1, 2, 3, 3: rank q * 3, interpolated between the values around it
        AggFunction.P25: 1.75,
        AggFunction.MEDIAN: 2.5,
        AggFunction.P75: 3.0,
        AggFunction.P90: 3.0,
        AggFunction.P95: 3.0,
        AggFunction.P99: 3.0,
    }
    assert set(expected) == set(AggFunction)
    for function, value in expected.items():
        assert aggregate(function, values) == pytest.approx(value), function
    eleven = [float(v) for v in (7, 1, 11, 2, 10, 3, 9, 4, 8, 5, 6)]  # 1..11: rank q * 10
    spread = {"p25": 3.5, "median": 6.0, "p75": 8.5, "p90": 10.0, "p95": 10.5, "p99": 10.9}
    for name, value in spread.items():
        assert aggregate(AggFunction(name), eleven) == pytest.approx(value), name


def test_aggregates_of_nothing_and_of_one_value() -> None:
    zero = {AggFunction.COUNT, AggFunction.SUM, AggFunction.COUNT_DISTINCT}
    for function in AggFunction:
        assert aggregate(function, [None, None]) == (0.0 if function in zero else None)
    single = {f: aggregate(f, [None, 5.0]) for f in AggFunction}
    assert single[AggFunction.VAR] is None
    assert single[AggFunction.STD] is None
    assert single[AggFunction.MEAN] == single[AggFunction.FIRST] == 5.0
    assert single[AggFunction.COUNT] == single[AggFunction.COUNT_DISTINCT] == 1.0
    assert single[AggFunction.P99] == single[AggFunction.P25] == 5.0


# --- acceptance --------------------------------------------------------------------------------


def _acceptance_events() -> list[SourceEvent]:
    ms = 1000
    return [
        ev("A", 10_200 * ms, id="a"),  # 0 accepted, W = 10.2 s
        ev("A", 12_100 * ms, id="b"),  # 1 accepted, W = 12.1
        ev("A", 11_500 * ms, id="c"),  # 2 tile 11 closes at 12.5 > 12.1: accepted
        ev("A", 10_900 * ms, id="d"),  # 3 tile 10 closes at 11.5 <= 12.1: late
        ev("A", 12_900 * ms, id="b"),  # 4 id b in tile 12, open (13.5 > 12.1): duplicate
        ev("B", 12_300 * ms, id="b"),  # 5 another entity: accepted, W = 12.3
        ev("A", 13_600 * ms, id="e"),  # 6 accepted, W = 13.6
        ev("A", 12_400 * ms, id="b"),  # 7 tile 12 closed (13.5 <= 13.6): late before duplicate
        ev("A", 13_700 * ms, id="a"),  # 8 id a's tile 10 closed: accepted, W = 13.7
        ev("A", 13_800 * ms, id="a"),  # 9 id a again, event 8's tile 13 is open: duplicate
        ev("A", 12_000 * ms, id="f"),  # 10 tile 12 closes at 13.5 <= 13.7: late
        ev("A", 12_300 * ms, id="g"),  # 11 likewise (event 9 was dropped: W is still 13.7)
    ]


def test_late_and_duplicate_events() -> None:
    v = view(
        trades_source(timedelta(milliseconds=500), "id"), [agg("price", AggFunction.SUM, 1, 1, "s")]
    )
    result = compute_features([v], _acceptance_events())
    assert result.late == (3, 7, 10, 11)
    assert result.duplicates == (4, 9)


def test_without_an_id_field_nothing_is_a_duplicate() -> None:
    v = view(trades_source(timedelta(milliseconds=500)), [agg("price", AggFunction.SUM, 1, 1, "s")])
    result = compute_features([v], _acceptance_events())
    # Events 4 and 9 are accepted (W goes to 12.9, then 13.8); the same events are late.
    assert result.late == (3, 7, 10, 11)
    assert result.duplicates == ()


def test_a_tile_closes_exactly_at_its_end_plus_the_lateness() -> None:
    v = view(trades_source(timedelta(milliseconds=500)), [agg("price", AggFunction.SUM, 1, 1, "s")])
    events = [ev("A", 11_500_000), ev("A", 10_000_000), ev("A", 11_499_999), ev("A", 9_999_999)]
    # W = 11.5 s: tile 10 closes at 11.5 <= 11.5 (late); tile 11 is open; tile 9 closed.
    assert compute_features([v], events).late == (1, 3)


# --- rows --------------------------------------------------------------------------------------


def test_running_view_with_prev_in_log_order() -> None:
    src = trades_source(timedelta(0), columns={"d": "price - prev(price)"})
    v = view(
        src,
        [agg("d", AggFunction.LAST, 1, 1, "last_d"), agg("d", AggFunction.SUM, 1, 1, "sum_d")],
        running=True,
    )
    ms = 1000
    events = [
        ev("A", 100 * ms, price=10, kafka_ms=1000, offset=100),  # d null (first of A)
        ev("B", 200 * ms, price=100, kafka_ms=2000, offset=101),  # d null (first of B)
        ev("A", 500 * ms, price=13, kafka_ms=1500, offset=102),  # d = 13 - 10 = 3
        ev("A", 300 * ms, price=11, kafka_ms=3000, offset=103),  # prev in the log: d = 11 - 13
        ev("A", 1200 * ms, price=NAN, kafka_ms=2500, offset=104),  # d null, W = 1.2 s
        ev("A", 900 * ms, price=50, kafka_ms=9999, offset=105),  # tile 0 closed at 1 s: late
        ev("A", 1400 * ms, price=20, kafka_ms=2600, offset=106),  # prev is null: d null
        ev("B", 1500 * ms, price=90, kafka_ms=4000, offset=107),  # d = -10, W = 1.5 s
    ]
    result = compute_features([v], events)
    assert result.late == (5,)
    # Windows [floor(t) + 1 s - 1 s, t]; boundary b = 1 s only (2 s + 0 > W = 1.5 s).
    # Rows cover [t - 2 s, t] for created_ms and offsets.
    assert table(result, "last_d", "sum_d") == {
        ("A", 100 * ms): (1000, 100, 100, None, 0.0),
        ("A", 300 * ms): (3000, 100, 103, -2.0, -2.0),
        ("A", 500 * ms): (3000, 100, 103, 3.0, 1.0),
        ("A", S - 1): (3000, 100, 103, 3.0, 1.0),
        ("A", S): (3000, 100, 103, None, 0.0),
        ("A", 1200 * ms): (3000, 100, 104, None, 0.0),
        ("A", 1400 * ms): (3000, 100, 106, None, 0.0),
        ("B", 200 * ms): (2000, 101, 101, None, 0.0),
        ("B", S - 1): (2000, 101, 101, None, 0.0),
        ("B", S): (2000, 101, 101, None, 0.0),
        ("B", 1500 * ms): (4000, 101, 107, -10.0, -10.0),
    }


def test_non_running_view_with_two_slides_and_a_derived_feature() -> None:
    v = view(
        trades_source(timedelta(milliseconds=250)),
        [
            agg("size", AggFunction.SUM, 2, 1, "sum_2s"),
            agg("size", AggFunction.COUNT, 2, 2, "count_2s"),
            agg("price", AggFunction.MEAN, 3, 1, "mean_3s"),
        ],
        derived={"ratio": "sum_2s / count_2s"},
    )
    ms = 1000
    events = [
        ev("A", 500 * ms, price=10, size=1, kafka_ms=10, offset=0),
        ev("A", 1500 * ms, price=20, size=2, kafka_ms=20, offset=1),
        ev("A", 1700 * ms, price=30, size=NAN, kafka_ms=15, offset=2),
        ev("A", 4200 * ms, price=40, size=4, kafka_ms=40, offset=3),
        ev("A", 5600 * ms, price=NAN, size=8, kafka_ms=50, offset=4),
    ]
    result = compute_features([v], events)
    # H = 1 s, widest 3 s: boundaries b with an event in [b - 4 s, b) and b + 0.25 s <= 5.6 s.
    # Values over [B - window, B), B = b floored to the slide; created over [b - 4 s, b].
    assert table(result, "sum_2s", "count_2s", "mean_3s", "ratio") == {
        ("A", 1 * S): (10, 0, 0, 1.0, 0.0, 10.0, None),
        ("A", 2 * S): (20, 0, 2, 3.0, 2.0, 20.0, 1.5),
        ("A", 3 * S): (20, 0, 2, 2.0, 2.0, 20.0, 1.0),
        ("A", 4 * S): (20, 0, 2, 0.0, 0.0, 25.0, None),
        ("A", 5 * S): (40, 1, 3, 4.0, 0.0, 40.0, None),
    }


def test_first_last_and_distinct_follow_event_time_then_the_log() -> None:
    v = view(
        trades_source(timedelta(seconds=1)),
        [
            agg("price", AggFunction.FIRST, 1, 1, "first"),
            agg("price", AggFunction.LAST, 1, 1, "last"),
            agg("price", AggFunction.COUNT_DISTINCT, 1, 1, "distinct"),
        ],
    )
    ms = 1000
    prices = [(500, 1.0), (500, 2.0), (200, 3.0), (800, 4.0), (800, 5.0), (800, NAN), (300, 2.0)]
    events = [ev("A", t * ms, price=p, offset=i) for i, (t, p) in enumerate(prices)]
    events.append(ev("A", 2500 * ms, price=9.0, kafka_ms=7, offset=7))
    result = compute_features([v], events)
    # W = 2.5 s, lateness 1 s: only b = 1 s is closed (2 s + 1 s > 2.5 s).
    assert table(result, "first", "last", "distinct") == {("A", S): (0, 0, 6, 3.0, 5.0, 5.0)}


def test_lineage_of_running_rows_starts_a_widest_window_before_the_tile() -> None:
    v = view(
        trades_source(timedelta(0)), [agg("price", AggFunction.COUNT, 2, 1, "n")], running=True
    )
    ms = 1000
    events = [
        ev("A", 700 * ms, kafka_ms=999, offset=10),
        ev("A", 1000 * ms, kafka_ms=300, offset=11),  # on a boundary
        ev("A", 2600 * ms, kafka_ms=200, offset=12),
        ev("A", 3500 * ms, kafka_ms=50, offset=13),  # W = 3.5 s: boundaries 1, 2, 3 s
    ]
    # Counts over [floor(t) - 1 s, t]; lineage over [floor(t) - 2 s, t], so the event at 0.7 s
    # leaves it at t = 3 s (a window of t - 3 s would still hold it).
    assert table(compute_features([v], events), "n") == {
        ("A", 700 * ms): (999, 10, 10, 1.0),
        ("A", S - 1): (999, 10, 10, 1.0),
        ("A", S): (999, 10, 11, 2.0),
        ("A", 2 * S - 1): (999, 10, 11, 2.0),
        ("A", 2 * S): (999, 10, 11, 1.0),
        ("A", 2600 * ms): (999, 10, 12, 2.0),
        ("A", 3 * S - 1): (999, 10, 12, 2.0),
        ("A", 3 * S): (300, 11, 12, 1.0),
        ("A", 3500 * ms): (300, 11, 13, 2.0),
    }


def test_lineage_of_window_rows_ends_before_the_boundary() -> None:
    v = view(trades_source(timedelta(0)), [agg("size", AggFunction.SUM, 1, 1, "s")])
    ms = 1000
    events = [
        ev("A", 500 * ms, size=1, kafka_ms=10, offset=0),
        ev("A", 1000 * ms, size=2, kafka_ms=50, offset=1),  # on the boundary of row 1 s
        ev("A", 2500 * ms, size=4, kafka_ms=20, offset=2),  # W = 2.5 s: rows at 1 s and 2 s
    ]
    # Sums over [b - 1 s, b); lineage over [b - 2 s, b): the event at 1 s is not in row 1 s.
    assert table(compute_features([v], events), "s") == {
        ("A", S): (10, 0, 0, 1.0),
        ("A", 2 * S): (50, 0, 1, 2.0),
    }

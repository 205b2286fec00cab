"""How long closed tiles are kept: as long as any aggregation at a later boundary reads them.

A view whose aggregations slide differently has rows at multiples of the gcd of the slides (its
hop); a row at boundary b reads, for each aggregation, its window ending at the latest multiple
of that aggregation's own slide: up to window + slide before b. Tiles kept only window + hop
back were gone before that row was made, and its value depended on where the stream had been
cut into micro-batches.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from featurestore.definitions.model import AggFunction
from featurestore.definitions.model import Aggregation
from featurestore.definitions.model import StreamComputation
from processors.features.plan import compile_topic
from tests.unit.processors import test_features_vs_oracle as engine
from tests.unit.processors.oracle import SourceEvent
from tests.unit.processors.oracle import compute_features
from tests.unit.processors.stream_views import stream_view
from tests.unit.processors.stream_views import trades_source

MS = timedelta(milliseconds=1)
VIEW = stream_view(
    "v",
    StreamComputation(
        source=trades_source(timedelta(0), None, {}),
        aggregations=(
            Aggregation("price", AggFunction.COUNT, MS, MS, "n_1ms"),  # the view's hop: 1 ms
            Aggregation("price", AggFunction.SUM, 10 * MS, 5 * MS, "sum_10ms"),  # slide 5 ms
        ),
        tile=MS,
    ),
)


def _event(i: int, entity: str, us: int, price: float) -> SourceEvent:
    return SourceEvent(
        entity, engine.T0 + us, engine.KAFKA0_MS + i, engine.PARTITION, 100 + i, None,
        {"price": price, "size": 1.0},
    )  # fmt: skip


def test_the_horizon_covers_each_aggregation_s_window_and_own_slide() -> None:
    plan = compile_topic([VIEW], "symbol")
    assert plan.horizon_us == 10_000 + 5_000 + 1_000  # sum_10ms's window + slide, and a tile


@pytest.mark.parametrize("cuts", [[4], [2, 3, 4], [1, 2, 3, 4]])
def test_a_row_is_the_same_however_the_stream_is_cut(cuts: list[int]) -> None:
    # A's row at 18 ms: sum_10ms over [5 ms, 15 ms) holds both of A's events. B's events close
    # time past 17 ms in an earlier batch when the stream is cut after the third event.
    events = [
        _event(0, "A", 5_500, 1.0),
        _event(1, "A", 7_500, 2.0),
        _event(2, "B", 17_999, 5.0),
        _event(3, "B", 19_000, 7.0),
    ]
    oracle = compute_features([VIEW], events)
    scenario = engine.Scenario([VIEW], events, cuts, set())
    result = engine.run_engine(scenario)
    assert result.rows["v"][("A", engine.T0 + 18_000)]["sum_10ms"] == 3.0
    assert engine.mismatches(scenario, result, oracle) == []

"""The per-symbol state machine: the rules of the design, on hand-made and random streams."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from processors.core import MachineOptions, SymbolState, TradeBatch, process_trades
from processors.core.rolling import ROLLING_FEATURES
from tests.unit.processors.reference import reference_bars, reference_rolling
from tests.unit.processors.streams import (
    T0,
    collapsed_frames,
    disordered,
    in_order_trades,
    run_split,
)

S = 1_000_000  # one second in us
REFERENCE_ONLY = MachineOptions(vectorized=False)


def trades(*rows: tuple[float, float, float, str]) -> TradeBatch:
    """(seconds after T0, price, size, id) rows."""
    return TradeBatch.of(
        [T0 + int(r[0] * S) for r in rows], [r[1] for r in rows], [r[2] for r in rows],
        [r[3] for r in rows],
    )  # fmt: skip


def test_a_row_per_distinct_trade_time_holds_the_minute_so_far() -> None:
    state = SymbolState("X")
    out = process_trades(state, trades((1, 10, 100, "a"), (1, 12, 100, "b"), (2, 9, 200, "c")))
    bars, rolling = out.collapsed()
    assert bars.columns["event_us"].tolist() == [T0 + S, T0 + 2 * S]
    assert bars.columns["open"].tolist() == [10, 10]
    assert bars.columns["high"].tolist() == [12, 12]
    assert bars.columns["low"].tolist() == [10, 9]
    assert bars.columns["close"].tolist() == [12, 9]
    assert bars.columns["volume"].tolist() == [200, 400]
    assert bars.columns["trade_count"].tolist() == [2, 3]
    assert bars.columns["vwap"].tolist() == [11, (1000 + 1200 + 1800) / 400]
    assert bars.columns["avg_trade_size"].tolist() == [100, 400 / 3]
    assert len(rolling) == 0  # nothing closed yet


def test_a_minute_closes_at_end_plus_lateness_of_the_symbols_own_time() -> None:
    state = SymbolState("X")
    opts = MachineOptions(lateness_us=5 * S)
    out = process_trades(state, trades((10, 10, 1, "a"), (64.9, 11, 1, "b")), opts)
    assert len(out.rolling_rows()) == 0
    out = process_trades(state, trades((65, 12, 1, "c")), opts)
    bars, rolling = out.collapsed()
    assert rolling.columns["event_us"].tolist() == [T0 + 60 * S]
    # The closing row sits at the minute's last microsecond and holds the complete bar.
    assert T0 + 60 * S - 1 in bars.columns["event_us"].tolist()
    assert rolling.columns["price_momentum_1m"].tolist() == [0.0]
    assert list(state.minutes) == [T0 + 60 * S]


def test_a_trade_for_a_closed_minute_is_late_and_one_for_an_open_minute_is_folded_in() -> None:
    state = SymbolState("X")
    opts = MachineOptions(lateness_us=5 * S)
    process_trades(state, trades((30, 10, 1, "a"), (62, 11, 1, "b")), opts)
    # Minute 0 is still open (62 < 60 + 5): a trade at 59 s is folded into it, no row now.
    out = process_trades(state, trades((59, 20, 1, "c")), opts)
    assert out.late == [] and len(out.bar_rows()) == 0
    # The next trade closes minute 0: its closing row includes the trade folded in.
    out = process_trades(state, trades((66, 12, 1, "d"), (10, 99, 1, "e")), opts)
    bars, _ = out.collapsed()
    closing = bars.take(np.flatnonzero(bars.columns["event_us"] == T0 + 60 * S - 1))
    assert closing.columns["close"].tolist() == [20] and closing.columns[
        "trade_count"
    ].tolist() == [2]
    assert out.late == [1]  # 10 s belongs to minute 0, closed now


def test_an_out_of_order_trade_in_the_latest_minute_re_emits_the_latest_row() -> None:
    state = SymbolState("X")
    process_trades(state, trades((5, 10, 1, "a"), (20, 11, 1, "b")))
    out = process_trades(state, trades((7, 30, 1, "c")))
    bars, _ = out.collapsed()
    assert bars.columns["event_us"].tolist() == [T0 + 20 * S]
    assert bars.columns["high"].tolist() == [30]
    assert bars.columns["close"].tolist() == [11]  # close is the latest event time's price
    assert bars.columns["trade_count"].tolist() == [3]


def test_duplicates_are_dropped_while_their_minute_is_open() -> None:
    state = SymbolState("X")
    out = process_trades(state, trades((1, 10, 1, "a"), (2, 11, 1, "a"), (3, 12, 1, "b")))
    assert out.duplicates == 1
    out = process_trades(state, trades((3, 12, 1, "b")))
    assert out.duplicates == 1 and len(out.bar_rows()) == 0


def test_created_timestamp_is_the_latest_kafka_time_and_lineage_the_offsets() -> None:
    state = SymbolState("X")
    batch = TradeBatch.of(
        [T0 + S, T0 + 2 * S], [10, 11], [1, 1], ["a", "b"],
        kafka_ms=[5000, 4000], partition=[3, 3], offset=[40, 41],
    )  # fmt: skip
    bars, _ = process_trades(state, batch).collapsed()
    assert bars.columns["created_ms"].tolist() == [5000, 5000]
    assert bars.columns["first_offset"].tolist() == [40, 40]
    assert bars.columns["last_offset"].tolist() == [40, 41]
    assert bars.columns["partition"].tolist() == [3, 3]


def test_rolling_features_are_null_until_their_window_is_full() -> None:
    rows = [(60 * m + 1, 100 + m, 10 + m, f"t{m}") for m in range(22)]
    _, rolling = process_trades(SymbolState("X"), trades(*rows), MachineOptions(0)).collapsed()
    nulls = {name: int(np.isnan(rolling.columns[name]).sum()) for name in ROLLING_FEATURES}
    # 21 minutes closed (the 22nd is open); a window of n bars is full from the n-th bar on.
    assert len(rolling) == 21
    assert nulls == {
        "vwap_5m": 4, "vwap_15m": 14, "realized_vol_5m": 5, "realized_vol_15m": 15,
        "price_momentum_1m": 0, "price_momentum_5m": 4, "volume_5m": 4, "volume_ratio": 19,
        "sma_5": 4, "sma_20": 19,
    }  # fmt: skip
    last = {name: float(rolling.columns[name][-1]) for name in ROLLING_FEATURES}
    assert last["sma_5"] == pytest.approx(np.mean([116, 117, 118, 119, 120]))
    assert last["volume_5m"] == 26 + 27 + 28 + 29 + 30
    assert last["volume_ratio"] == pytest.approx(30 / np.mean(np.arange(11, 31)))


def test_an_empty_minute_is_not_a_bar() -> None:
    rows = [(1, 10, 1, "a"), (61, 11, 1, "b"), (300, 12, 1, "c"), (400, 13, 1, "d")]
    _, rolling = process_trades(SymbolState("X"), trades(*rows), MachineOptions(0)).collapsed()
    assert rolling.columns["event_us"].tolist() == [T0 + 60 * S, T0 + 120 * S, T0 + 360 * S]


def test_state_round_trips_through_bytes() -> None:
    state = SymbolState("X")
    process_trades(state, trades((1, 10, 1, "a"), (70, 11, 2, "b"), (71, 12, 3, "c")))
    again = SymbolState.from_bytes(state.to_bytes())
    assert again == state


@pytest.mark.parametrize("seed", range(6))
def test_any_split_into_calls_gives_the_same_rows(seed: int) -> None:
    """The property of the design: rows depend on the log, never on batch boundaries."""
    rng = np.random.default_rng(seed)
    df = in_order_trades(rng, 3000)
    if seed % 2:
        df = disordered(rng, df)
    whole, whole_state = run_split(df)
    expect_bars, expect_rolling = collapsed_frames(whole, "AAA")
    for _ in range(8):
        cuts = sorted(set(rng.integers(0, len(df), int(rng.integers(1, 40))).tolist()))
        split, split_state = run_split(df, cuts)
        bars, rolling = collapsed_frames(split, "AAA")
        pd.testing.assert_frame_equal(bars, expect_bars, check_exact=True)
        pd.testing.assert_frame_equal(rolling, expect_rolling, check_exact=True)
        assert sorted(split.late) == sorted(whole.late)
        assert split.duplicates == whole.duplicates
        assert split_state == whole_state


@pytest.mark.parametrize("seed", range(4))
def test_the_vectorized_path_equals_the_reference_path(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    df = disordered(rng, in_order_trades(rng, 4000)) if seed % 2 else in_order_trades(rng, 4000)
    fast, fast_state = run_split(df, [1000, 2500])
    slow, slow_state = run_split(df, [1000, 2500], MachineOptions(vectorized=False))
    for got, want in zip(collapsed_frames(fast, "AAA"), collapsed_frames(slow, "AAA"), strict=True):
        pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert fast.late == slow.late and fast.duplicates == slow.duplicates
    assert fast_state == slow_state


@pytest.mark.parametrize("seed", range(3))
def test_rows_equal_an_independent_pandas_computation(seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    df = in_order_trades(rng, 5000)
    emission, _ = run_split(df, [700, 3100])
    bars, rolling = collapsed_frames(emission, "AAA")
    want_bars = reference_bars(df)
    want_rolling = reference_rolling(df)
    assert len(want_rolling) > 20
    got = bars[want_bars.columns]
    pd.testing.assert_frame_equal(got, want_bars, check_dtype=False, rtol=1e-12)
    pd.testing.assert_frame_equal(
        rolling[want_rolling.columns], want_rolling, check_dtype=False, rtol=1e-9
    )


def test_disordered_streams_count_every_trade_once() -> None:
    rng = np.random.default_rng(7)
    df = disordered(rng, in_order_trades(rng, 3000))
    emission, state = run_split(df, [500, 1500])
    bars, _ = collapsed_frames(emission, "AAA")
    unique = df["trade_id"].nunique()
    in_bars = int(np.nansum(bars.loc[bars["event_us"] % 60_000_000 == 59_999_999, "trade_count"]))
    still_open = sum(m.count for m in state.minutes.values())
    assert emission.late
    assert in_bars + still_open + len(emission.late) + emission.duplicates == len(df)
    assert in_bars + still_open + len(emission.late) <= unique + len(emission.late)
    assert not math.isnan(float(bars["close"].iloc[-1]))

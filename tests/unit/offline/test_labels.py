from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from featurestore.errors import ValidationError
from featurestore.offline.labels import LabelSpec
from featurestore.offline.labels import add_forward_labels

T0 = pd.Timestamp("2024-01-01 10:00", tz="UTC")
SPEC = LabelSpec(horizon=timedelta(minutes=5), max_wait=timedelta(minutes=1))


def _bars(closes: dict[float, float], symbol: str = "A") -> pd.DataFrame:
    """Bars at ``T0 + minutes`` (fractions allowed) with the given closes."""
    return pd.DataFrame(
        {
            "symbol": symbol,
            "event_timestamp": [T0 + pd.Timedelta(minutes=m) for m in closes],
            "close": list(closes.values()),
        }
    )


def _one(t: pd.Timestamp, bars: pd.DataFrame, spec: LabelSpec = SPEC) -> float:
    rows = pd.DataFrame({"symbol": ["A"], "event_timestamp": [t]})
    return float(add_forward_labels(rows, bars, spec)["forward_return"][0])


def test_forward_return_and_direction_by_definition() -> None:
    bars = _bars({0: 100.0, 1: 101.0, 5: 110.0, 6: 90.0})
    entities = pd.DataFrame(
        {
            "symbol": ["A", "A", "B"],
            "event_timestamp": [T0, T0 + pd.Timedelta(seconds=30), T0],
            "x": [1, 2, 3],
        },
        index=[7, 3, 5],  # any index: labels follow the rows, not the index
    )
    out = add_forward_labels(entities, bars, SPEC)
    assert list(out["x"]) == [1, 2, 3] and list(out.index) == [7, 3, 5]
    # t=10:00: the bar AT t (100) is the present, not the label; entry = first bar after t
    # (10:01, 101), exit = last bar by t + 5 min (10:05, 110).
    assert out["forward_return"].iloc[0] == pytest.approx(110.0 / 101.0 - 1)
    assert out["direction"].iloc[0] == 1
    # t=10:00:30: entry 10:01 (101), exit = last bar by 10:05:30 (10:05, 110); 10:06 is after.
    assert out["forward_return"].iloc[1] == pytest.approx(110.0 / 101.0 - 1)
    assert pd.isna(out["forward_return"].iloc[2]) and pd.isna(out["direction"].iloc[2])
    assert str(out["direction"].dtype) == "Int8"


def test_entry_too_late_or_exit_too_stale_gives_null() -> None:
    bars = _bars({0: 100.0, 2: 120.0, 3: 130.0, 7: 1.0})  # 10:07: the horizon has passed
    assert np.isnan(_one(T0, bars))  # first bar after t comes 2 min later, max_wait is 1 min
    late = LabelSpec(horizon=timedelta(minutes=5), max_wait=timedelta(minutes=2))
    assert _one(T0, bars, late) == pytest.approx(130.0 / 120.0 - 1)
    stale = LabelSpec(
        horizon=timedelta(minutes=5),
        max_wait=timedelta(minutes=3),
        max_staleness=timedelta(minutes=1),
    )
    assert np.isnan(_one(T0, bars, stale))  # last bar by 10:05 is 10:03, older than 1 min


def test_one_bar_in_the_window_is_a_zero_return() -> None:
    out = add_forward_labels(
        pd.DataFrame({"symbol": ["A"], "event_timestamp": [T0]}),
        _bars({0: 50.0, 0.5: 100.0, 5: np.nan}),  # an empty bar at t + horizon: it has passed
        SPEC,
    )
    assert out["forward_return"][0] == 0.0 and out["direction"][0] == 0


def test_a_label_is_null_until_a_bar_reaches_its_horizon() -> None:
    """An export at 05:55:03 does not label 05:51-05:55 from part of their 5 minutes."""
    start = pd.Timestamp("2013-05-01 05:40", tz="UTC")  # old data: the bars decide, not the clock
    times = pd.date_range(start, periods=46, freq="20s").append(
        pd.DatetimeIndex([start + pd.Timedelta(seconds=903)])  # 05:55:03, the latest bar
    )
    bars = pd.DataFrame(
        {"symbol": "QNHI", "event_timestamp": times, "close": 100 + 0.01 * np.arange(47)}
    )
    other = bars.assign(symbol="B", event_timestamp=bars["event_timestamp"] + pd.Timedelta("1h"))
    rows = pd.DataFrame(
        {
            "symbol": ["QNHI"] * 8 + ["B"],
            "event_timestamp": [start + pd.Timedelta(minutes=m) for m in range(8, 16)]
            + [start + pd.Timedelta(minutes=68)],
        }
    )
    out = add_forward_labels(rows, pd.concat([bars, other]), SPEC)
    made = [True] * 3 + [False] * 5 + [True]  # 05:48-05:50 (t + 5 min <= 05:55:03), B's
    assert out["forward_return"].notna().tolist() == made
    assert out["direction"].notna().tolist() == made
    assert out["forward_return"][2] == pytest.approx(100.45 / 100.31 - 1)  # 05:50:20 to 05:55:00

    # A bar at or after t + horizon, even one without a price, says the horizon has passed.
    empty = pd.DataFrame(
        {"symbol": ["QNHI"], "event_timestamp": [start + pd.Timedelta(minutes=16)]}
    )
    out = add_forward_labels(rows, pd.concat([bars, other, empty.assign(close=np.nan)]), SPEC)
    assert out["forward_return"].notna().tolist() == [True] * 4 + [False] * 4 + [True]
    assert out["forward_return"][3] == pytest.approx(100.46 / 100.34 - 1)  # 05:51 is made

    # ``seen``: minute closes are stamped at the end of a minute still running (05:56 here); the
    # bars they come from say how far the market was seen.
    closes = bars.assign(event_timestamp=bars["event_timestamp"].dt.ceil("min"))
    closes = closes.drop_duplicates("event_timestamp", keep="last")
    assert add_forward_labels(rows[:8], closes, SPEC)["forward_return"][3:4].notna().all()
    out = add_forward_labels(rows[:8], closes, SPEC, seen=bars)
    assert out["forward_return"].notna().tolist() == [True] * 3 + [False] * 5


def test_threshold_kind_and_prefix() -> None:
    bars = _bars({1: 100.0, 5: 100.05, 6: 99.0})
    spec = LabelSpec(horizon=timedelta(minutes=5), threshold=0.001, kind="direction", prefix="y_")
    rows = pd.DataFrame({"symbol": ["A"], "event_timestamp": [T0 + pd.Timedelta(seconds=30)]})
    out = add_forward_labels(rows, bars, spec)
    assert list(out.columns) == ["symbol", "event_timestamp", "y_direction"]
    assert out["y_direction"][0] == 0  # +0.05 % is inside the threshold
    only_return = add_forward_labels(rows, bars, LabelSpec(kind="return"))
    assert list(only_return.columns)[-1] == "forward_return"


def _random_bars(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Dense, irregular bars (a row per trade time, like the processors' bars_1m), with ties."""
    offsets = np.sort(rng.integers(0, 60 * 60 * 1_000_000, n))
    bars = pd.DataFrame(
        {
            "symbol": "A",
            "event_timestamp": T0 + pd.to_timedelta(offsets, unit="us"),
            "close": rng.normal(100, 1, n),
        }
    )
    ties = bars.sample(frac=0.1, random_state=1).assign(close=lambda f: f["close"] + 5)
    bars = pd.concat([bars, ties], ignore_index=True)
    bars["created_timestamp"] = bars["event_timestamp"] + pd.to_timedelta(
        rng.integers(1, 10**6, len(bars)), unit="us"
    )
    return bars


def test_no_lookahead_bars_at_or_before_t_and_after_the_horizon_never_matter() -> None:
    """Rewriting any bar at or before t, or after t + horizon, changes no label; the window does."""
    rng = np.random.default_rng(11)
    bars = _random_bars(rng, 2_000)
    times = T0 + pd.to_timedelta(rng.integers(5 * 60, 50 * 60, 40), unit="s")
    times = times.append(
        pd.DatetimeIndex(bars["event_timestamp"].iloc[[100, 500, 900]])
    )  # t on a bar
    spec = LabelSpec(horizon=timedelta(minutes=3), max_wait=timedelta(seconds=30))
    checked = 0
    for t in times:
        base = _one(t, bars, spec)
        ends = bars["event_timestamp"]
        past, future = ends <= t, ends > t + spec.horizon
        assert past.any() and future.any()
        for outside in (past, future):
            changed = bars.copy()
            changed.loc[outside, "close"] = rng.normal(500, 50, int(outside.sum()))
            extra = changed[outside].sample(5, random_state=2).assign(close=1.0)
            extra["created_timestamp"] += pd.Timedelta(seconds=5)  # newer: wins its ties
            changed = pd.concat([changed, extra], ignore_index=True)
            assert _one(t, changed, spec) == pytest.approx(base, nan_ok=True)
        # A bar exactly at t, newer than any other there, is still not the entry.
        at_t = pd.DataFrame(
            {
                "symbol": ["A"],
                "event_timestamp": [t],
                "close": [1e6],
                "created_timestamp": [t + pd.Timedelta(hours=1)],
            }
        )
        assert _one(t, pd.concat([bars, at_t]), spec) == pytest.approx(base, nan_ok=True)
        # The test can fail: the window's own bars do change the label.
        inside = (ends > t) & (ends <= t + spec.horizon)
        if not np.isnan(base) and base != 0.0:  # entry and exit are different bars
            changed = bars.copy()
            changed.loc[inside, "close"] += 10.0 * (1 + np.arange(int(inside.sum())))
            assert _one(t, changed, spec) != pytest.approx(base)
            checked += 1
    assert checked > 20


def test_duplicate_bars_latest_created_wins() -> None:
    bars = pd.concat([_bars({0.5: 100.0, 5: 50.0}), _bars({5: 120.0})], ignore_index=True)
    bars["created_timestamp"] = [T0, T0 + pd.Timedelta(minutes=5), T0 + pd.Timedelta(minutes=6)]
    assert _one(T0, bars) == pytest.approx(0.2)


def test_label_spec_and_input_errors() -> None:
    for bad in (
        {"horizon": timedelta(0)},
        {"max_wait": timedelta(0)},
        {"max_staleness": timedelta(seconds=-1)},
        {"threshold": -0.1},
        {"kind": "sign"},
    ):
        with pytest.raises(ValidationError) as info:
            LabelSpec(**bad)
        assert info.value.field == next(iter(bad))
    with pytest.raises(ValidationError, match="entity_rows is empty"):
        add_forward_labels(pd.DataFrame({"symbol": [], "event_timestamp": []}), _bars({0: 1.0}))
    with pytest.raises(ValidationError) as info:
        add_forward_labels(pd.DataFrame({"symbol": ["A"]}), _bars({0: 1.0}))
    assert info.value.field == "event_timestamp"
    with pytest.raises(ValidationError, match="bars have no column 'price'"):
        add_forward_labels(
            pd.DataFrame({"symbol": ["A"], "event_timestamp": [T0]}),
            _bars({1: 1.0}),
            price_column="price",
        )

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from featurestore.errors import ValidationError
from featurestore.offline.labels import LabelSpec, add_forward_labels

T0 = pd.Timestamp("2024-01-01 10:00", tz="UTC")


def _bars(closes: dict[int, float], symbol: str = "A") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "symbol": symbol,
            "event_timestamp": [T0 + pd.Timedelta(minutes=m) for m in closes],
            "close": list(closes.values()),
        }
    )


def test_forward_return_and_direction_by_definition() -> None:
    bars = _bars({0: 100.0, 1: 101.0, 5: 110.0, 6: 90.0})
    entities = pd.DataFrame(
        {
            "symbol": ["A", "A", "B"],
            "event_timestamp": [T0, T0 + pd.Timedelta(seconds=30), T0],
            "x": [1, 2, 3],
        }
    )
    out = add_forward_labels(entities, bars, LabelSpec(horizon=timedelta(minutes=5)))
    assert list(out["x"]) == [1, 2, 3]  # order and extra columns kept
    # t=10:00: ref = bar ending 10:00 (100), future = first bar ending >= 10:05 (110).
    assert out["forward_return"][0] == pytest.approx(0.10)
    assert out["direction"][0] == 1
    # t=10:00:30: ref is still 100 (10:01 bar not complete), future = first bar >= 10:05:30 = 10:06.
    assert out["forward_return"][1] == pytest.approx(-0.10)
    assert out["direction"][1] == -1
    assert pd.isna(out["forward_return"][2]) and pd.isna(out["direction"][2])


def test_missing_future_bar_gives_null() -> None:
    bars = _bars({0: 100.0, 9: 120.0})
    out = add_forward_labels(
        pd.DataFrame({"symbol": ["A"], "event_timestamp": [T0]}),
        bars,
        LabelSpec(horizon=timedelta(minutes=5), max_wait=timedelta(minutes=1)),
    )
    assert pd.isna(out["forward_return"][0])


def test_no_lookahead_labels_ignore_everything_between_t_and_horizon() -> None:
    """Changing bars in (t, t + horizon) or beyond the wait changes no label; bars at t+h do."""
    rng = np.random.default_rng(0)
    minutes = np.arange(0, 120)
    bars = _bars(
        dict(zip(minutes.tolist(), rng.normal(100, 1, len(minutes)).tolist(), strict=True))
    )
    t = T0 + pd.Timedelta(minutes=30, seconds=20)
    entities = pd.DataFrame({"symbol": ["A"], "event_timestamp": [t]})
    spec = LabelSpec(horizon=timedelta(minutes=5), max_wait=timedelta(minutes=1))
    base = add_forward_labels(entities, bars, spec)["forward_return"][0]

    ends = bars["event_timestamp"]
    used_future = ends[ends >= t + spec.horizon].min()
    between = (ends > t) & (ends < t + spec.horizon)
    after = ends > used_future
    for mask in (between, after):
        changed = bars.copy()
        changed.loc[mask, "close"] *= 3.0
        assert add_forward_labels(entities, changed, spec)["forward_return"][0] == base
    # Nothing at or before t is the future: the future price comes from a bar strictly after t.
    assert used_future > t
    changed = bars.copy()
    changed.loc[ends == used_future, "close"] *= 3.0
    assert add_forward_labels(entities, changed, spec)["forward_return"][0] != base


def test_duplicate_bars_latest_created_wins() -> None:
    bars = pd.concat([_bars({0: 100.0, 5: 50.0}), _bars({5: 120.0})], ignore_index=True)
    bars["created_timestamp"] = [T0, T0 + pd.Timedelta(minutes=5), T0 + pd.Timedelta(minutes=6)]
    out = add_forward_labels(pd.DataFrame({"symbol": ["A"], "event_timestamp": [T0]}), bars)
    assert out["forward_return"][0] == pytest.approx(0.2)


def test_label_spec_and_input_errors() -> None:
    with pytest.raises(ValidationError):
        LabelSpec(horizon=timedelta(0))
    with pytest.raises(ValidationError):
        add_forward_labels(pd.DataFrame({"symbol": [], "event_timestamp": []}), _bars({0: 1.0}))
    with pytest.raises(ValidationError) as info:
        add_forward_labels(pd.DataFrame({"symbol": ["A"]}), _bars({0: 1.0}))
    assert info.value.field == "event_timestamp"

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from featurestore.errors import ValidationError
from models.data import SplitSpec
from models.data import add_forward_volatility
from models.data import chronological_split
from models.data import minute_closes
from models.data import regime_classes
from models.data import regime_edges
from models.inputs import input_names
from models.inputs import model_inputs

T0 = pd.Timestamp("2024-01-02 14:30", tz="UTC")


def test_split_is_chronological_with_a_gap_at_each_cut():
    times = pd.Series(np.repeat(pd.date_range(T0, periods=200, freq="min"), 3))
    split = chronological_split(times, SplitSpec(0.6, 0.2, timedelta(minutes=15)))
    train, valid, test = times[split.train], times[split.valid], times[split.test]
    assert train.max() < valid.min() and valid.max() < test.min()
    assert valid.min() - train.max() > pd.Timedelta(minutes=15)
    assert test.min() - valid.max() > pd.Timedelta(minutes=15)
    # one instant never straddles two splits, whatever the symbol
    assert set(train) & set(valid) == set() and set(valid) & set(test) == set()
    assert (split.train | split.valid | split.test).sum() == len(times) - 2 * 15 * 3


def test_split_refuses_a_gap_that_empties_a_split():
    times = pd.Series(pd.date_range(T0, periods=20, freq="min"))
    with pytest.raises(ValidationError, match="validation split is empty"):
        chronological_split(times, SplitSpec(gap=timedelta(minutes=10)))
    with pytest.raises(ValidationError):
        SplitSpec(train=0.9, valid=0.2)


def test_forward_volatility_matches_a_direct_computation():
    rng = np.random.default_rng(3)
    minutes = pd.date_range(T0, periods=60, freq="min")
    keep = rng.random(60) < 0.8
    closes = pd.DataFrame(
        {
            "symbol": "AAA",
            "event_timestamp": minutes[keep],
            "close": 100 * np.exp(np.cumsum(rng.normal(0, 0.001, keep.sum()))),
        }
    )
    rows = pd.DataFrame({"symbol": ["AAA"] * 40 + ["ZZZ"], "event_timestamp": [*minutes[:40], T0]})
    out = add_forward_volatility(rows, closes, timedelta(minutes=15), min_returns=5)
    for i in range(40):
        t = rows["event_timestamp"][i]
        after = closes[
            (closes.event_timestamp > t) & (closes.event_timestamp <= t + pd.Timedelta(minutes=15))
        ]
        before = closes[closes.event_timestamp <= t]
        if before.empty or len(after) < 5:
            assert np.isnan(out["forward_vol"][i])
            continue
        prices = np.log(np.r_[before["close"].iloc[-1], after["close"].to_numpy()])
        assert out["forward_vol"][i] == pytest.approx(np.std(np.diff(prices), ddof=1), rel=1e-9)
    assert np.isnan(out["forward_vol"].iloc[-1])  # unknown symbol


def test_minute_closes_take_the_last_as_of_trade_row_of_each_minute():
    bars = pd.DataFrame(
        {
            "symbol": "AAA",
            "event_timestamp": [T0 + pd.Timedelta(seconds=s) for s in (5, 30, 60, 61, 119)],
            "close": [1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )
    closes = minute_closes(bars)
    assert closes["event_timestamp"].tolist() == [
        T0 + pd.Timedelta(minutes=1),
        T0 + pd.Timedelta(minutes=2),
    ]
    assert closes["close"].tolist() == [3.0, 5.0]


def test_regime_terciles_come_from_the_given_rows_only():
    train = pd.Series(np.arange(1.0, 10.0))
    edges = regime_edges(train)
    classes = regime_classes(pd.Series([0.0, 4.0, 100.0, np.nan]), edges)
    assert classes.tolist()[:3] == [0, 1, 2] and classes.isna().tolist()[3]


def test_model_inputs_express_levels_against_close_and_log_volumes():
    frame = pd.DataFrame(
        {
            "rolling_1m__close_1m": [100.0, 50.0],
            "rolling_1m__vwap_1m": [101.0, 49.0],
            "rolling_1m__trade_count_1m": [0, 9],
            "rolling_1m__volume_ratio": [1.5, np.inf],
        }
    )
    columns = list(frame.columns)
    out = model_inputs(frame, columns)
    assert (
        list(out.columns)
        == input_names(columns)
        == [
            "rolling_1m__vwap_1m_rel_close",
            "rolling_1m__trade_count_1m_log1p",
            "rolling_1m__volume_ratio",
        ]
    )
    assert out["rolling_1m__vwap_1m_rel_close"].tolist() == pytest.approx([0.01, -0.02])
    assert out["rolling_1m__trade_count_1m_log1p"].tolist() == pytest.approx([0.0, np.log(10)])
    assert np.isnan(out["rolling_1m__volume_ratio"][1])  # inf is not a value a model can use
    with pytest.raises(ValidationError, match="rolling_1m__close_1m"):
        model_inputs(frame.drop(columns="rolling_1m__close_1m"), ["rolling_1m__vwap_1m"])
    with pytest.raises(ValidationError, match="missing"):
        model_inputs(frame, ["rolling_1m__sma_5"])

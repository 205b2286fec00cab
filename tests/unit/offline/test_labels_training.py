"""Labels whose horizon has not passed are null, and training leaves those rows out."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

from models.data import add_forward_volatility
from models.data import chronological_split
from models.training.direction import fit_direction
from models.training.forward_return import fit_forward_return
from tests.unit.models.test_training import SPEC
from tests.unit.models.test_training import dataset
from tests.unit.models.test_training import frame

T0 = pd.Timestamp("2013-01-02 14:30", tz="UTC")


def test_forward_volatility_is_null_until_a_bar_reaches_its_horizon() -> None:
    rng = np.random.default_rng(4)
    minutes = pd.date_range(T0, periods=40, freq="min")
    closes = pd.DataFrame(
        {
            "symbol": "AAA",
            "event_timestamp": minutes,
            "close": 100 * np.exp(np.cumsum(rng.normal(0, 0.001, 40))),
        }
    )
    rows = pd.DataFrame({"symbol": "AAA", "event_timestamp": minutes[:30]})
    out = add_forward_volatility(rows, closes, timedelta(minutes=15))
    # The last close is 15:09: rows up to 14:54 have their 15 minutes, later ones wait.
    assert out["forward_vol"].notna().tolist() == [True] * 25 + [False] * 5
    # The last close is of the minute ending 15:09, which was seen only to 15:08:30.
    bars = closes.assign(event_timestamp=closes["event_timestamp"] - pd.Timedelta(seconds=30))
    out = add_forward_volatility(rows, closes, timedelta(minutes=15), seen=bars)
    assert out["forward_vol"].notna().tolist() == [True] * 24 + [False] * 6


def test_training_leaves_out_the_rows_whose_labels_are_null() -> None:
    data = frame(n=1600, leak=1.0)
    pending = data["event_timestamp"] >= data["event_timestamp"].max() - pd.Timedelta(minutes=4)
    data.loc[pending, ["forward_return", "forward_vol"]] = np.nan
    data["direction"] = data["direction"].astype("Int8")
    data.loc[pending, "direction"] = pd.NA
    split = chronological_split(data["event_timestamp"], SPEC)
    assert (split.test & pending.to_numpy()).sum() == 10  # the null labels are test rows
    labelled = int((split.test & ~pending.to_numpy()).sum())
    for fit in (fit_forward_return, fit_direction):
        metrics = fit(dataset(data), SPEC, seed=0).metrics
        assert metrics["model.test.rows"] == labelled
        assert all(np.isfinite(v) for k, v in metrics.items() if not k.endswith(".auc"))

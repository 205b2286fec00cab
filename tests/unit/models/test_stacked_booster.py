"""XGBoost's binary booster walked as stacked arrays against XGBoost's own predict."""

from __future__ import annotations

import numpy as np
import pytest
import xgboost

from models.forest import stacked_booster


def _data(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 6))
    y = (np.nan_to_num(x[:, 0]) + 0.5 * np.nan_to_num(x[:, 1]) + rng.normal(0, 0.5, rows)) > 0.3
    x[rng.random(x.shape) < 0.08] = np.nan  # missing in training: nodes learn a default side
    return x, y.astype(int)


@pytest.fixture(scope="module")
def model() -> xgboost.XGBClassifier:
    x, y = _data(3000, 0)
    return xgboost.XGBClassifier(n_estimators=60, max_depth=4, n_jobs=1).fit(x, y)


@pytest.mark.parametrize("trees", [(0, 0), (0, 25)])
def test_probabilities_are_xgboosts_within_a_float32_ulp(model, trees):
    booster = model.get_booster()
    stacked = stacked_booster(booster, trees)
    assert stacked is not None
    x, _ = _data(2000, 1)
    x[0] = np.nan  # every feature missing
    got = stacked.predict(x)
    want = booster.inplace_predict(x, iteration_range=trees)
    assert got.dtype == want.dtype == np.float32
    ulps = np.abs(got.view(np.int32).astype(np.int64) - want.view(np.int32))
    assert ulps.max() <= 2 and (ulps == 0).mean() > 0.99
    np.testing.assert_array_equal(stacked.predict(x[5:6]), got[5:6])  # one row as in a batch


def test_other_objectives_are_left_to_xgboost():
    x, y = _data(500, 2)
    regression = xgboost.XGBRegressor(n_estimators=5, max_depth=2, n_jobs=1).fit(x, y)
    assert stacked_booster(regression.get_booster(), (0, 0)) is None
    three = xgboost.XGBClassifier(n_estimators=5, max_depth=2, n_jobs=1).fit(x, (y + (x[:, 2] > 0)))
    assert stacked_booster(three.get_booster(), (0, 0)) is None

"""The Random Forest regression of the forward return, and the native scorers Predict calls."""

from __future__ import annotations

import numpy as np

from models.inputs import model_inputs
from models.pyfunc import FeatureModel
from models.pyfunc import matrix_scorer
from models.pyfunc import score
from models.training.direction import fit_direction
from models.training.forward_return import LAST_RETURN
from models.training.forward_return import fit_forward_return
from models.training.forward_return import regression_metrics
from tests.unit.models.test_training import SPEC
from tests.unit.models.test_training import dataset
from tests.unit.models.test_training import frame


def test_regression_metrics_against_a_direct_computation():
    y = np.array([0.01, -0.02, 0.0, 0.03])
    p = np.array([0.0, -0.01, 0.01, 0.02])
    m = regression_metrics(y, p)
    assert m["rmse"] == np.sqrt(np.mean((y - p) ** 2))
    assert m["mae"] == np.mean(np.abs(y - p))
    assert np.isclose(m["r2"], 1 - np.sum((y - p) ** 2) / np.sum((y - y.mean()) ** 2))


def test_forest_beats_both_baselines_on_a_leak_and_reports_every_metric():
    data = frame(n=1600, leak=1.0)
    data[LAST_RETURN] = np.random.default_rng(3).normal(0, 0.002, len(data))
    trained = fit_forward_return(dataset(data), SPEC, seed=0)
    m = trained.metrics
    for who in ("model", "baseline_zero", "baseline_last_return"):
        for metric in ("rmse", "mae", "r2"):
            assert f"{who}.test.{metric}" in m and f"{who}.valid.{metric}" in m
    assert m["model.test.rmse"] < m["baseline_zero.test.rmse"]
    assert m["model.test.rmse"] < m["baseline_last_return.test.rmse"]
    assert m["model.test.r2"] > 0.1 > m["baseline_zero.test.r2"]


def test_forest_on_noise_does_not_beat_the_zero_return():
    trained = fit_forward_return(dataset(frame(n=1600, leak=0.0)), SPEC, seed=0)
    m = trained.metrics
    assert m["model.test.r2"] < 0.05
    assert m["model.test.rmse"] > 0.95 * m["baseline_zero.test.rmse"]


def test_matrix_scorers_equal_the_registered_models_predict():
    data = frame(n=800, leak=1.0)
    data.loc[data.index[::7], "rolling_1m__sma_5"] = np.nan  # missing features too
    for trained in (
        fit_forward_return(dataset(data), SPEC, seed=0),
        fit_direction(dataset(data), SPEC, seed=0),
    ):
        columns = trained.config.feature_columns
        raw = data[list(columns)].to_numpy(dtype="float64")
        wrapper = trained.wrapper
        assert isinstance(wrapper, FeatureModel)
        scorer, runtime = wrapper.native_scorer(columns)
        assert runtime == trained.config.flavor
        inputs = model_inputs(data, columns)  # the pandas transform, the native model's own API
        expected = (
            trained.native.predict(inputs.to_numpy())
            if trained.kind == "rf"
            else trained.native.predict_proba(inputs)[:, 1]
        )
        np.testing.assert_allclose(scorer(raw), expected, rtol=1e-6)
        expected = scorer(raw)
        np.testing.assert_array_equal(matrix_scorer(trained.native, trained.config)(raw), expected)
        np.testing.assert_array_equal(score(trained.native, trained.config, data), expected)


def test_stacked_forest_predicts_what_scikit_learn_does_missing_values_included():
    from sklearn.ensemble import RandomForestRegressor

    from models.forest import StackedForest
    from models.training.forward_return import rf_params

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 6))
    x[rng.random(x.shape) < 0.05] = np.nan  # missing in training: nodes learn where NaN goes
    y = np.nan_to_num(x[:, 0]) * 0.1 + rng.normal(0, 0.01, 2000)
    forest = RandomForestRegressor(**rf_params(0)).fit(x, y)
    test = rng.normal(size=(300, 6))
    test[rng.random(test.shape) < 0.1] = np.nan
    stacked = StackedForest(forest)
    np.testing.assert_array_equal(stacked.predict(test), forest.predict(test))
    np.testing.assert_array_equal(stacked.predict(test[:1]), forest.predict(test[:1]))

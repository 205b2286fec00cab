"""The streaming detector: what it flags, what it ignores, and its precision/recall per shape."""

from __future__ import annotations

import math
from datetime import timedelta

import click
import numpy as np
import pandas as pd
import pytest

from featurestore.cli.score import parse_features
from featurestore.definitions import Feature
from featurestore.definitions import FeatureView
from featurestore.definitions import SourceTable
from featurestore.errors import NotFoundError
from featurestore.errors import ValidationError
from models.anomaly.detector import DetectorParams
from models.anomaly.detector import SeriesState
from models.anomaly.detector import StreamingDetector
from models.anomaly.evaluation import ShapeResult
from models.anomaly.evaluation import evaluate_shapes
from models.anomaly.model import DetectorConfig
from models.anomaly.model import DetectorModel
from models.anomaly.model import model_name_for
from models.anomaly.model import score_frame
from models.anomaly.shapes import make_series
from models.training.anomaly import detect_season
from models.training.anomaly import fit_detector

T0 = pd.Timestamp("2024-03-01", tz="UTC")


def run(params: DetectorParams, values: np.ndarray) -> list[bool]:
    detector, state = StreamingDetector(params), SeriesState()
    flags = []
    for i, value in enumerate(values):
        result = detector.update(state, i, float(value))
        flags.append(bool(result and result.flagged))
    return flags


def test_clean_noise_is_not_flagged_and_a_spike_is_without_moving_the_state():
    rng = np.random.default_rng(3)
    values = 100 + rng.normal(0, 2, 1500)
    assert not any(run(DetectorParams(), values))
    values[700] += 16  # 8 sigma
    flags = run(DetectorParams(), values)
    assert np.flatnonzero(flags).tolist() == [700]


def test_a_level_shift_is_flagged_at_once_and_then_becomes_normal():
    rng = np.random.default_rng(4)
    values = 50 + rng.normal(0, 1, 800)
    values[400:] += 6
    flagged = np.flatnonzero(run(DetectorParams(), values))
    assert flagged.size and 400 <= flagged[0] <= 403 and flagged.max() <= 410


def test_a_new_trend_is_confirmed_and_then_followed():
    rng = np.random.default_rng(5)
    values = 50 + rng.normal(0, 1, 800)
    values[400:] += 0.3 * np.arange(1, 401)
    flagged = np.flatnonzero(run(DetectorParams(), values))
    assert flagged.size and 400 <= flagged[0] <= 430
    assert (flagged > 480).sum() <= 2  # the ramp is the new normal


def test_old_repeated_and_missing_values_are_ignored():
    detector, state = StreamingDetector(DetectorParams(warmup=3)), SeriesState()
    assert detector.update(state, 10, 1.0) is not None
    assert detector.update(state, 10, 5.0) is None  # not newer
    assert detector.update(state, 9, 5.0) is None  # older
    assert detector.update(state, 11, math.nan) is None
    assert state.last_step == 10 and len(state.warm) == 1


def test_bad_parameters_are_refused_naming_the_parameter():
    with pytest.raises(ValidationError, match="alpha") as caught:
        DetectorParams(alpha=0.0)
    assert caught.value.field == "alpha"
    with pytest.raises(ValidationError, match="season"):
        DetectorParams(season=1)
    with pytest.raises(ValidationError, match="unknown detector parameters"):
        DetectorParams.from_dict({"alpha": 0.1, "bogus": 1})
    assert DetectorParams.from_dict(DetectorParams(season=7).to_dict()) == DetectorParams(season=7)


BOUNDS = {  # shape: (least precision, least recall); bench/RESULTS.md has the full run
    "spike": (0.9, 0.85),
    "level_shift": (0.55, 0.9),
    "trend_change": (0.25, 0.8),
    "seasonality_break": (0.3, 0.85),
}


def within_bounds(results: list[ShapeResult]) -> bool:
    for r in results:
        if r.shape == "none":
            if r.false_alarms_per_1k > 0.5:
                return False
        elif r.precision < BOUNDS[r.shape][0] or r.recall < BOUNDS[r.shape][1]:
            return False
    return True


def test_precision_and_recall_per_injected_shape_and_a_broken_detector_fails_them():
    results = evaluate_shapes(DetectorParams(season=60), series=8, seed=1)
    assert [r.shape for r in results] == [*BOUNDS, "none"]
    assert within_bounds(results), results
    # The bounds have power: a detector that never fires, or fires at noise, fails them.
    deaf = evaluate_shapes(DetectorParams(season=60, threshold=50, cusum_limit=500), series=3)
    assert not within_bounds(deaf)
    jumpy = evaluate_shapes(DetectorParams(season=60, threshold=1.5, cusum_limit=1), series=3)
    assert not within_bounds(jumpy)


def frame_of(series: dict[str, np.ndarray]) -> pd.DataFrame:
    parts = [
        pd.DataFrame(
            {
                "entity": name,
                "event_timestamp": T0 + pd.to_timedelta(np.arange(len(v)), unit="min"),
                "value_mean_1m": v,
            }
        )
        for name, v in series.items()
    ]
    return pd.concat(parts).sample(frac=1.0, random_state=0).reset_index(drop=True)


def test_the_registered_form_scores_each_entity_on_its_own_in_time_order():
    rng = np.random.default_rng(6)
    a, b = 10 + rng.normal(0, 1, 300), 1000 + rng.normal(0, 50, 300)
    a[200] += 9
    config = DetectorConfig("metric_rolling_1m", "entity", ("value_mean_1m",), DetectorParams())
    rows = frame_of({"a": a, "b": b})  # interleaved and shuffled
    scores = DetectorModel(config).predict(None, rows)
    alone = DetectorModel(config).predict(None, frame_of({"a": a}))
    mine = rows["entity"] == "a"
    got = pd.Series(scores[mine], index=rows["event_timestamp"][mine])
    want = pd.Series(alone, index=frame_of({"a": a})["event_timestamp"])
    pd.testing.assert_series_equal(got.sort_index(), want.sort_index(), check_names=False)
    flagged = rows[scores >= config.params.threshold]
    assert flagged["entity"].tolist() == ["a"]
    assert flagged["event_timestamp"].tolist() == [T0 + timedelta(minutes=200)]
    # Scoring on from saved states equals scoring the whole series at once.
    states: dict[tuple[str, str], SeriesState] = {}
    head = frame_of({"a": a[:150]})
    list(score_frame(config, head, states))
    tail = frame_of({"a": a})[lambda f: f["event_timestamp"] >= T0 + timedelta(minutes=150)]
    later = {r.index: r.score for r in score_frame(config, tail.reset_index(drop=True), states)}
    assert max(later.values()) == pytest.approx(alone.max())


def test_rows_without_the_entity_key_or_a_feature_are_refused():
    config = DetectorConfig("v", "entity", ("x",), DetectorParams())
    with pytest.raises(ValidationError, match="'entity'"):
        list(score_frame(config, pd.DataFrame({"event_timestamp": [T0], "x": [1.0]}), {}))
    rows = pd.DataFrame({"entity": ["a"], "event_timestamp": [T0]})
    with pytest.raises(ValidationError, match="lack feature 'x'"):
        list(score_frame(config, rows, {}))
    with pytest.raises(ValidationError, match="no feature"):
        DetectorConfig("v", "entity", (), DetectorParams())


def test_model_names_are_per_view():
    assert model_name_for("metric_rolling_1m") == "featurestore-anomaly-metric_rolling_1m"
    assert model_name_for("rolling_1m") == "featurestore-anomaly"  # the first, market model


def test_fitting_finds_the_season_and_the_view_s_step():
    rng = np.random.default_rng(7)
    seasonal = [make_series(rng, "none", steps=600, season=45) for _ in range(6)]
    with_cycle = [s.values for s in seasonal if s.season]
    without = [s.values for s in seasonal if not s.season]
    assert with_cycle and without
    assert detect_season(with_cycle) == 45
    assert detect_season(without) == 0
    view = FeatureView(
        "metric_rolling_1m", ("metric_entity",), (Feature("value_mean_1m"),), timedelta(0),
        SourceTable("metric_rolling_1m"),
    )  # fmt: skip
    rows = frame_of({f"e{i}": v for i, v in enumerate(with_cycle)})
    config, metrics = fit_detector(rows, view, "entity", ["value_mean_1m"])
    assert config.params.season == 45 and config.params.step_s == 60.0
    assert metrics["model.train.flagged_share"] < 0.01
    with pytest.raises(NotFoundError, match="value_median"):
        fit_detector(rows, view, "entity", ["value_median"])


def test_feature_options_are_parsed_per_view():
    assert parse_features(("m=a,b", "m=c", "v=x")) == {"m": ("a", "b", "c"), "v": ("x",)}
    for bad in ("m", "=a", "m="):
        with pytest.raises(click.UsageError, match="VIEW=FEATURE"):
            parse_features((bad,))


def test_the_registered_form_saves_and_loads_as_mlflow_does(tmp_path, monkeypatch):
    from models._mlflow import mlflow
    from models._mlflow import quiet
    from models.registered import MODEL_CODE
    from tests.unit.models.logged import load_without_pickles

    rng = np.random.default_rng(8)
    values = 10 + rng.normal(0, 1, 200)
    values[150] += 9
    config = DetectorConfig("metric_rolling_1m", "entity", ("value_mean_1m",), DetectorParams())
    rows = frame_of({"a": values})
    with quiet():
        mlflow.pyfunc.save_model(
            tmp_path / "model",
            python_model=MODEL_CODE,
            model_config=DetectorModel(config).model_config(),
            input_example=rows.head(3),
            pip_requirements=["numpy"],
        )
        loaded = load_without_pickles(tmp_path / "model", monkeypatch)
    assert loaded.unwrap_python_model().config == config
    np.testing.assert_array_equal(loaded.predict(rows), DetectorModel(config).predict(None, rows))


def test_score_refuses_options_that_do_not_fit_its_views():
    from click.testing import CliRunner

    from featurestore.cli import main

    runner = CliRunner()
    two = runner.invoke(main, ["score", "--follow", "--view", "a", "--view", "b", "--model", "m"])
    assert two.exit_code == 2 and "exactly one --view" in two.output
    other = runner.invoke(main, ["score", "--follow", "--view", "a", "--feature", "b=x"])
    assert other.exit_code == 2 and "views not scored: b" in other.output

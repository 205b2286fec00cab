"""Drift of a model the user trained and registered in MLflow, not ``featurestore train``.

Its inputs are its signature's ``view__feature`` columns, its reference the one it logged with
``models.tracking.log_drift_reference``, its live rows those of the first view it reads; the
monitor finds it among the registry's champions without being told its name.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta

import pandas as pd
import pytest
from click.testing import CliRunner
from opentelemetry.sdk.metrics import MeterProvider

from bench.user_models import register_booster
from featurestore.cli import main
from featurestore.errors import NotFoundError
from featurestore.errors import ValidationError
from featurestore.monitor import Monitor
from featurestore.offline import TrainingRequest
from models.data.source import DataWindow
from models.data.source import latest_time
from models.data.source import sample_times
from models.monitoring import measure_drift
from models.tracking import log_drift_reference
from tests.integration.models.conftest import ModelsWorld

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FEATURES = ["bars_1m:volume", "bars_1m:trade_count", "bars_1m:avg_trade_size"]


def _inputs(world: ModelsWorld) -> pd.DataFrame:
    """The bars' features over their last hour, as an export with full names gives them."""
    bars = world.definitions.view("bars_1m")
    end = latest_time(world.context.dsn, bars)
    assert end is not None
    samples = sample_times(world.context.dsn, bars, DataWindow(end - timedelta(hours=1), end))
    request = TrainingRequest(features=FEATURES, full_feature_names=True)
    frame = world.context.store.to_pandas(samples, request)
    return frame[[c for c in frame.columns if "__" in c]].astype("float64")


def _register(world: ModelsWorld, name: str, x: pd.DataFrame, *, reference: bool) -> None:
    """Log an XGBoost booster as a user would (MLflow's own flavor); alias champion -> 1."""
    import xgboost as xgb

    y = x["bars_1m__volume"] > x["bars_1m__volume"].median()
    booster = xgb.train({"max_depth": 2}, xgb.DMatrix(x, label=y), 5)
    experiment = world.options.experiment
    register_booster(world.settings, name, experiment, booster, x, drift_reference=reference)


@pytest.fixture(scope="module")
def own(world: ModelsWorld) -> Iterator[tuple[str, str, pd.DataFrame]]:
    """Two models of the user's: one that logged a drift reference, one that did not."""
    x = _inputs(world)
    watched, unwatched = f"{world.options.name_prefix}own", f"{world.options.name_prefix}noref"
    _register(world, watched, x, reference=True)
    _register(world, unwatched, x, reference=False)
    yield watched, unwatched, x
    for name in (watched, unwatched):
        world.registry.delete(name)


def test_a_model_of_the_user_s_own_is_measured_on_the_rows_of_the_view_it_reads(
    world: ModelsWorld, own: tuple[str, str, pd.DataFrame]
) -> None:
    watched, _, x = own
    store, dsn = world.context.store, world.context.dsn
    report = measure_drift(store, dsn, world.registry, watched, window=timedelta(hours=1))
    # The live window is the reference's own rows: the bars' last hour (not rolling_1m's
    # rows, which training samples), features as they are (no training transform).
    assert sorted(f.feature for f in report.features) == sorted(x.columns)
    assert all(f.live_rows == len(x) for f in report.features)
    assert all(f.psi == pytest.approx(0.0, abs=1e-9) for f in report.features), report.features


def test_a_model_without_a_reference_says_how_to_log_one(
    world: ModelsWorld, own: tuple[str, str, pd.DataFrame]
) -> None:
    _, unwatched, _ = own
    store, dsn = world.context.store, world.context.dsn
    with pytest.raises(NotFoundError, match=r"no drift reference .*log_drift_reference"):
        measure_drift(store, dsn, world.registry, unwatched)
    with pytest.raises(ValidationError, match="no active MLflow run"):
        log_drift_reference(own[2])


def test_the_monitor_watches_every_champion_and_passes_over_one_it_cannot_measure(
    world: ModelsWorld, own: tuple[str, str, pd.DataFrame], caplog: pytest.LogCaptureFixture
) -> None:
    watched, unwatched, x = own
    champions = world.registry.with_alias()
    assert {watched, unwatched, world.reports["anomaly"].logged.ref.name} <= set(champions)
    settings = world.settings.model_copy(
        update={"metrics": world.settings.metrics.model_copy(update={"drift_models": None})}
    )
    monitor = Monitor(settings, MeterProvider(), project=world.definitions.project)
    with caplog.at_level(logging.INFO, logger="featurestore.monitor"):
        monitor.measure_drift()
        monitor.measure_drift()
    assert {key[2] for key in monitor.psi if key[0] == watched} == set(x.columns)
    anomaly = world.reports["anomaly"].logged.ref.name
    assert any(key[0] == anomaly for key in monitor.psi)  # featurestore train's, as before
    assert not any(key[0] == unwatched for key in monitor.psi)
    passed_over = [r for r in caplog.records if r.getMessage().startswith(f"drift of {unwatched}")]
    assert len(passed_over) == 1, [r.getMessage() for r in passed_over]  # once, not each pass
    assert passed_over[0].levelno == logging.INFO
    assert "not watched" in passed_over[0].getMessage()


def test_the_drift_command_measures_every_champion_without_a_model_named(
    world: ModelsWorld, own: tuple[str, str, pd.DataFrame]
) -> None:
    watched, unwatched, x = own
    args = ["drift", "--project", world.definitions.project, "--no-log-mlflow"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert f"{watched} version 1: " in result.output
    assert all(column in result.output for column in x.columns)
    assert f"{unwatched}: not measured: models:/{unwatched}/1 has no drift reference" in (
        result.output
    )
    anomaly = world.reports["anomaly"].logged.ref.name
    assert f"{anomaly} version " in result.output  # featurestore train's, as before
    # Named, a model that cannot be measured is an error of the command.
    named = CliRunner().invoke(main, [*args, "--model", unwatched])
    assert named.exit_code == 1 and "has no drift reference" in named.output

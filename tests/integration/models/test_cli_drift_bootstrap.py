"""featurestore train, drift and score paths, drift on shifted data, the first-models bootstrap."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import numpy as np
import psycopg
import pytest
from click.testing import CliRunner
from psycopg import sql

from featurestore.cli import main
from featurestore.errors import ValidationError
from featurestore.offline.tables import table_identifier
from featurestore.stack.feed import FeedOptions
from models.bootstrap import ensure_first_models
from models.data.source import earliest_time
from models.demo import write_features
from models.follow import follow_table
from models.monitoring import measure_drift
from models.publish import AnomalyPublisher
from models.registry import CHAMPION
from models.scoring import AnomalyScorer
from models.training.run import TrainReport
from tests.integration.models.conftest import ModelsWorld

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_train_command_registers_a_new_version(world: ModelsWorld):
    result = CliRunner().invoke(
        main,
        ["train", "direction", "--project", world.definitions.project, "--seed", "4",
         "--name-prefix", world.options.name_prefix, "--experiment", world.options.experiment],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    name = f"{world.options.name_prefix}direction"
    assert f"{name} version 2" in result.output  # version 1 is the fixture's champion
    assert "model.test.auc" in result.output and "baseline_majority.test.auc" in result.output
    champion = world.registry.alias(name, CHAMPION)
    assert champion is not None and champion.version == "1"  # auto: a champion existed


def test_drift_is_low_on_the_training_period_and_flags_shifted_live_rows(world: ModelsWorld):
    name = world.reports["anomaly"].logged.ref.name
    store, dsn = world.context.store, world.context.dsn
    stable = measure_drift(store, dsn, world.registry, name, window=timedelta(hours=1))
    assert not stable.drifted, [(f.feature, f.psi) for f in stable.features]

    # the next hour, where every symbol trades 5x its size: volumes and sizes drift
    trades = world.demo.trades
    later = trades[trades["event_time"] >= trades["event_time"].max() - timedelta(hours=1)]
    later = later.assign(
        event_time=later["event_time"] + timedelta(hours=1), size=later["size"] * 5
    )
    write_features(dsn, world.definitions, later)
    try:
        result = CliRunner().invoke(
            main,
            ["drift", "--model", name, "--project", world.definitions.project,
             "--window-minutes", "30", "--fail-on-drift"],
        )  # fmt: skip
        assert result.exit_code == 3, result.output
        assert "rolling_1m__avg_trade_size_1m_log1p" in result.output and "DRIFT" in result.output
        assert "logged to MLflow run" in result.output
        assert "Downloading artifacts" not in result.output  # MLflow's progress bars are off
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for view in world.definitions.views:
                conn.execute(
                    sql.SQL("DELETE FROM {} WHERE event_timestamp > %s").format(
                        table_identifier(view.source.table)
                    ),
                    (trades["event_time"].max().ceil("min"),),
                )


def test_drift_leaves_out_the_rows_whose_windows_are_still_filling(world: ModelsWorld):
    name = world.reports["anomaly"].logged.ref.name
    store, dsn = world.context.store, world.context.dsn
    first = earliest_time(dsn, world.definitions.view("rolling_1m"))
    assert first is not None
    minute = timedelta(minutes=1)
    with pytest.raises(ValidationError, match=r"full windows .* fill at"):
        measure_drift(store, dsn, world.registry, name, end=first + 15 * minute)
    with pytest.raises(ValidationError, match=r"live rows .* 100 needed for 10 bins"):
        measure_drift(store, dsn, world.registry, name, end=first + 25 * minute)  # 6 minutes
    report = measure_drift(store, dsn, world.registry, name, end=first + 50 * minute)
    assert report.start == first + 20 * minute  # the log's first 20 minutes are left out
    symbols = world.demo.trades["symbol"].nunique()
    assert 100 <= report.features[0].live_rows <= 31 * symbols


def test_follow_mode_scores_rows_as_they_are_stored(world: ModelsWorld, anomalies_topic: str):
    name = world.reports["anomaly"].logged.ref.name
    scorer = AnomalyScorer(world.registry, name, store=world.context.store)
    publisher = AnomalyPublisher.from_settings(world.settings, anomalies_topic)
    view = world.definitions.view("rolling_1m")
    stop = threading.Event()
    seen: list[tuple[int, int]] = []

    def on_batch(rows: int, found: int) -> None:
        seen.append((rows, found))
        stop.set()

    start = world.demo.trades["event_time"].min().to_pydatetime() - timedelta(days=1)
    worker = threading.Thread(
        target=follow_table,
        args=(scorer, publisher, world.context.dsn, view),
        kwargs={"since": start, "poll_s": 0.2, "stop": stop, "on_batch": on_batch},
    )
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive()
    ((rows, found),) = seen
    assert rows >= 8 * 200 and found > 0
    assert publisher.delivered == found


def test_bootstrap_trains_missing_first_models_once(stack):
    run = uuid.uuid4().hex[:8]
    from models.registry import ModelRegistry

    registry = ModelRegistry(stack.mlflow.tracking_uri)
    # what `make run` passes: the feed's synthetic market (a small one here)
    feed = FeedOptions(rate=40.0, symbols=6, seed=3)

    def bootstrap() -> list[TrainReport]:
        # project=None: the demo data, whatever the shared stack was fed
        return ensure_first_models(
            stack, kinds=("anomaly", "direction"), name_prefix=f"boot-{run}-",
            experiment=f"boot-{run}", table_prefix=f"b{run}_", project=None,
            market=feed.market(datetime.now(UTC)),
        )  # fmt: skip

    try:
        first = bootstrap()
        assert sorted(r.kind for r in first) == ["anomaly", "direction"]
        assert all(r.logged.promoted for r in first)
        assert bootstrap() == []
        champion = registry.alias(f"boot-{run}-anomaly")
        assert champion is not None
        source = champion.tags["data_source"]
        assert source.startswith("demo: synthetic market (the feed's, 6 symbols at 40 trades/s")
        assert np.isfinite(first[0].metrics["model.all.event_recall"])
    finally:
        for kind in ("anomaly", "direction"):
            if registry.alias(f"boot-{run}-{kind}") is not None:
                registry.delete(f"boot-{run}-{kind}")
        experiment = registry.client.get_experiment_by_name(f"boot-{run}")
        if experiment is not None:
            registry.client.delete_experiment(experiment.experiment_id)
        with psycopg.connect(stack.postgres.dsn, autocommit=True) as conn:
            for view in ("bars_1m", "rolling_1m"):
                conn.execute(
                    sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(f"b{run}_{view}"))
                )

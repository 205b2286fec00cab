"""Models: training time and quality against the baselines, and anomaly scoring throughput.

Two data sets, each turned into offline feature rows (the pandas reference of the processors'
features, in tables of this run) and trained through the point-in-time export:

* real trades: every LEAN file of ../shared/data/market (AIG, BAC, IBM on 3 days, SPY on 1);
* the synthetic demo market with injected anomalies (20 symbols x 390 minutes).

Forecasts (``python -m bench.bench_models forecasts``, also part of the full run): the random
forest regression of the forward return (RMSE, MAE, R² against the zero-return and last-return
baselines) and the LSTM's direction (AUC, accuracy, log loss against the majority and
last-direction baselines, beside the tabular XGBoost direction model), on the test split of the
chronological 60/20/20 split (15-minute purge gaps), both data sets.

Scoring throughput: the champion anomaly model scoring rolling_1m rows, (a) the registered
pyfunc on rows that carry every input, (b) the hook path, where the bars_1m inputs are joined
point in time from PostgreSQL, against (c) the floor: the native IsolationForest's score_samples
on the prepared input matrix. Median of 5 runs each.
"""

from __future__ import annotations

import statistics
import time
import uuid
from typing import Any

import psycopg

from bench.stats import markdown_table
from featurestore.config import Settings
from featurestore.definitions import Definitions
from featurestore.ingest import LeanTradeFile
from featurestore.ingest import market_data_dir
from featurestore.ingest.sources import merge_by_event_time
from featurestore.offline import PostgresOfflineStore
from featurestore.offline import TrainingRequest
from models.demo import demo_definitions
from models.demo import demo_market
from models.demo import trades_frame
from models.demo import write_features
from models.registry import ModelRegistry
from models.scoring import AnomalyScorer
from models.training.run import TrainingContext
from models.training.run import TrainOptions
from models.training.run import TrainReport
from models.training.run import train

KINDS = ["anomaly", "direction", "regime", "rf", "lstm"]
FORECAST_KINDS = ["direction", "rf", "lstm"]
SHOWN = [
    ("direction", "model", "auc"),
    ("direction", "baseline_majority", "auc"),
    ("direction", "baseline_last_direction", "auc"),
    ("direction", "model", "accuracy"),
    ("direction", "baseline_majority", "accuracy"),
    ("direction", "baseline_last_direction", "accuracy"),
    ("direction", "model", "log_loss"),
    ("direction", "baseline_majority", "log_loss"),
    ("regime", "model", "auc"),
    ("regime", "baseline_majority", "auc"),
    ("regime", "baseline_persistence", "auc"),
    ("regime", "model", "accuracy"),
    ("regime", "baseline_persistence", "accuracy"),
    ("regime", "model", "log_loss"),
    ("regime", "baseline_persistence", "log_loss"),
    *((k, "model", m) for k in ("lstm",) for m in ("auc", "accuracy", "log_loss")),
]
FORECASTS = [
    *(
        ("rf", who, metric)
        for metric in ("rmse", "mae", "r2")
        for who in ("model", "baseline_zero", "baseline_last_return")
    ),
    *(
        (kind, who, metric)
        for metric in ("auc", "accuracy", "log_loss")
        for kind, who in (
            ("lstm", "model"),
            ("direction", "model"),
            ("lstm", "baseline_majority"),
            ("lstm", "baseline_last_direction"),
        )
    ),
]


def _median(fn, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def _train(settings: Settings, label: str, trades, injections, run: str, kinds=KINDS):
    defs = demo_definitions(f"bench_models_{label}_{run}", f"bm{run}_{label}_")
    began = time.perf_counter()
    rows = write_features(settings.postgres.dsn, defs, trades)
    features_s = time.perf_counter() - began
    context = TrainingContext.from_settings(settings, defs)
    options = TrainOptions(
        seed=0, name_prefix=f"bench-{run}-{label}-", experiment=f"bench-models-{run}",
        injections=injections,
    )  # fmt: skip
    reports = {r.kind: r for r in train(kinds, context, options)}
    return defs, context, reports, rows, features_s


def _cleanup(
    settings: Settings, registry: ModelRegistry, all_reports, all_defs, experiment: str
) -> None:
    for reports in all_reports:
        for report in reports.values():
            registry.delete(report.logged.ref.name)
    found = registry.client.get_experiment_by_name(experiment)
    if found is not None:
        registry.client.delete_experiment(found.experiment_id)
    with psycopg.connect(settings.postgres.dsn, autocommit=True) as conn:
        for defs in all_defs:
            for view in defs.views:
                conn.execute(f'DROP TABLE IF EXISTS "{view.source.table}"')


def run(settings: Settings) -> str:
    run_id = uuid.uuid4().hex[:6]
    registry = ModelRegistry(settings.mlflow.tracking_uri)
    began = time.perf_counter()
    data = _data_sets()
    read_s = time.perf_counter() - began
    made: list[Definitions] = []
    reports_all: list[dict[str, TrainReport]] = []
    stores: list[PostgresOfflineStore] = []
    try:
        sets = {}
        for label, (trades, injections) in data.items():
            defs, context, reports, rows, features_s = _train(
                settings, label, trades, injections, run_id
            )
            stores.append(context.store)
            made.append(defs)
            reports_all.append(reports)
            sets[label] = (defs, context, reports, rows, features_s, len(trades))

        out = ["## Training (time per model includes the export, fit and MLflow logging)\n"]
        table = []
        for label, (_, _, reports, rows, _seconds, n_trades) in sets.items():
            for kind, report in reports.items():
                m = report.metrics
                test_rows = m.get("model.test.rows")
                shown = "-" if test_rows is None else f"{test_rows:,.0f}"
                table.append([label, f"{n_trades:,}", f"{rows['rolling_1m']:,}", kind,
                              f"{report.seconds:.1f}", shown])  # fmt: skip
        out.append(markdown_table(
            ["data", "trades", "feature rows", "model", "train s", "test rows"], table
        ))  # fmt: skip
        out.append(
            f"\nReal trades read and validated in {read_s:.1f} s; reference features written in "
            + ", ".join(f"{label} {v[4]:.1f} s" for label, v in sets.items())
            + ".\n\n## Test-split metrics against the baselines\n"
        )
        rows_q = []
        for kind, who, metric in SHOWN:
            cells = [kind, who, metric]
            for label in sets:
                value = sets[label][2][kind].metrics.get(f"{who}.test.{metric}")
                cells.append(f"{value:.4f}" if value is not None else "-")
            rows_q.append(cells)
        anomaly = sets["synthetic"][2]["anomaly"].metrics
        out.append(markdown_table(["model", "who", "metric", *sets], rows_q))
        out.append(
            "\nAnomaly model on the synthetic market (40 injected spikes/bursts), test split: "
            f"precision {anomaly['model.test.precision']:.2f}, event recall "
            f"{anomaly['model.test.event_recall']:.2f}; whole stream: precision "
            f"{anomaly['model.all.precision']:.2f}, event recall "
            f"{anomaly['model.all.event_recall']:.2f}.\n"
        )

        defs, context, reports, *_ = sets["synthetic"]
        name = reports["anomaly"].logged.ref.name
        scorer = AnomalyScorer(registry, name, store=context.store)
        samples = context.store.to_pandas(
            _keys(context, defs), TrainingRequest(feature_service="anomaly_features_v1",
                                                  full_feature_names=True),
        )  # fmt: skip
        full = samples.astype({c: "float64" for c in samples.columns if "__" in c})
        hook_rows = _keys_with_rolling(context, defs)
        model = scorer.current.model
        columns = list(scorer.current.columns)
        native = model.unwrap_python_model()
        from models.inputs import model_inputs

        prepared = model_inputs(full, columns).fillna(dict(native.config.fill_values)).to_numpy()
        forest = native._model
        t_full = _median(lambda: model.predict(full[columns]))
        t_hook = _median(lambda: scorer.scores(hook_rows))
        t_floor = _median(lambda: forest.score_samples(prepared))
        n = len(full)
        out.append("## Anomaly scoring throughput\n")
        hook_n = len(hook_rows)
        floor = n / t_floor
        paths = [
            ("native IsolationForest.score_samples (floor)", n, t_floor),
            ("registered pyfunc, every input in the rows", n, t_full),
            ("scorer hook path (bars inputs joined from PostgreSQL)", hook_n, t_hook),
        ]
        out.append(markdown_table(
            ["path", "rows", "seconds (median of 5)", "rows/s", "x floor"],
            [[p, f"{k:,}", t, f"{k / t:,.0f}", f"{(k / t) / floor:.2f}"] for p, k, t in paths],
        ))  # fmt: skip
        return "\n".join(out)
    finally:
        for store in stores:
            store.close()
        _cleanup(settings, registry, reports_all, made, f"bench-models-{run_id}")


def _data_sets() -> dict[str, tuple[Any, Any]]:
    files = sorted(market_data_dir().glob("*_Trade_Tick.csv.gz"))
    real = trades_frame(merge_by_event_time(LeanTradeFile(p) for p in files))
    demo = demo_market(seed=0, symbols=20, minutes=390, rate=40.0, anomalies=40)
    return {"real": (real, ()), "synthetic": (demo.trades, demo.injections)}


def forecasts(settings: Settings) -> str:
    """The return forest and the LSTM against their baselines (and the XGBoost direction)."""
    import os
    from datetime import UTC
    from datetime import datetime

    run_id = uuid.uuid4().hex[:6]
    registry = ModelRegistry(settings.mlflow.tracking_uri)
    began = datetime.now(UTC)
    load = os.getloadavg()
    made: list[Definitions] = []
    reports_all: list[dict[str, TrainReport]] = []
    sets = {}
    try:
        for label, (trades, injections) in _data_sets().items():
            defs, context, reports, rows, _ = _train(
                settings, label, trades, injections, run_id, FORECAST_KINDS
            )
            context.store.close()
            made.append(defs)
            reports_all.append(reports)
            sets[label] = (reports, rows)
    finally:
        _cleanup(settings, registry, reports_all, made, f"bench-models-{run_id}")
    table = []
    for kind, who, metric in FORECASTS:
        cells = [kind, who, metric]
        for reports, _ in sets.values():
            value = reports[kind].metrics.get(f"{who}.test.{metric}")
            cells.append(f"{value:.6g}" if value is not None else "-")
        table.append(cells)
    timing = [
        [label, kind, f"{rows['rolling_1m']:,}", f"{r.metrics.get('model.test.rows', 0):,.0f}",
         f"{r.seconds:.1f}"]
        for label, (reports, rows) in sets.items()
        for kind, r in reports.items()
    ]  # fmt: skip
    end = os.getloadavg()
    return "\n\n".join(
        [
            "#### Forecasts: the return forest and the LSTM against their baselines",
            f"_{began:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, load average {load[0]:.1f} "
            f"at the start, {end[0]:.1f} at the end; `python -m bench.bench_models forecasts`_",
            "Test split (the last 20% of the time line, after a 15-minute purge gap). rf: "
            "scikit-learn RandomForestRegressor of the 5-minute forward return; baselines: zero "
            "return, and the last 5-minute return (momentum persists). lstm: the direction "
            "(up/down over 5 minutes) from the last 30 rows, NumPy-trained, ONNX-served; "
            "baselines: the training majority and the last minute's direction; the tabular "
            "XGBoost direction model beside it.",
            markdown_table(["model", "who", "metric", *sets], table),
            markdown_table(["data", "model", "feature rows", "test rows", "train s"], timing),
        ]
    )


def _keys(context: TrainingContext, defs):
    from models.data.source import DataWindow
    from models.data.source import sample_times

    return sample_times(context.dsn, defs.view("rolling_1m"), DataWindow())


def _keys_with_rolling(context: TrainingContext, defs):
    from datetime import UTC
    from datetime import datetime

    from models.follow import rows_created_after

    with psycopg.connect(context.dsn) as conn:
        return rows_created_after(conn, defs.view("rolling_1m"), datetime(1970, 1, 1, tzinfo=UTC))


if __name__ == "__main__":
    import sys

    from featurestore.config import load_settings

    settings = load_settings()
    print(forecasts(settings) if sys.argv[1:2] == ["forecasts"] else run(settings))

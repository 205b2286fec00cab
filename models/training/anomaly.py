"""Anomaly models: the IsolationForest of the market view, and the streaming detector of any view.

**The IsolationForest** (``featurestore-anomaly``, trained by ``featurestore train anomaly`` on
the market feature service) scores the feature vectors of closed minutes.

Score: ``-score_samples`` (higher = more anomalous). Threshold: the ``1 - flag_rate`` quantile of
the training rows' scores (98th percentile by default: at 99 % the rows after each price spike,
extreme in several features at once, fill the top and single-feature volume bursts fall below).

Where injected anomalies are known (demo data, tests), each one's window is the injected
minute's row and the 5 rows after it (the 5-bar windows still hold the injected bar); precision
is the share of flagged rows inside a window, recall the share of windows with a flagged row.

**The streaming detector** (:mod:`models.anomaly`; ``featurestore anomalies train --view V``)
watches chosen features of any view, one series per entity, without labels. Fitting it to a view
(:func:`fit_detector`) chooses from the view's stored rows what the view's series need: the
step (the view's slide), whether they have a seasonal cycle and its length (per entity, the
shortest period whose phase means explain at least 0.3 of the variance left by a moving average
of that period, beyond what noise would; the view takes the most common one when a fifth of its
entities have one), and the level smoothing (the smallest of a small grid whose one-step-ahead
error, in each entity's scale, is within 10 % of the least). The thresholds stay those the shapes
evaluation measured (``bench/RESULTS.md``). :func:`register_detector` registers it as the
view's model (:func:`models.anomaly.model_name_for`).
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest

from featurestore.definitions import FeatureView
from models._mlflow import mlflow
from models._mlflow import quiet
from models.anomaly.detector import DetectorParams
from models.anomaly.detector import SeriesState
from models.anomaly.detector import StreamingDetector
from models.anomaly.model import KIND
from models.anomaly.model import DetectorConfig
from models.anomaly.model import DetectorModel
from models.anomaly.model import model_name_for
from models.anomaly.model import score_frame
from models.data import Dataset
from models.data import SplitSpec
from models.data import chronological_split
from models.demo.market import Injection
from models.inputs import model_inputs
from models.pyfunc import ModelConfig
from models.pyfunc import score
from models.registered import MODEL_CODE
from models.registry import CHAMPION
from models.registry import ModelRef
from models.registry import ModelRegistry
from models.tracking import LoggedModel
from models.training.base import TrainedModel
from models.training.base import prefixed
from models.training.metrics import event_precision_recall

__all__ = [
    "EVENT_WINDOW",
    "anomaly_windows",
    "detect_season",
    "fit_anomaly",
    "fit_detector",
    "register_detector",
    "view_step_s",
]

EVENT_WINDOW = timedelta(minutes=5)


def anomaly_windows(
    frame: pd.DataFrame, injections: Sequence[Injection], window: timedelta = EVENT_WINDOW
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: whether it lies in an injected anomaly's window, and that anomaly's index."""
    ids = np.full(len(frame), -1)
    ts = pd.to_datetime(frame["event_timestamp"], utc=True)
    for i, inj in enumerate(injections):
        end = inj.bar_end
        hit = (frame["symbol"] == inj.symbol) & (ts >= end) & (ts <= end + pd.Timedelta(window))
        ids[hit.to_numpy()] = i
    return ids >= 0, ids


def fit_anomaly(
    dataset: Dataset,
    spec: SplitSpec,
    seed: int,
    *,
    flag_rate: float = 0.02,
    injections: Sequence[Injection] | None = None,
) -> TrainedModel:
    """Fit on the train split's rows; threshold from their scores; evaluate where labels exist."""
    frame = dataset.frame
    split = chronological_split(frame["event_timestamp"], spec)
    columns = dataset.feature_columns
    inputs = model_inputs(frame, columns)
    fill = inputs[split.train].median().fillna(0.0)
    params: dict[str, object] = {
        "n_estimators": 200,
        "max_samples": 256,
        "random_state": seed,
        "n_jobs": 1,
    }
    model = IsolationForest(**params)
    model.fit(inputs[split.train].fillna(fill).to_numpy())
    config = ModelConfig(
        "anomaly", "sklearn", columns, fill_values={k: float(v) for k, v in fill.items()}
    )
    scores = score(model, config, frame)
    threshold = float(np.quantile(scores[split.train], 1 - flag_rate))
    metrics = {
        "model.train.flagged_share": float((scores[split.train] >= threshold).mean()),
        "model.test.flagged_share": float((scores[split.test] >= threshold).mean()),
    }
    if injections:
        in_event, ids = anomaly_windows(frame, injections)
        flagged = scores >= threshold
        for part, rows in (
            ("valid", split.valid),
            ("test", split.test),
            ("all", np.ones_like(split.test)),
        ):
            metrics |= prefixed(
                f"model.{part}", event_precision_recall(flagged[rows], in_event[rows], ids[rows])
            )
    params |= {"flag_rate": flag_rate, "threshold": threshold}
    reference = inputs[split.train]
    trained = TrainedModel("anomaly", config, model, metrics, params, reference, dataset, split)
    trained.threshold = threshold
    return trained


_ALPHAS = (0.05, 0.1, 0.2, 0.4)
_MIN_SEASON, _SEASON_PEAK = 6, 0.3


def view_step_s(view: FeatureView) -> float:
    """Seconds between an entity's rows: the view's shortest slide (its tile if none)."""
    if view.stream is None:
        return 60.0
    slides = [a.slide for a in view.stream.aggregations] or [view.stream.tile]
    return min(slides).total_seconds()


def _series(rows: pd.DataFrame, key: str, feature: str, step_s: float) -> list[np.ndarray]:
    """Per entity, the feature's values on the step grid (NaN where no row), gaps filled."""
    out = []
    ts = pd.to_datetime(rows["event_timestamp"], utc=True)
    steps = ((ts - pd.Timestamp(0, tz="UTC")).dt.total_seconds() // step_s).astype("int64")
    frame = pd.DataFrame({"key": rows[key].astype(str), "step": steps, "value": rows[feature]})
    for _, group in frame.dropna().groupby("key"):
        grid = group.set_index("step")["value"].astype("float64")
        grid = grid[~grid.index.duplicated(keep="last")].sort_index()
        full = grid.reindex(range(int(grid.index[0]), int(grid.index[-1]) + 1))
        out.append(full.interpolate(limit_direction="both").to_numpy())
    return out


def _season_strength(values: np.ndarray, period: int) -> float:
    """How much of the series a cycle of ``period`` steps explains, beyond what noise would.

    The series less its centred moving average over ``period`` (which removes that cycle and
    keeps trends and shifts) is split into the mean of each phase and the rest; the strength is
    the phase means' share of the variance, less the share ``period`` means take of pure noise.
    """
    n = len(values)
    kernel = np.ones(period) / period
    trend = np.convolve(values, kernel, mode="valid")
    offset = period // 2
    detrended = values[offset : offset + len(trend)] - trend
    if detrended.size < 2 * period or detrended.var() <= 0:
        return 0.0
    phases = (np.arange(detrended.size) + offset) % period
    means = np.bincount(phases, detrended) / np.bincount(phases)
    explained = 1.0 - float((detrended - means[phases]).var()) / float(detrended.var())
    return explained - period / detrended.size if n else 0.0


def _entity_season(values: np.ndarray, max_season: int) -> int:
    longest = min(max_season, len(values) // 3)
    strengths = {p: _season_strength(values, p) for p in range(_MIN_SEASON, longest + 1)}
    strong = {p: v for p, v in strengths.items() if v >= _SEASON_PEAK}
    if not strong:
        return 0
    # A cycle's multiples explain about as much: take the shortest near the strongest.
    top = max(strong.values())
    shortest = min(p for p, v in strong.items() if v >= 0.9 * top)
    near = [p for p in strong if shortest <= p <= shortest * 1.1]
    return max(near, key=lambda p: strong[p])


def detect_season(series: Sequence[np.ndarray], max_season: int = 240) -> int:
    """The seasonal cycle's length in steps (0: none).

    Each series long enough (three cycles) gets the shortest period whose cycle explains at
    least 0.3 of its variance beyond noise (:func:`_season_strength`); the view's season is the
    most common among them when at least a fifth of the series have one.
    """
    usable = [s for s in series if len(s) >= 3 * _MIN_SEASON]
    found = [_entity_season(np.asarray(s, dtype="float64"), max_season) for s in usable]
    seasonal = [p for p in found if p]
    if not usable or len(seasonal) < max(1, len(usable) / 5):
        return 0
    counts = np.bincount(seasonal)
    return int(counts.argmax())


def _one_step_error(params: DetectorParams, series: Sequence[np.ndarray]) -> float:
    """Median absolute one-step-ahead error, each series in its own noise scale."""
    detector = StreamingDetector(params)
    errors = []
    for values in series:
        state = SeriesState()
        noise = float(np.median(np.abs(np.diff(values)))) or 1.0
        for i, value in enumerate(values):
            result = detector.update(state, i, float(value))
            if result is not None and result.score > 0:
                errors.append(abs(value - result.expected) / noise)
    return float(np.median(errors)) if errors else float("inf")


def fit_detector(
    rows: pd.DataFrame,
    view: FeatureView,
    entity_key: str,
    features: Sequence[str],
    base: DetectorParams | None = None,
) -> tuple[DetectorConfig, dict[str, float]]:
    """The detector of ``view``'s ``features`` fitted to its stored ``rows`` (no labels).

    ``rows`` has the entity key, ``event_timestamp`` and the features. With too few rows to
    tell, the season stays 0 and the level smoothing the default. Returns the configuration
    and what was measured (``model.train.*``).

    Raises:
        ValidationError: a feature is not one of the view's.
    """
    for feature in features:
        view.feature(feature)  # NotFoundError naming the view's features
    step_s = view_step_s(view)
    params = replace(base or DetectorParams(), step_s=step_s)
    series = [s for f in features for s in _series(rows, entity_key, f, step_s)]
    season = detect_season(series)
    params = replace(params, season=season)
    long_enough = [s for s in series if len(s) > params.warmup_steps + 10]
    errors = {a: _one_step_error(replace(params, alpha=a), long_enough) for a in _ALPHAS}
    if long_enough:
        # The smallest smoothing within 10 % of the best: a slower level sees slow changes
        # (a faster one absorbs them), unless the series wander (a random walk needs speed).
        best = min(errors.values())
        params = replace(params, alpha=min(a for a, e in errors.items() if e <= 1.1 * best))
    config = DetectorConfig(view.name, entity_key, tuple(features), params)
    scored = list(score_frame(config, rows.reset_index(drop=True), {}))
    metrics = {
        "model.train.rows": float(len(rows)),
        "model.train.entities": float(rows[entity_key].nunique()) if len(rows) else 0.0,
        "model.train.scored_rows": float(len(scored)),
        "model.train.flagged_share": (
            float(np.mean([r.flagged for r in scored])) if scored else float("nan")
        ),
        "model.train.season": float(season),
        "model.train.alpha": params.alpha,
        "model.train.one_step_error": errors.get(params.alpha, float("nan")),
    }
    return config, metrics


def register_detector(
    config: DetectorConfig,
    metrics: Mapping[str, float],
    registry: ModelRegistry,
    *,
    model_name: str | None = None,
    experiment: str = "featurestore-anomalies",
    promote: str = "auto",
    tags: Mapping[str, str] | None = None,
) -> LoggedModel:
    """Log the run (parameters, metrics) and register the detector as the view's model.

    Version tags: ``model_kind`` (``stream_anomaly``), ``view``, ``entity_key``, ``features``,
    ``threshold``. ``promote``: ``always`` moves ``champion`` to it, ``auto`` only when the
    model has none, ``never`` leaves it.
    """
    name = model_name or model_name_for(config.view)
    version_tags = {
        "model_kind": KIND,
        "view": config.view,
        "entity_key": config.entity_key,
        "features": ",".join(config.features),
        "threshold": repr(config.params.threshold),
        **(tags or {}),
    }
    example = pd.DataFrame(
        {
            config.entity_key: ["example"] * 3,
            # Naive (read as UTC): MLflow's schema enforcement refuses tz-aware datetimes.
            "event_timestamp": pd.date_range("2024-01-01", periods=3, freq="min"),
            **{f: [1.0, 2.0, 3.0] for f in config.features},
        }
    )
    mlflow.set_tracking_uri(registry.tracking_uri)
    mlflow.set_registry_uri(registry.tracking_uri)
    with quiet():
        mlflow.set_experiment(experiment)
        with mlflow.start_run(run_name=f"detector {config.view}") as run:
            mlflow.set_tags(version_tags)
            mlflow.log_params({f"detector.{k}": v for k, v in config.params.to_dict().items()})
            mlflow.log_metrics({k: v for k, v in metrics.items() if np.isfinite(v)})
            mlflow.log_dict(config.params.to_dict(), "detector.json")
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=MODEL_CODE,
                model_config=DetectorModel(config).model_config(),
                input_example=example,
                pip_requirements=[f"numpy=={np.__version__}", f"pandas=={pd.__version__}"],
                registered_model_name=name,
            )
    ref = ModelRef(name, str(info.registered_model_version), run.info.run_id)
    registry.tag(ref, version_tags | {"run_id": run.info.run_id})
    promoted = promote == "always" or (promote == "auto" and registry.alias(name, CHAMPION) is None)
    if promoted:
        registry.promote(name, ref.version)
    return LoggedModel(ref, run.info.run_id, promoted)

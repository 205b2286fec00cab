"""Drift of a registered model's live inputs against its training set, on demand.

The live window is the last ``window`` of the offline table (ending at its newest row, or at
``end``), less the rows whose windows are still filling after the feed (re)started
(:mod:`models.data.warm`), as training skips them: on a fresh stack, 20-minute volumes over 3
minutes of trading put every volume ratio in the top bin. Its samples get the model's features
by the same point-in-time export as training, the same input transform, and the PSI of each
input against the run's recorded reference
(:mod:`models.drift`). The result can be logged to MLflow (experiment ``featurestore-drift``:
metrics ``psi.<input>``, ``max_psi``, ``drifted_inputs``), which is the drift metric to alert on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta

import pandas as pd

from featurestore.definitions import Definitions
from featurestore.definitions import FeatureRef
from featurestore.definitions import ValueType
from featurestore.errors import NotFoundError
from featurestore.errors import ValidationError
from featurestore.offline import PostgresOfflineStore
from featurestore.offline import TrainingRequest
from models._mlflow import mlflow
from models._mlflow import quiet
from models.data.dataset import SAMPLE_VIEW
from models.data.source import DataWindow
from models.data.source import continuation
from models.data.source import latest_time
from models.data.source import sample_times
from models.data.warm import warm_from
from models.data.warm import warm_rows
from models.drift import DEFAULT_THRESHOLD
from models.drift import FeatureDrift
from models.drift import population_stability
from models.inputs import model_inputs
from models.registry import CHAMPION
from models.registry import ModelRef
from models.registry import ModelRegistry
from models.tracking import read_reference

__all__ = ["DriftInputs", "DriftReport", "drift_inputs", "log_drift", "measure_drift"]


@dataclass(frozen=True)
class DriftReport:
    """PSI per model input of one model version over one live window."""

    ref: ModelRef
    start: datetime
    end: datetime
    threshold: float
    features: list[FeatureDrift]

    @property
    def drifted(self) -> list[FeatureDrift]:
        """The inputs above the threshold."""
        return [f for f in self.features if f.drifted]


@dataclass(frozen=True)
class DriftInputs:
    """What a model version reads, as drift measures it."""

    request: TrainingRequest
    views: tuple[str, ...]
    """The views its features read, in order."""
    columns: tuple[str, ...]
    """Its input columns (``view__feature``); those of the feature service when it has one."""
    transformed: bool
    """Whether the inputs go through the training transform (:func:`models.inputs.model_inputs`)
    as ``featurestore train``'s models do; another model sees the features as they are."""


def drift_inputs(registry: ModelRegistry, ref: ModelRef, definitions: Definitions) -> DriftInputs:
    """The inputs of a version: its ``feature_service`` tag's, else its signature's.

    ``featurestore train`` tags each version with the feature service it was trained on; a
    model registered any other way is read by its signature's ``view__feature`` names, as
    Predict reads it.

    Raises:
        ValidationError: the version has neither; a signature input is not a feature, or not
            a number; its views are of several entities (one sample row cannot key them all).
        NotFoundError: the service or a feature is not defined.
    """
    service = ref.tags.get("feature_service")
    if service:
        features = definitions.service(service).features
        columns = tuple(r.column for r in features)
        request = TrainingRequest(feature_service=service, full_feature_names=True)
        return DriftInputs(request, _views(features), columns, transformed=True)
    columns = registry.input_names(ref)
    if not columns:
        raise ValidationError(
            f"{ref.uri} names no inputs: it has no feature_service tag and no signature of"
            " features (view__feature)",
            field="model",
        )
    refs: list[FeatureRef] = []
    for column in columns:
        feature = FeatureRef.of_column(column)
        if feature is None:
            raise ValidationError(
                f"{ref.uri}: input {column!r} is not a feature named 'view__feature' (drift is"
                " measured for models of features, as Predict serves them)",
                field="model",
            )
        kind = definitions.view(feature.view).feature(feature.feature).value_type
        if kind not in _NUMBERS:
            raise ValidationError(
                f"{ref.uri}: input {column!r} is a {kind.value} feature; drift is measured on"
                " numbers",
                field="model",
            )
        refs.append(feature)
    views = _views(refs)
    keys = sorted({definitions.join_key(definitions.view(v)) for v in views})
    if len(keys) > 1:
        raise ValidationError(
            f"{ref.uri} reads views of several entities (join keys {', '.join(keys)}): its"
            " drift is not measured, as one sample row cannot key them all",
            field="model",
        )
    request = TrainingRequest(features=refs, full_feature_names=True)
    return DriftInputs(request, views, columns, transformed=False)


_NUMBERS = frozenset(
    (ValueType.FLOAT64, ValueType.FLOAT32, ValueType.INT64, ValueType.INT32, ValueType.BOOL)
)
"""The feature types a model input is read as (float64, as Predict reads them)."""


def _views(refs: Sequence[FeatureRef]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(r.view for r in refs))


def measure_drift(
    store: PostgresOfflineStore,
    dsn: str,
    registry: ModelRegistry,
    model_name: str,
    *,
    alias: str = CHAMPION,
    window: timedelta = timedelta(hours=1),
    end: datetime | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> DriftReport:
    """PSI of the live window's inputs against the training reference of ``model_name@alias``.

    The live rows are those of the view training samples (``rolling_1m``) where the model reads
    it, else of the first view it reads, keyed by that view's entity (:func:`drift_inputs`).

    Raises:
        NotFoundError: no such model or alias, or the version has no drift reference.
        ValidationError: the version names no inputs, the window holds no rows with full
            windows, or too few for a PSI.
    """
    ref = registry.alias(model_name, alias)
    if ref is None:
        raise NotFoundError(f"model {model_name!r} has no {alias!r} version")
    definitions = store.definitions
    inputs = drift_inputs(registry, ref, definitions)
    reference = read_reference(registry, ref)
    rows_view = definitions.view(SAMPLE_VIEW if SAMPLE_VIEW in inputs.views else inputs.views[0])
    key = definitions.join_key(rows_view)
    end = end or latest_time(dsn, rows_view)
    if end is None:
        raise ValidationError(f"{rows_view.source.table} is empty", field="window")
    warm_up = definitions.views_warm_up(inputs.views)
    since = end - window - warm_up
    times = sample_times(dsn, rows_view, DataWindow(since, end), key)
    continues = continuation(dsn, rows_view, since)
    warm = warm_rows(times["event_timestamp"], warm_up, continues=continues)
    samples = times[warm & (times["event_timestamp"] >= end - window).to_numpy()]
    if samples.empty:
        fill = warm_from(times["event_timestamp"], warm_up, continues=continues) or end
        raise ValidationError(
            f"no rows of {rows_view.source.table} with full windows up to {end:%Y-%m-%d %H:%M}"
            f" UTC: the feed (re)started less than {warm_up.total_seconds() / 60:g} minutes"
            f" before, and the windows fill at {fill:%Y-%m-%d %H:%M} UTC",
            field="window",
        )
    frame = store.to_pandas(samples, inputs.request)
    columns = list(inputs.columns)
    values = frame[columns].astype("float64")
    live = model_inputs(values, columns) if inputs.transformed else values
    features = population_stability(reference, pd.DataFrame(live), threshold)
    start = pd.Timestamp(samples["event_timestamp"].min()).to_pydatetime()
    return DriftReport(ref, start, end, threshold, features)


def log_drift(registry: ModelRegistry, report: DriftReport, experiment: str) -> str:
    """Record a report as an MLflow run; returns its id."""
    mlflow.set_tracking_uri(registry.tracking_uri)
    with quiet():
        mlflow.set_experiment(experiment)
        with mlflow.start_run(run_name=f"drift {report.ref.name} v{report.ref.version}") as run:
            mlflow.set_tags(
                {
                    "model_name": report.ref.name,
                    "model_version": report.ref.version,
                    "window_start": report.start.isoformat(),
                    "window_end": report.end.isoformat(),
                }
            )
            metrics = {f"psi.{f.feature}": f.psi for f in report.features}
            metrics["max_psi"] = max((f.psi for f in report.features), default=0.0)
            metrics["drifted_inputs"] = float(len(report.drifted))
            mlflow.log_metrics(metrics)
    return str(run.info.run_id)

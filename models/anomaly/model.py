"""A view's anomaly model: which view, entity and features the detector watches, and how.

:class:`DetectorConfig` is what is registered per view (model ``featurestore-anomaly-<view>``,
see :func:`model_name_for`); :class:`DetectorModel` is its MLflow ``PythonModel``, so that
``mlflow.pyfunc.load_model`` gives a model whose ``predict(frame)`` scores a frame of the view's
rows (the entity's join key, ``event_timestamp`` and the features, named as the view names them
or ``view__feature``), each entity from a fresh state in time order. That is the batch form; the
scorer (:class:`models.anomaly.scorer.StreamScorer`) keeps the states between batches instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from featurestore.definitions.model import FeatureRef
from featurestore.errors import ValidationError
from models.anomaly.detector import DetectorParams
from models.anomaly.detector import SeriesState
from models.anomaly.detector import StepResult
from models.anomaly.detector import StreamingDetector
from models.pyfunc import ConfiguredModel

__all__ = [
    "KIND",
    "LEGACY_VIEW",
    "DetectorConfig",
    "DetectorModel",
    "model_name_for",
    "score_frame",
]

KIND = "stream_anomaly"
"""The ``model_kind`` tag of these models (the IsolationForest's is ``anomaly``)."""
LEGACY_VIEW = "rolling_1m"
"""The view whose model keeps its first name, ``featurestore-anomaly`` (the IsolationForest
that ``make run`` trains first, which Predict and the dashboard know by that name)."""


def model_name_for(view: str, prefix: str = "featurestore-") -> str:
    """The registered anomaly model of a view: ``featurestore-anomaly-<view>``.

    ``rolling_1m``'s is ``featurestore-anomaly`` (:data:`LEGACY_VIEW`).
    """
    return f"{prefix}anomaly" if view == LEGACY_VIEW else f"{prefix}anomaly-{view}"


@dataclass(frozen=True)
class DetectorConfig:
    """What a view's anomaly model watches and the detector's parameters."""

    view: str
    entity_key: str
    """The view's entity join key (``entity`` for the metric views, ``symbol`` for markets)."""
    features: tuple[str, ...]
    """The view's features scored, each its own series per entity."""
    params: DetectorParams

    def __post_init__(self) -> None:
        """Refuse a configuration with no feature: it would register a model that never flags."""
        if not self.features:
            raise ValidationError(f"no feature to score in view {self.view!r}", field="features")

    def column(self, feature: str) -> str:
        """The full name of a feature: ``view__feature``."""
        return FeatureRef(self.view, feature).column

    def values(self, rows: pd.DataFrame, feature: str) -> np.ndarray:
        """A feature's values in ``rows`` (bare or full name), float64, NaN where missing."""
        for name in (feature, self.column(feature)):
            if name in rows.columns:
                values = pd.to_numeric(rows[name], errors="coerce")
                return np.asarray(values, dtype="float64")
        raise ValidationError(f"rows of view {self.view!r} lack feature {feature!r}", field=feature)


@dataclass(frozen=True)
class ScoredRow:
    """One row's score: the highest of its features'."""

    index: int
    """Position of the row in the frame scored."""
    entity: str
    score: float
    flagged: bool
    values: dict[str, float]
    """``view__feature`` -> value, and ``view__feature__expected`` -> the forecast."""


def score_frame(
    config: DetectorConfig,
    rows: pd.DataFrame,
    states: dict[tuple[str, str], SeriesState],
) -> Iterator[ScoredRow]:
    """Feed ``rows`` (any order) to the detector, entity by entity in time order.

    ``states`` maps (entity, feature) to its state and is updated in place (a missing one is
    started). Rows the detector ignores (not newer than the entity's last, or warming up with
    nothing to score) are not yielded.
    """
    for column in (config.entity_key, "event_timestamp"):
        if column not in rows.columns:
            raise ValidationError(f"rows to score lack {column!r}", field=column)
    detector = StreamingDetector(config.params)
    times = pd.to_datetime(rows["event_timestamp"], utc=True)
    seconds = (times - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()
    entities = rows[config.entity_key].astype(str).to_numpy()
    values = {f: config.values(rows, f) for f in config.features}
    order = np.lexsort((seconds, entities))
    for i in order:
        step = detector.step_of(float(seconds[i]))
        best: StepResult | None = None
        out: dict[str, float] = {}
        for feature in config.features:
            state = states.setdefault((str(entities[i]), feature), SeriesState())
            warm = not state.warming
            result = detector.update(state, step, float(values[feature][i]))
            if result is None or not warm:
                continue
            out[config.column(feature)] = float(values[feature][i])
            out[f"{config.column(feature)}__expected"] = result.expected
            if best is None or result.score > best.score:
                best = result
        if best is not None:
            yield ScoredRow(int(i), str(entities[i]), best.score, best.flagged, out)


class DetectorModel(ConfiguredModel[DetectorConfig]):
    """The registered form: ``predict(rows)`` is each row's score (0 where not scored)."""

    def __init__(self, config: DetectorConfig) -> None:
        """``config`` is all the model holds (no weights): MLflow logs it (:meth:`model_config`)."""
        self.config = config

    @classmethod
    def from_model_config(cls, config: Mapping[str, Any]) -> DetectorModel:
        """The model that :meth:`model_config` describes (KeyError: a key is missing)."""
        return cls(
            DetectorConfig(
                view=str(config["view"]),
                entity_key=str(config["entity_key"]),
                features=tuple(config["features"]),
                params=DetectorParams.from_dict(dict(config["params"])),
            )
        )

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> np.ndarray:
        """One float64 score per row; each entity starts from a fresh state."""
        scores = np.zeros(len(model_input), dtype="float64")
        for row in score_frame(self.config, model_input.reset_index(drop=True), {}):
            scores[row.index] = row.score
        return scores

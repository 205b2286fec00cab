"""Online anomaly scoring: new ``rolling_1m`` rows in, ``Anomaly`` events out.

:class:`AnomalyScorer` scores feature rows with the model the ``champion`` alias points at and
returns an :class:`~featurestore.events.Anomaly` for each row whose score reaches the model's
threshold (the version tag ``threshold``). A promotion is picked up without a restart
(:class:`~models.alias.AliasFollower`): scoring never waits for MLflow, and when MLflow is away
it keeps the model it has.

Rows may carry the rolling_1m columns under their own names (as the processors' hook passes
them: ``vwap_5m``, ...) or as ``view__feature``; the model's other inputs (the ``bars_1m`` ones)
are joined point in time from the offline store, at each row's ``event_timestamp`` -- the same
join training used.

Anomaly ids are deterministic: a hash of model name, version, symbol and event time, so
re-scoring a replayed log gives the same ids.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from featurestore.definitions import FeatureRef
from featurestore.errors import ValidationError
from featurestore.events import Anomaly
from featurestore.events import to_micros
from featurestore.offline import OfflineStore
from featurestore.offline import TrainingRequest
from models.alias import AliasFollower
from models.registry import CHAMPION
from models.registry import ModelRef
from models.registry import ModelRegistry

__all__ = ["AnomalyScorer", "ScoredModel", "anomaly_id", "model_inputs"]

ROW_VIEW = "rolling_1m"


def anomaly_id(model_name: str, model_version: str, symbol: str, event_time: datetime) -> str:
    """The deterministic id of one scored row (an anomaly's, a feed prediction's)."""
    text = f"{model_name}|{model_version}|{symbol}|{to_micros(event_time)}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def model_inputs(
    rows: pd.DataFrame,
    columns: Sequence[str],
    store: OfflineStore | None,
    row_view: str = ROW_VIEW,
) -> pd.DataFrame:
    """``symbol``, ``event_timestamp`` and a model's ``columns`` of ``rows`` (float64).

    Bare names of ``row_view``'s features are renamed ``row_view__name``; columns still missing
    are joined point in time from the offline ``store`` (at each row's ``event_timestamp``).
    """
    for column in ("symbol", "event_timestamp"):
        if column not in rows.columns:
            raise ValidationError(f"rows to score lack {column!r}", field=column)
    refs = {c: FeatureRef.of_column(c) for c in columns}
    frame = rows.rename(
        columns={r.feature: c for c, r in refs.items() if r is not None and r.view == row_view}
    )
    frame = frame.assign(event_timestamp=pd.to_datetime(frame["event_timestamp"], utc=True))
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        if store is None:
            raise ValidationError(
                f"rows lack features {missing} and no offline store is set to join them",
                field=missing[0],
            )
        unnamed = [c for c in missing if refs[c] is None]
        if unnamed:
            raise ValidationError(
                f"model input {unnamed[0]!r} is not a feature named 'view__feature'",
                field=unnamed[0],
            )
        request = TrainingRequest(
            features=[r for c in missing if (r := refs[c]) is not None], full_feature_names=True
        )
        keys = frame[["symbol", "event_timestamp"]].reset_index(drop=True)
        joined = store.to_pandas(keys, request)
        frame = frame.reset_index(drop=True)
        for column in missing:
            frame[column] = joined[column].to_numpy()
    frame = frame[["symbol", "event_timestamp", *columns]].reset_index(drop=True)
    return frame.astype({c: "float64" for c in columns})


@dataclass(frozen=True)
class ScoredModel:
    """The model version in use and what scoring needs from it."""

    ref: ModelRef
    model: Any
    columns: tuple[str, ...]
    """The signature's input columns (``view__feature``)."""
    threshold: float


def _load(registry: ModelRegistry, ref: ModelRef) -> ScoredModel:
    if "threshold" not in ref.tags:
        raise ValidationError(f"{ref.uri} has no 'threshold' tag; is it an anomaly model?")
    model = registry.load(ref)
    schema = model.metadata.get_input_schema()
    columns = tuple(schema.input_names()) if schema is not None else ()
    return ScoredModel(ref, model, columns, float(ref.tags["threshold"]))


class AnomalyScorer(AliasFollower[ScoredModel]):
    """Scores feature rows with the champion anomaly model, following promotions.

    Args:
        registry: the MLflow registry.
        model_name: the registered anomaly model.
        alias: the alias to follow.
        poll_interval_s: how often the background thread reads the alias (:meth:`start`).
        store: where features missing from the rows are joined from (point in time); without
            it, rows must carry every model input.
    """

    def __init__(
        self,
        registry: ModelRegistry,
        model_name: str,
        *,
        alias: str = CHAMPION,
        poll_interval_s: float = 5.0,
        store: OfflineStore | None = None,
    ) -> None:
        """Load the version ``alias`` points at (NotFoundError if none)."""
        self.store = store
        super().__init__(registry, model_name, alias=alias, poll_interval_s=poll_interval_s)

    def _load(self, ref: ModelRef) -> ScoredModel:
        return _load(self.registry, ref)

    def features(self, rows: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
        """The model's inputs of ``rows``, joined from the store (:func:`model_inputs`)."""
        return model_inputs(rows, columns, self.store)

    def scores(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Every row's features and ``score``, and whether it is ``flagged``."""
        used = self._current
        frame = self.features(rows, used.columns)
        if frame.empty:
            return frame.assign(score=np.zeros(0), flagged=np.zeros(0, dtype=bool))
        score = np.asarray(used.model.predict(frame[list(used.columns)]), dtype="float64")
        return frame.assign(score=score, flagged=score >= used.threshold)

    def score_rows(self, rows: pd.DataFrame) -> list[Anomaly]:
        """The anomalies among ``rows``: one event per row scoring at or above the threshold."""
        used = self._current
        scored = self.scores(rows)
        detected = datetime.now(UTC)
        out = []
        for values in scored[scored["flagged"]].to_dict("records"):
            event_time = pd.Timestamp(values["event_timestamp"]).to_pydatetime()
            symbol = str(values["symbol"])
            out.append(
                Anomaly(
                    anomaly_id=anomaly_id(used.ref.name, used.ref.version, symbol, event_time),
                    symbol=symbol,
                    event_time=event_time,
                    score=float(values["score"]),
                    model_name=used.ref.name,
                    model_version=used.ref.version,
                    detected_at=detected,
                    features={c: float(values[c]) for c in used.columns},
                    threshold=used.threshold,
                )
            )
        return out

"""The prediction feed: a model's prediction for each new feature row, as ``PredictionLog`` events.

:class:`Predictor` is what ``featurestore predict --follow --model NAME`` runs under
:func:`models.follow.follow_table` (the anomaly scorer's loop): each new row of the followed view
(``rolling_1m`` by default) is scored with the version the alias (``champion``) points at, with
the same code Predict scores with (:func:`featurestore.service.models.load_pyfunc`,
:meth:`LoadedModel.score`: NaN for a missing feature), its inputs assembled point in time as the
anomaly scorer's are (:func:`models.scoring.model_inputs`), and published to the predictions topic
(:class:`models.publish.PredictionPublisher`). StreamPredictions then serves them, and the
prediction recorder writes them to the ``predictions`` table with Predict's.

Why a follower of the offline table rather than a hook in the processors or a reader of Redis:
the offline table holds every row (Redis only the latest), in the order the processors stored
them, with a ``created_timestamp`` to resume from; the anomaly scorer proved the loop, and a
deterministic id per (model, version, entity, feature event time) makes a row scored twice (a
restart, an overlap) the same prediction, which the table's upsert keeps once.

A promotion is picked up without a restart (:class:`~models.alias.AliasFollower`).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Collection
from datetime import UTC
from datetime import datetime

import pandas as pd

from featurestore.events import PredictionLog
from featurestore.offline import OfflineStore
from featurestore.service.models import LoadedModel
from featurestore.service.models import load_pyfunc
from models.alias import AliasFollower
from models.registry import CHAMPION
from models.registry import ModelRef
from models.registry import ModelRegistry
from models.scoring import ROW_VIEW
from models.scoring import anomaly_id
from models.scoring import model_inputs

__all__ = ["Predictor", "prediction_id"]

prediction_id = anomaly_id
"""A feed prediction's deterministic id: (model, version, symbol, feature event time)."""


class Predictor(AliasFollower[LoadedModel]):
    """Predicts each new row of a view with a model's aliased version, following promotions.

    Args:
        registry: the MLflow registry.
        model_name: the registered model.
        alias: the alias to follow.
        store: where inputs the rows lack are joined from (point in time); without it, rows
            must carry every model input.
        symbols: only rows of these symbols; all when empty.
        row_view: the followed view (its bare feature names are the model's ``row_view__*``).
        poll_interval_s: how often :meth:`start`'s thread reads the alias.
        loader: loads a model version (Predict's loader by default).
    """

    def __init__(
        self,
        registry: ModelRegistry,
        model_name: str,
        *,
        alias: str = CHAMPION,
        store: OfflineStore | None = None,
        symbols: Collection[str] = (),
        row_view: str = ROW_VIEW,
        poll_interval_s: float = 5.0,
        loader: Callable[[str, str, str], LoadedModel] = load_pyfunc,
    ) -> None:
        """Load the version ``alias`` points at (NotFoundError if none)."""
        self.store = store
        self.symbols = frozenset(symbols)
        self.row_view = row_view
        self._loader = loader
        super().__init__(
            registry,
            model_name,
            alias=alias,
            poll_interval_s=poll_interval_s,
            purpose="predict with",
        )

    def _load(self, ref: ModelRef) -> LoadedModel:
        return self._loader(self.registry.tracking_uri, self.model_name, ref.version)

    def score_rows(self, rows: pd.DataFrame) -> list[PredictionLog]:
        """One prediction per row (of the wanted symbols), with the features it used."""
        model = self._current
        if self.symbols and not rows.empty:
            rows = rows[rows["symbol"].isin(self.symbols)]
        if rows.empty:
            return []
        read = datetime.now(UTC)
        frame = model_inputs(rows, model.columns, self.store, self.row_view)
        scores = model.score(frame[list(model.columns)].to_numpy(dtype="float64"))
        answered = datetime.now(UTC)
        events = []
        for i, values in enumerate(frame.to_dict("records")):
            feature_time = pd.Timestamp(values["event_timestamp"]).to_pydatetime()
            symbol = str(values["symbol"])
            # Named as Predict's log names them ("view:feature").
            features = {
                str(ref): None if pd.isna(values[c]) else float(values[c])
                for ref, c in zip(model.refs, model.columns, strict=True)
            }
            events.append(
                PredictionLog(
                    request_id=prediction_id(model.name, model.version, symbol, feature_time),
                    model_name=model.name,
                    model_version=model.version,
                    entity={"symbol": symbol},
                    prediction=float(scores[i]),
                    request_time=read,
                    response_time=answered,
                    features=features,
                    feature_time=feature_time,
                )
            )
        return events

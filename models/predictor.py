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

A promotion is picked up without a restart: the alias is read every ``poll_interval_s`` on a
background thread and the new version swapped in once loaded.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection
from datetime import UTC, datetime

import pandas as pd

from featurestore.errors import FeatureStoreError, NotFoundError
from featurestore.events import PredictionLog
from featurestore.offline import OfflineStore
from featurestore.service.models import LoadedModel, load_pyfunc
from models.registry import CHAMPION, ModelRegistry
from models.scoring import ROW_VIEW, anomaly_id, model_inputs

__all__ = ["Predictor", "prediction_id"]

log = logging.getLogger(__name__)

prediction_id = anomaly_id
"""A feed prediction's deterministic id: (model, version, symbol, feature event time)."""


class Predictor:
    """Predicts each new row of a view with a model's aliased version, following promotions.

    Args:
        registry: the MLflow registry.
        model_name: the registered model.
        alias: the alias to follow.
        store: where inputs the rows lack are joined from (point in time); without it, rows
            must carry every model input.
        symbols: only rows of these symbols; all when empty.
        row_view: the followed view (its bare feature names are the model's ``row_view__*``).
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
        self.registry = registry
        self.model_name = model_name
        self.alias = alias
        self.store = store
        self.symbols = frozenset(symbols)
        self.row_view = row_view
        self.poll_interval_s = poll_interval_s
        self._loader = loader
        ref = registry.alias(model_name, alias)
        if ref is None:
            raise NotFoundError(f"model {model_name!r} has no {alias!r} version to predict with")
        self._current = loader(registry.tracking_uri, model_name, ref.version)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def current(self) -> LoadedModel:
        """The model version predicting now."""
        return self._current

    def refresh(self) -> bool:
        """Read the alias; load and switch to its version if it moved. Returns whether it did."""
        ref = self.registry.alias(self.model_name, self.alias)
        if ref is None or ref.version == self._current.version:
            return False
        self._current = self._loader(self.registry.tracking_uri, self.model_name, ref.version)
        log.info("prediction feed now uses %s version %s", ref.name, ref.version)
        return True

    def start(self) -> Predictor:
        """Follow the alias in a background thread until :meth:`close`."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._poll, name="predictor-alias", daemon=True)
            self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_interval_s):
            try:
                self.refresh()
            except FeatureStoreError as exc:
                log.warning("keeping %s version %s: %s", self.model_name, self.current.version, exc)

    def close(self) -> None:
        """Stop following the alias."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> Predictor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

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

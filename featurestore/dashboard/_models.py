"""The models panel: champions, live predictions with what followed, drift over time.

Champions come from the model registry (MLflow, alias ``champion``): those of the models
``dashboard.models`` names, else of every registered model that has one. Predictions are made here,
through the gRPC API's Predict (logged by the server like any other), every
``outcome_horizon / 6`` for the first symbols; each is paired, once ``outcome_horizon`` has
passed, with the change of the symbol's online close over that time: the outcome that followed.
Drift is the monitor's ``featurestore_drift_psi`` gauge, from Prometheus.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from featurestore_client import FeatureStoreClient
from featurestore_client import FeatureStoreClientError

from featurestore.dashboard._prometheus import PrometheusApi
from models.registry import CHAMPION
from models.registry import ModelRegistry

__all__ = ["ModelsPanel"]

_CLOSE = "bars_1m:close"
_FIND_EVERY_S = 30.0
"""How often the registry is searched for the models that have a champion (when none are named)."""


@dataclass
class _Prediction:
    at: float
    model: str
    version: str
    symbol: str
    score: float
    close: float | None
    outcome: float | None = None
    """Relative change of the close over the horizon; None until the horizon has passed."""


def shown_predictions(predictions: Sequence[_Prediction]) -> list[_Prediction]:
    """The newest round of predictions, then the settled ones, newest first.

    A round is made every ``horizon / 6`` and settles ``horizon`` later, so the newest rows are
    always pending: shown newest first alone, a table of a few rows would never show an outcome.
    Older rounds still pending (their close unknown) are left out.
    """
    newest = max((p.at for p in predictions), default=None)
    latest = [p for p in reversed(predictions) if p.at == newest]
    settled = [p for p in reversed(predictions) if p.outcome is not None and p.at != newest]
    return latest + settled


class ModelsPanel:
    """Gathers the models panel's data."""

    def __init__(
        self,
        client: FeatureStoreClient,
        registry: ModelRegistry,
        prometheus: PrometheusApi,
        *,
        models: Sequence[str] | None,
        horizon_s: float,
        drift_alert: float,
        symbols_predicted: int = 5,
    ) -> None:
        self._client = client
        self._registry = registry
        self._prometheus = prometheus
        self._named = None if models is None else list(models)
        """The models shown; None: every registered model that has a champion."""
        self._found: list[str] = []
        self._found_at = -_FIND_EVERY_S
        self._horizon_s = horizon_s
        self._drift_alert = drift_alert
        """DriftHigh's threshold, drawn on the drift chart."""
        self._every_s = horizon_s / 6
        self._symbols_predicted = symbols_predicted
        self._predictions: deque[_Prediction] = deque(maxlen=2000)
        self._last_predicted = 0.0
        self._champions: dict[str, str] = {}

    def gather(self, symbols: Sequence[str], minutes: int, step_s: float) -> dict[str, Any]:
        """Champions, recent predictions with their outcomes, and PSI series."""
        champions = self._read_champions()
        now = time.time()
        if symbols and now - self._last_predicted >= self._every_s:
            self._predict(champions, list(symbols)[: self._symbols_predicted], now)
            self._last_predicted = now
        self._settle(now)
        drift = self._prometheus.query_range(
            "max by (model, input) (featurestore_drift_psi)", minutes, max(step_s, 15.0)
        )
        return {
            "champions": list(champions.values()),
            "predictions": [vars(p) for p in shown_predictions(self._predictions)][:60],
            "horizon_s": self._horizon_s,
            "drift_alert": self._drift_alert,
            "drift": [
                {
                    "model": s.labels.get("model", ""),
                    "input": s.labels.get("input", ""),
                    "points": s.points,
                }
                for s in drift
            ],
        }

    def _shown_models(self) -> list[str]:
        if self._named is not None:
            return self._named
        now = time.monotonic()
        if now - self._found_at >= _FIND_EVERY_S:
            self._found = self._registry.with_alias()
            self._found_at = now
        return self._found

    def _read_champions(self) -> dict[str, dict[str, Any]]:
        champions = {}
        for name in self._shown_models():
            ref = self._registry.alias(name, CHAMPION)
            if ref is None:
                champions[name] = {"model": name, "version": None, "since": None}
                continue
            since = ref.since(CHAMPION)
            champions[name] = {
                "model": name,
                "version": ref.version,
                "since": None if since is None else since.isoformat(),
            }
        return champions

    def _predict(
        self, champions: dict[str, dict[str, Any]], symbols: list[str], now: float
    ) -> None:
        closes = self._closes(symbols)
        for name, champion in champions.items():
            if champion["version"] is None:
                continue
            try:
                answer = self._client.predict(name, entities={"symbol": symbols})
            except FeatureStoreClientError:
                continue  # a model whose features this project lacks: shown without predictions
            for symbol, score in zip(symbols, answer.scores, strict=True):
                self._predictions.append(
                    _Prediction(now, name, answer.model_version, symbol, score, closes[symbol])
                )

    def _closes(self, symbols: list[str]) -> dict[str, float | None]:
        rows = self._client.get_online_features([_CLOSE], entities={"symbol": symbols})
        return {row["symbol"]: row[_CLOSE] for row in rows.to_dicts()}

    def _settle(self, now: float) -> None:
        due = [p for p in self._predictions if p.outcome is None and now - p.at >= self._horizon_s]
        if not due:
            return
        closes = self._closes(sorted({p.symbol for p in due}))
        for p in due:
            later = closes.get(p.symbol)
            if p.close and later is not None:
                p.outcome = later / p.close - 1.0

"""The prediction feed's pure parts: one PredictionLog per row, deterministic ids, promotions."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from featurestore.errors import NotFoundError
from featurestore.service.models import LoadedModel
from featurestore.service.models import feature_ref_of_column
from models.predictor import Predictor
from models.predictor import prediction_id
from tests.unit.models.fake_registry import DictRegistry

T = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
COLUMNS = ("rolling_1m__vwap_5m", "rolling_1m__trade_count_5m")


class _Linear:
    """A pyfunc stand-in: the sum of the inputs times ``k`` (NaN counted as 0)."""

    def __init__(self, k: float) -> None:
        self.k = k

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(frame.fillna(0.0).sum(axis=1) * self.k)


def _loader(uri: str, name: str, version: str) -> LoadedModel:
    refs = tuple(map(feature_ref_of_column, COLUMNS))
    return LoadedModel(name, version, COLUMNS, refs, _Linear(float(version)))


def _rows() -> pd.DataFrame:
    return pd.DataFrame({
        "symbol": ["IBM", "AAPL", "IBM"],
        "event_timestamp": [T, T, T + timedelta(minutes=1)],
        "created_timestamp": [T, T, T + timedelta(minutes=1)],
        "vwap_5m": [10.0, 20.0, np.nan],
        "trade_count_5m": [1.0, 2.0, 3.0],
    })  # fmt: skip


def _predictor(registry: DictRegistry, **kwargs: Any) -> Predictor:
    return Predictor(registry, "m", loader=_loader, **kwargs)  # type: ignore[arg-type]


def test_one_prediction_per_row_with_its_features_and_a_deterministic_id() -> None:
    predictor = _predictor(DictRegistry({"champion": "2"}))
    events = predictor.score_rows(_rows())
    assert [e.prediction for e in events] == [22.0, 44.0, 6.0]
    first, _, third = events
    assert first.entity == {"symbol": "IBM"}
    assert (first.model_name, first.model_version) == ("m", "2")
    assert first.feature_time == T
    assert first.features == {"rolling_1m:vwap_5m": 10.0, "rolling_1m:trade_count_5m": 1.0}
    assert third.features["rolling_1m:vwap_5m"] is None
    assert first.request_id == prediction_id("m", "2", "IBM", T)
    assert [e.request_id for e in predictor.score_rows(_rows())] == [e.request_id for e in events]
    assert len({e.request_id for e in events}) == 3
    assert first.request_time <= first.response_time


def test_only_the_wanted_symbols() -> None:
    predictor = _predictor(DictRegistry({"champion": "1"}), symbols=["AAPL"])
    assert [e.entity["symbol"] for e in predictor.score_rows(_rows())] == ["AAPL"]
    assert predictor.score_rows(_rows().iloc[:0]) == []


def test_a_promotion_changes_the_version_and_so_the_ids() -> None:
    registry = DictRegistry({"champion": "1"})
    predictor = _predictor(registry)
    before = predictor.score_rows(_rows())[0]
    assert not predictor.refresh()
    registry.versions["champion"] = "3"
    assert predictor.refresh()
    after = predictor.score_rows(_rows())[0]
    assert (after.model_version, after.prediction) == ("3", 33.0)
    assert after.request_id != before.request_id


def test_no_alias_is_not_found() -> None:
    with pytest.raises(NotFoundError, match="no 'champion' version"):
        _predictor(DictRegistry({}))

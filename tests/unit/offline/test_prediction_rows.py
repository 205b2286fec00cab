"""The predictions table's rows: one per event, the model's horizon stored with it."""

from __future__ import annotations

import json
from datetime import UTC
from datetime import datetime
from datetime import timedelta

from featurestore.events import PredictionLog
from featurestore.offline.predictions import DEFAULT_HORIZON
from featurestore.offline.predictions import PredictionTable
from featurestore.offline.predictions import prediction_rows

T = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)


def test_rows_and_horizons() -> None:
    table = PredictionTable(horizons={"direction": timedelta(minutes=15)})
    events = [
        PredictionLog(
            "r1", "direction", "4", {"symbol": "IBM"}, 0.75, T, T, {"a__b": 1.5, "a__c": None}, T
        ),
        PredictionLog("r2", "other", "1", {"symbol": "AAPL"}, -1.0, T, T),
    ]
    first, second = prediction_rows(events, table.horizon)
    assert first[:3] == ("r1", "direction", "4")
    assert json.loads(str(first[3])) == {"symbol": "IBM"}
    assert first[4] == 0.75
    assert json.loads(str(first[8])) == {"a__b": 1.5, "a__c": None}
    assert first[9] == timedelta(minutes=15)
    assert second[5] is None  # no feature time: no outcome either
    assert second[9] == DEFAULT_HORIZON

from __future__ import annotations

from dataclasses import replace
from datetime import UTC
from datetime import datetime

from featurestore.definitions import market_definitions
from featurestore.definitions.model import Feature
from featurestore.definitions.model import ValueType
from featurestore.offline.tables import _columns
from featurestore.offline.tables import covered_features
from featurestore.offline.tables import partition_bounds


def test_partition_bounds_cover_the_range() -> None:
    start = datetime(2023, 12, 31, 23, tzinfo=UTC)
    end = datetime(2024, 2, 1, tzinfo=UTC)
    months = partition_bounds(start, end, "month")
    assert [b[0].month for b in months] == [12, 1, 2]
    assert months[0][1] == datetime(2024, 1, 1, tzinfo=UTC)
    days = partition_bounds(start, datetime(2024, 1, 1, 0, 30, tzinfo=UTC), "day")
    assert days == [
        (datetime(2023, 12, 31, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=UTC)),
        (datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC)),
    ]


def test_primary_key_covers_the_fixed_width_features() -> None:
    view = market_definitions().view("bars_1m")
    assert covered_features(view) == list(view.feature_names)
    ddl = _columns(view, ["symbol"]).as_string(None)
    assert 'PRIMARY KEY ("symbol", "event_timestamp") INCLUDE ("open", "high"' in ddl
    with_text = replace(view, features=(*view.features, Feature("venue", ValueType.STRING)))
    assert "venue" not in covered_features(with_text)

from __future__ import annotations

from datetime import UTC, datetime

from featurestore.definitions import market_definitions
from featurestore.offline._query import ViewJoin, join_query
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


def test_join_query_bounds_by_ttl_and_breaks_ties_by_created() -> None:
    view = market_definitions().view("bars_1m")
    query = join_query([ViewJoin(view, "symbol", view.features[:2], ("open", "high"))])
    text = query.as_string(None)
    assert "LEFT JOIN LATERAL" in text
    assert '"event_timestamp" <= e.ts' in text
    assert "e.ts - 3600.0 * interval '1 second'" in text
    assert 'ORDER BY f."event_timestamp" DESC, f."created_timestamp" DESC LIMIT 1' in text

"""Where the settled past a column copy holds ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from featurestore.offline.column_copy import settled_until


def test_the_settled_past_ends_an_hour_back_on_a_whole_utc_hour() -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    now = datetime(2026, 12, 5, 13, 10, tzinfo=india)  # 07:40 UTC
    assert settled_until(now) == datetime(2026, 12, 5, 6, tzinfo=UTC)
    assert settled_until(datetime(2026, 12, 5, 7, 0, tzinfo=UTC)) == datetime(
        2026, 12, 5, 6, tzinfo=UTC
    )

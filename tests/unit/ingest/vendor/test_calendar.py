"""The regular US session: holidays, early closes, the minutes of a range."""

from __future__ import annotations

from datetime import UTC
from datetime import date
from datetime import datetime

import pytest

from featurestore.ingest.vendor import is_trading_day
from featurestore.ingest.vendor import session
from featurestore.ingest.vendor import session_minutes
from featurestore.ingest.vendor.calendar import early_close
from featurestore.ingest.vendor.calendar import holidays

# NYSE's published holidays (nyse.com, "Holidays & trading hours").
NYSE_2024 = {
    date(2024, 1, 1), date(2024, 1, 15), date(2024, 2, 19), date(2024, 3, 29), date(2024, 5, 27),
    date(2024, 6, 19), date(2024, 7, 4), date(2024, 9, 2), date(2024, 11, 28), date(2024, 12, 25),
}  # fmt: skip
NYSE_2026 = {
    date(2026, 1, 1), date(2026, 1, 19), date(2026, 2, 16), date(2026, 4, 3), date(2026, 5, 25),
    date(2026, 6, 19), date(2026, 7, 3), date(2026, 9, 7), date(2026, 11, 26), date(2026, 12, 25),
}  # fmt: skip


def test_holidays_match_the_exchanges_published_lists() -> None:
    assert holidays(2024) == NYSE_2024
    assert holidays(2026) == NYSE_2026
    # New Year's Day on a Saturday is not observed on Friday Dec 31st.
    assert date(2021, 12, 31) not in holidays(2021) and is_trading_day(date(2021, 12, 31))
    # Before Juneteenth became a market holiday (2022).
    assert date(2021, 6, 18) not in holidays(2021)
    assert date(2025, 1, 9) in holidays(2025)  # a one-off closure


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2013, 7, 3), True),
        (date(2013, 11, 29), True),
        (date(2024, 12, 24), True),
        (date(2022, 7, 1), False),  # July 4th on a Monday: no early close on Friday
        (date(2013, 10, 7), False),
        (date(2027, 12, 24), False),  # a holiday (Christmas observed), not an early close
    ],
)
def test_early_closes(day: date, expected: bool) -> None:
    assert early_close(day) is expected


def test_a_session_in_utc_follows_daylight_saving() -> None:
    assert session(date(2013, 10, 7)) == (
        datetime(2013, 10, 7, 13, 30, tzinfo=UTC),
        datetime(2013, 10, 7, 20, 0, tzinfo=UTC),
    )
    assert session(date(2024, 1, 10)) == (
        datetime(2024, 1, 10, 14, 30, tzinfo=UTC),
        datetime(2024, 1, 10, 21, 0, tzinfo=UTC),
    )
    assert session(date(2024, 12, 24)) == (
        datetime(2024, 12, 24, 14, 30, tzinfo=UTC),
        datetime(2024, 12, 24, 18, 0, tzinfo=UTC),
    )
    assert session(date(2024, 7, 6)) is None  # a Saturday


def test_session_minutes_of_a_range() -> None:
    full = list(
        session_minutes(datetime(2013, 10, 4, tzinfo=UTC), datetime(2013, 10, 8, tzinfo=UTC))
    )
    assert len(full) == 2 * 390  # Friday and Monday, not the weekend
    part = list(
        session_minutes(
            datetime(2013, 10, 7, 13, 40, 30, tzinfo=UTC), datetime(2013, 10, 7, 13, 45, tzinfo=UTC)
        )
    )
    assert part == [datetime(2013, 10, 7, 13, m, tzinfo=UTC) for m in range(41, 45)]

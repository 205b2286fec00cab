"""The regular US equity session (NYSE/Nasdaq): which minutes a symbol should have bars for.

Rules, kept here instead of a calendar package (``exchange_calendars`` and
``pandas_market_calendars`` pull a dozen packages for the one calendar this needs): the session
is 09:30-16:00 America/New_York on weekdays, except the exchange holidays below; it closes at
13:00 on the day after Thanksgiving, on Christmas Eve and on July 3rd when those are trading
days (:func:`early_close`).

Holidays (observed on the Friday before when on a Saturday, the Monday after when on a Sunday;
New Year's Day on a Saturday is not observed): New Year's Day, Martin Luther King Jr. Day (3rd
Monday of January, since 1998), Washington's Birthday (3rd Monday of February), Good Friday,
Memorial Day (last Monday of May), Juneteenth (since 2022), Independence Day, Labor Day (1st
Monday of September), Thanksgiving (4th Thursday of November), Christmas. Plus the one-off
closures of :data:`SPECIAL_CLOSURES`, the list to maintain.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from zoneinfo import ZoneInfo

__all__ = [
    "SPECIAL_CLOSURES",
    "early_close",
    "holidays",
    "is_trading_day",
    "session",
    "session_minutes",
    "trading_days",
]

NEW_YORK = ZoneInfo("America/New_York")
OPEN = time(9, 30)
CLOSE = time(16, 0)
EARLY_CLOSE = time(13, 0)

SPECIAL_CLOSURES: frozenset[date] = frozenset(
    {
        date(2001, 9, 11), date(2001, 9, 12), date(2001, 9, 13), date(2001, 9, 14),
        date(2004, 6, 11),  # President Reagan's funeral
        date(2007, 1, 2),  # President Ford's funeral
        date(2012, 10, 29), date(2012, 10, 30),  # Hurricane Sandy
        date(2018, 12, 5),  # President G. H. W. Bush's funeral
        date(2025, 1, 9),  # President Carter's funeral
    }
)  # fmt: skip
"""Closures outside the rules (to maintain as the exchanges announce them)."""


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def _last_weekday(year: int, month: int, weekday: int) -> date:
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _easter(year: int) -> date:
    """Gregorian Easter Sunday (the anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    m = (32 + 2 * e + 2 * i - h - k) % 7
    n = (a + 11 * h + 19 * m) // 433
    month = (h + m - 7 * n + 90) // 25
    return date(year, month, (h + m - 7 * n + 33 * month + 19) % 32)


def _observed(day: date) -> date:
    if day.weekday() == 5:
        return day - timedelta(days=1)
    if day.weekday() == 6:
        return day + timedelta(days=1)
    return day


def holidays(year: int) -> frozenset[date]:
    """The full-day exchange holidays of ``year`` by the rules, plus the special closures."""
    days = {
        _nth_weekday(year, 2, 0, 3),
        _easter(year) - timedelta(days=2),
        _last_weekday(year, 5, 0),
        _observed(date(year, 7, 4)),
        _nth_weekday(year, 9, 0, 1),
        _nth_weekday(year, 11, 3, 4),
        _observed(date(year, 12, 25)),
    }
    if date(year, 1, 1).weekday() != 5:  # on a Saturday it is not observed (the Friday before
        days.add(_observed(date(year, 1, 1)))  # is the last trading day of the year)
    if year >= 1998:
        days.add(_nth_weekday(year, 1, 0, 3))
    if year >= 2022:
        days.add(_observed(date(year, 6, 19)))
    return frozenset(days | {d for d in SPECIAL_CLOSURES if d.year == year})


def is_trading_day(day: date) -> bool:
    """Whether the regular session opens on ``day``."""
    return day.weekday() < 5 and day not in holidays(day.year)


def early_close(day: date) -> bool:
    """Whether a trading day closes at 13:00: July 3rd, the day after Thanksgiving, Dec 24th.

    July 3rd closes early when July 4th falls on Tuesday to Friday (a Monday July 4th leaves
    Friday July 1st a full day; a Saturday one makes July 3rd the holiday itself).
    """
    if not is_trading_day(day):
        return False
    if day == _nth_weekday(day.year, 11, 3, 4) + timedelta(days=1):
        return True
    if day.month == 12 and day.day == 24:
        return True
    return day.month == 7 and day.day == 3 and date(day.year, 7, 4).weekday() in (1, 2, 3, 4)


def session(day: date) -> tuple[datetime, datetime] | None:
    """The regular session of ``day`` as UTC ``[open, close)``, or None on a closed day."""
    if not is_trading_day(day):
        return None
    close = EARLY_CLOSE if early_close(day) else CLOSE
    return (
        datetime.combine(day, OPEN, NEW_YORK).astimezone(UTC),
        datetime.combine(day, close, NEW_YORK).astimezone(UTC),
    )


def trading_days(first: date, last: date) -> Iterator[date]:
    """The trading days from ``first`` to ``last``, both included."""
    day = first
    while day <= last:
        if is_trading_day(day):
            yield day
        day += timedelta(days=1)


def session_minutes(start: datetime, end: datetime) -> Iterator[datetime]:
    """The starts (UTC) of every regular-session minute within ``[start, end)``."""
    first = start.astimezone(NEW_YORK).date()
    last = end.astimezone(NEW_YORK).date()
    minute = timedelta(minutes=1)
    for day in trading_days(first, last):
        opened = session(day)
        assert opened is not None
        t, close = opened
        t = max(t, _ceil_minute(start))
        close = min(close, end)
        while t < close:
            yield t
            t += minute


def _ceil_minute(value: datetime) -> datetime:
    value = value.astimezone(UTC)
    floor = value.replace(second=0, microsecond=0)
    return floor if floor == value else floor + timedelta(minutes=1)

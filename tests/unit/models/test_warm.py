"""From when rows have full windows: after the log's start and after the feed was stopped."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import numpy as np
import pandas as pd

from models.data.warm import warm_from
from models.data.warm import warm_rows

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
WARM_UP = timedelta(minutes=20)


def _minutes(first: int, last: int, symbols: int = 2) -> list[datetime]:
    return [T0 + i * MINUTE for i in range(first, last) for _ in range(symbols)]


def test_a_log_that_starts_in_the_span_is_warm_after_its_longest_window() -> None:
    assert warm_from(_minutes(0, 60), WARM_UP) == T0 + WARM_UP


def test_a_stream_that_goes_on_from_before_the_span_is_warm_from_its_start() -> None:
    span_start = T0 - 30 * MINUTE
    times = _minutes(-30, 60)
    assert warm_from(times, WARM_UP, continues=span_start) == span_start
    # quiet minutes are a quiet market, not a restart
    quiet = [t for t in times if not T0 <= t < T0 + 4 * MINUTE]
    assert warm_from(quiet, WARM_UP, continues=span_start) == span_start


def test_the_windows_fill_again_after_the_feed_was_stopped() -> None:
    times = pd.Series(_minutes(-30, 10) + _minutes(100, 160))  # stopped for 90 minutes
    assert warm_from(times, WARM_UP, continues=T0 - 30 * MINUTE) == T0 + 100 * MINUTE + WARM_UP
    # a table with rows before the span but none in its first minutes restarted in it
    assert warm_from(_minutes(10, 60), WARM_UP, continues=T0) == T0 + 10 * MINUTE + WARM_UP


def test_no_rows_no_warm_time() -> None:
    assert warm_from([], WARM_UP) is None


def test_rows_are_warm_from_the_longest_window_after_each_restart() -> None:
    times = pd.Series(_minutes(0, 40, symbols=1) + _minutes(100, 130, symbols=1))
    warm = warm_rows(times, WARM_UP)
    minutes = [int((t - T0) / MINUTE) for t in times[warm]]
    assert minutes == [*range(20, 40), *range(120, 130)]
    # in any order, repeats included; and a table that goes on from before the span
    shuffled = times.sample(frac=1.0, random_state=0)
    np.testing.assert_array_equal(warm_rows(shuffled, WARM_UP), warm[shuffled.index])
    continuing = warm_rows(times, WARM_UP, continues=T0 - MINUTE)
    assert continuing[:40].all() and continuing.sum() == 40 + 10
    assert warm_rows(_minutes(0, 40), WARM_UP, continues=T0 - MINUTE).all()  # no restart
    assert warm_rows([], WARM_UP).size == 0

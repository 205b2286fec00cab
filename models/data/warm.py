"""Which of a table's rows have full windows: not those just after the stream (re)started.

Rolling windows are clock time. In the first minutes of a log, and again after the feed was
stopped, a 20-minute window covers fewer minutes of trading than it says: a ratio to it (the
volume ratio) is biased high, a volatility is computed on fewer returns. Those rows are real
rows, but a distribution learned or measured over them says more about the warm-up than about
the market: training and drift leave them out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = ["SILENCE", "warm_from", "warm_rows"]

SILENCE = timedelta(minutes=5)
"""A gap longer than this between a table's row times (of any entity) is the feed stopping,
not a quiet market: the windows are warm again only ``warm_up`` after the next row."""

Times: TypeAlias = "Sequence[datetime] | pd.Series[Any]"


def _restarts_of(
    times: Times, continues: datetime | None, silence: timedelta
) -> tuple[npt.NDArray[np.datetime64], npt.NDArray[np.datetime64]]:
    """``times`` as naive UTC, and the sorted (re)starts among them.

    The first time, unless the table ``continues`` from before it, and each time more than
    ``silence`` after the one before.
    """
    values: npt.NDArray[np.datetime64] = (
        pd.to_datetime(pd.Series(times), utc=True).dt.tz_convert(None).to_numpy("datetime64[ns]")
    )
    stamps = np.unique(values)
    if stamps.size == 0:
        return values, stamps
    if continues is None:
        opened = True
    else:
        before = pd.Timestamp(continues).tz_convert("UTC").tz_localize(None).to_datetime64()
        opened = bool(stamps[0] - before > np.timedelta64(silence))
    gaps = np.diff(stamps) > np.timedelta64(silence)
    restarts: npt.NDArray[np.datetime64] = stamps[np.concatenate([[opened], gaps])]
    return values, restarts


def warm_rows(
    times: Times,
    warm_up: timedelta,
    *,
    continues: datetime | None = None,
    silence: timedelta = SILENCE,
) -> npt.NDArray[np.bool_]:
    """Per row of ``times`` (in their order): whether its windows are full.

    ``times``: a table's row times over a span (any order, repeats allowed). ``continues``:
    the table also has rows up to this time, before the span (None: the span starts the
    table, as a fresh log does). The stream (re)starts at its first row and at each row more
    than ``silence`` after the one before; a row is warm ``warm_up`` after the latest (re)start
    at or before it, and always when the stream has not (re)started since ``continues``.
    """
    values, restarts = _restarts_of(times, continues, silence)
    if restarts.size == 0:  # none in the span, or no rows at all
        return np.ones(values.size, dtype=bool)
    latest = np.searchsorted(restarts, values, side="right") - 1
    since = restarts[np.maximum(latest, 0)]
    return (latest < 0) | (values - since >= np.timedelta64(warm_up))


def warm_from(
    times: Times,
    warm_up: timedelta,
    *,
    continues: datetime | None = None,
    silence: timedelta = SILENCE,
) -> datetime | None:
    """When the windows are full after the latest (re)start among ``times``.

    As in :func:`warm_rows`; ``continues`` when there is no (re)start, None when ``times`` is
    empty.
    """
    values, restarts = _restarts_of(times, continues, silence)
    if values.size == 0:
        return None
    if restarts.size == 0:
        return continues
    restart: datetime = pd.Timestamp(restarts[-1]).tz_localize("UTC").to_pydatetime()
    return restart + warm_up

"""From when a table's rows have full windows: after the stream's start and after any silence.

Rolling windows are clock time. In the first minutes of a log, and again after the feed was
stopped, a 20-minute window covers fewer minutes of trading than it says: a ratio to it (the
volume ratio) is biased high, a volatility is computed on fewer returns. Those rows are real
rows, but a distribution measured over them says more about the warm-up than about the market.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

__all__ = ["SILENCE", "warm_from"]

SILENCE = timedelta(minutes=5)
"""A gap longer than this between a table's row times (of any entity) is the feed stopping,
not a quiet market: the windows are warm again only ``warm_up`` after the next row."""


def warm_from(
    times: Sequence[datetime] | pd.Series,
    warm_up: timedelta,
    *,
    continues: datetime | None = None,
    silence: timedelta = SILENCE,
) -> datetime | None:
    """The first time at which the rows of ``times`` have full windows (None: no times).

    ``times``: a table's row times over a span (any order, repeats allowed). ``continues``:
    the table also has rows up to this time, before the span (None: the span starts the
    table, as a fresh log does). The stream (re)starts at its first row and at each row more
    than ``silence`` after the one before; the windows are full ``warm_up`` after the last
    (re)start, or already at ``continues`` when the stream has not (re)started in the span.
    """
    utc = pd.to_datetime(pd.Series(times), utc=True).dt.tz_convert(None)
    stamps = np.unique(utc.to_numpy(dtype="datetime64[ns]"))
    if stamps.size == 0:
        return None
    if continues is None:
        opened = True
    else:
        before = pd.Timestamp(continues).tz_convert("UTC").tz_localize(None).to_datetime64()
        opened = bool(stamps[0] - before > np.timedelta64(silence))
    gaps = np.diff(stamps) > np.timedelta64(silence)
    restarts = np.flatnonzero(np.concatenate([[opened], gaps]))
    if restarts.size == 0:
        return continues
    restart: datetime = pd.Timestamp(stamps[restarts[-1]]).tz_localize("UTC").to_pydatetime()
    return restart + warm_up

"""Where the settled past a column copy holds ends; the merge's TTL bound, to the microsecond."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from datetime import timezone

import numpy as np
import pyarrow as pa
import pytest

from featurestore.offline.asof import sort_rows
from featurestore.offline.column_copy import ColumnCopy
from featurestore.offline.column_copy import CopyMeta
from featurestore.offline.column_copy import settled_until


def test_the_settled_past_ends_an_hour_back_on_a_whole_utc_hour() -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    now = datetime(2026, 12, 5, 13, 10, tzinfo=india)  # 07:40 UTC
    assert settled_until(now) == datetime(2026, 12, 5, 6, tzinfo=UTC)
    assert settled_until(datetime(2026, 12, 5, 7, 0, tzinfo=UTC)) == datetime(
        2026, 12, 5, 6, tzinfo=UTC
    )


def _copy(micros: list[int], ttl_values: list[float]) -> ColumnCopy:
    keys = pa.array(["AAA"])
    codes = np.zeros(len(micros), dtype=np.int64)
    event = np.array(micros, dtype=np.int64)
    rows, permutation = sort_rows(codes, keys, event, event + 1)
    values = pa.table({"x": pa.array(np.array(ttl_values)[permutation])})
    meta = CopyMeta("v", "t", "symbol", ["x"], "2024-01-01T00:00:00+00:00", "", [], "", len(event))
    return ColumnCopy(meta, rows, values)


@pytest.mark.parametrize("ttl_us", [1_008_600, 1_020_598, 3_600_000_000, 30_000_250])
def test_a_row_exactly_a_ttl_old_is_joined_whatever_the_ttls_microseconds(ttl_us: int) -> None:
    # 1.0086 s through float seconds was 1,008,599 µs: the row at the bound was dropped.
    t0 = 1_700_000_000_000_000
    copy = _copy([t0], [1.5])
    ttl = timedelta(microseconds=ttl_us)
    at = np.array([t0 + ttl_us, t0 + ttl_us + 1, t0, t0 - 1], dtype=np.int64)
    (x,) = copy.join(pa.array(["AAA"] * 4), at, ["x"], ttl)
    assert x.to_pylist() == [1.5, None, 1.5, None]
    (forever,) = copy.join(pa.array(["AAA"]), at[1:2], ["x"], timedelta(0))
    assert forever.to_pylist() == [1.5]

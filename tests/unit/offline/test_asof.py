"""The as-of search on sorted columns against a row-by-row reference of the same rule."""

from __future__ import annotations

from typing import cast

import numpy as np
import pyarrow as pa
import pytest

from featurestore.offline.asof import sort_rows

MINUTE = 60_000_000


def _reference(rows: list[tuple[str, int, int]], key: str, t: int, ttl: int | None) -> int | None:
    """Index into ``rows`` of the latest row of ``key`` at or before ``t`` (latest created)."""
    best = None
    for i, (k, ts, created) in enumerate(rows):
        if k != key or ts > t or (ttl is not None and ts < t - ttl):
            continue
        if best is None or (ts, created) > rows[best][1:]:
            best = i
    return best


@pytest.mark.parametrize("ttl", [None, 30 * MINUTE])
@pytest.mark.parametrize("seed", range(5))
def test_positions_match_the_row_by_row_rule(seed: int, ttl: int | None) -> None:
    rng = np.random.default_rng(seed)
    keys = ["A", "B", "C", "D"]
    n = 400
    codes = rng.integers(0, len(keys), n)
    micros = rng.integers(0, 240, n) * MINUTE  # minutes: many ties on (key, time)
    created = micros + rng.permutation(n) * 1_000
    rows = [(keys[c], int(t), int(cr)) for c, t, cr in zip(codes, micros, created, strict=True)]
    sorted_rows, permutation = sort_rows(codes, pa.array(keys), micros, created)

    q = 600
    query_keys = rng.choice([*keys, "unknown"], q)
    query_times = rng.integers(-20, 300, q) * MINUTE + rng.choice([0, 1, -1], q)
    positions = sorted_rows.positions(pa.array(query_keys), query_times, ttl)

    for key, t, position in zip(query_keys, query_times, positions.to_pylist(), strict=True):
        expected = _reference(rows, str(key), int(t), ttl)
        got = None if position is None else int(permutation[position])
        if expected is None or got is None:
            assert got == expected, (key, t)
        else:  # the same row, or one equal to it on (key, time, created)
            assert rows[got] == rows[expected], (key, t)
    assert positions.null_count and positions.null_count < q  # both outcomes happen


def test_no_rows_and_no_queries() -> None:
    empty, _ = sort_rows(
        np.empty(0, np.int64), pa.array([], pa.string()), np.empty(0, np.int64), np.empty(0)
    )
    assert empty.positions(pa.array(["A"]), np.array([5]), None).to_pylist() == [None]
    some, _ = sort_rows(np.array([0]), pa.array(["A"]), np.array([5]), np.array([6]))
    assert some.positions(pa.array([], pa.string()), np.empty(0, np.int64), None).to_pylist() == []
    assert some.positions(pa.array(["A", "A"]), np.array([4, 5]), None).to_pylist() == [None, 0]


def test_refuses_more_than_a_sort_number_holds() -> None:
    times = np.arange(3, dtype=np.int64)
    many_keys = cast("pa.Array", _Huge())
    with pytest.raises(ValueError, match="do not fit a 64-bit sort number"):
        sort_rows(np.zeros(3, np.int64), many_keys, times, times)


class _Huge(list[str]):
    """A key list that claims 2**61 keys without holding them (only its length is read)."""

    def __len__(self) -> int:
        return 2**61

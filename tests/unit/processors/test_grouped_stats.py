"""Folding many tiles' events at once gives the very statistics of folding them one by one."""

from __future__ import annotations

import numpy as np
import pytest

from processors.features import stats
from processors.features.stats import ColumnStats
from processors.features.stats import add_grouped


def _draw(rng: np.random.Generator, events: int, tiles: int) -> tuple[np.ndarray, ...]:
    values = rng.normal(1e4, 3.0, events)  # far from zero: the deviations' sums matter
    values[rng.random(events) < 0.1] = np.nan
    values[rng.random(events) < 0.2] = 1e4  # repeated values, for the distinct sets
    times = rng.integers(0, 50, events).astype(np.int64)  # ties and disorder
    offsets = rng.permutation(events).astype(np.int64)
    group = rng.integers(0, tiles, events).astype(np.int64)
    return values, times, offsets, group


def _state(s: ColumnStats) -> list[object]:
    return s.to_doc()  # floats compared exactly, NaN as None


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("longest", [3, 256])  # some tiles over the matrix's limit, or none
def test_grouped_fold_equals_one_tile_at_a_time(
    seed: int, longest: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stats, "GROUPED_MAX_EVENTS", longest)
    rng = np.random.default_rng(seed)
    tiles = 7
    one = [ColumnStats() for _ in range(tiles)]
    grouped = [ColumnStats() for _ in range(tiles)]
    most = 0
    for _ in range(4):  # several batches: the second and later continue the stored sums
        values, times, offsets, group = _draw(rng, int(rng.integers(0, 40)), tiles)
        for k in range(tiles):
            mine = group == k
            if mine.any():
                one[k].add(
                    values[mine], times[mine], offsets[mine], distinct=True, keep_values=True
                )
        add_grouped(grouped, values, times, offsets, group, distinct=True, keep_values=True)
        most = max(most, int(np.bincount(group[~np.isnan(values)], minlength=1).max()))
        assert [_state(s) for s in grouped] == [_state(s) for s in one]
    assert (most > longest) == (longest == 3)  # both paths taken, or the matrix alone


def test_a_batch_of_nulls_changes_nothing() -> None:
    s = ColumnStats()
    add_grouped([s], np.full(3, np.nan), np.arange(3), np.arange(3), np.zeros(3, np.int64),
                distinct=False)  # fmt: skip
    assert _state(s) == _state(ColumnStats())


def test_kept_values_go_through_the_state_and_a_state_from_before_them_reads() -> None:
    s = ColumnStats()
    s.add(np.array([3.0, np.nan, 1.0]), np.arange(3), np.arange(3), distinct=False,
          keep_values=True)  # fmt: skip
    assert s.kept is not None and s.kept.tolist() == [3.0, 1.0]
    assert ColumnStats.from_doc(s.to_doc()) == s
    before = s.to_doc()[:10]  # a tile stored by a version without kept values
    assert ColumnStats.from_doc(before).kept is None


@pytest.mark.parametrize("seed", range(20))
def test_percentile_is_numpys_linear_one(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = rng.normal(0, 10, int(rng.integers(1, 60))).round(int(rng.integers(0, 3)))
    ordered = sorted(values.tolist())
    for q in (0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0):
        assert stats.percentile(ordered, q) == pytest.approx(
            float(np.percentile(values, q * 100)), rel=1e-12, abs=1e-12
        ), q
    assert np.isnan(stats.percentile([], 0.5))

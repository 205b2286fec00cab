"""Rows of running views: a row at each given time of an (entity, tile), for many at once.

A running row at t covers ``[floor_T(t) + T - w, t]``: the closed tiles of the window (a
summary per entity, merged in Python as before) and the open tile's events up to t, whose
running statistics are the costly part. Each (entity, tile) to emit rows for is an
:class:`RunningItem`; the running statistics of every item are computed together, one item
per column of padded matrices accumulated down their rows, so a batch costs a fixed number of
NumPy calls per view instead of per entity. The sums are the very sequential additions a loop
over one entity's events makes (``np.cumsum`` down a column; padding is never read), so the
rows do not depend on how the log was cut or which entities shared a batch.

A tile whose events arrived in time order continues from the statistics of its events before
the last fold (``OpenTile.start``): only the new events are read. Otherwise (events out of
order, or a ``count_distinct`` whose new values must be told from the old ones) the tile's
events are read from its first, in (time, offset) order.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from featurestore.definitions.model import AggFunction
from processors.features.plan import AggPlan
from processors.features.plan import TopicPlan
from processors.features.plan import ViewPlan
from processors.features.state import EntityState
from processors.features.state import OpenTile
from processors.features.stats import ColumnStats
from processors.features.stats import Summary
from processors.features.stats import finalize
from processors.features.stats import percentile

__all__ = ["RowBlock", "RunningItem", "running_rows"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
MATRIX_CELLS = 1 << 20
"""Items are computed in groups whose padded matrices hold at most this many cells (or one)."""


@dataclass(frozen=True)
class RunningItem:
    """Rows of one entity's tile to emit: at ``times`` (sorted, distinct, all in the tile)."""

    name: str
    entity: EntityState
    tile_start: int
    times: I64


@dataclass(frozen=True)
class RowBlock:
    """Rows of several entities, as columns (the aggregations' values by name)."""

    entity: npt.NDArray[np.object_]
    times: I64
    created_ms: I64
    first_offset: I64
    last_offset: I64
    values: dict[str, F64]


@dataclass
class _Segment:
    """One item's open-tile events to read, in (time, offset) order, and its rows' places."""

    item: RunningItem
    tile: OpenTile | None
    order: I64 | None
    """The tile's events to read, by index (None: all from ``part``, already in order)."""
    part: int
    """Events of the tile before this one are summarised by ``tile.start`` (0: none)."""
    at: I64
    """Per row, the position in the segment of its last event (-1: none)."""
    meta: tuple[int, int, int, int]
    """(events, Kafka max, offset min, offset max) of the window's closed tiles."""

    def __len__(self) -> int:
        if self.tile is None:
            return 0
        return (len(self.tile) if self.order is None else len(self.order)) - self.part

    def column(self, values: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
        """A column of the tile, read as the segment reads it."""
        return values[self.part :] if self.order is None else values[self.order]

    def start(self, column: str) -> ColumnStats | None:
        """Statistics of ``column`` over the events before the segment (None: none)."""
        if not self.part or self.tile is None:
            return None
        stats = self.tile.start.get(column)
        return stats if stats is not None and stats.n else None


def running_rows(plan: TopicPlan, view: ViewPlan, items: Sequence[RunningItem]) -> RowBlock | None:
    """The rows of ``view`` at each item's times (a row only where its window has an event)."""
    if not items:
        return None
    whole = any(a.column in plan.distinct | plan.kept for a in view.aggregations)
    segments = [_segment(plan, view, item, whole) for item in items]
    blocks = [_rows(plan, view, group) for group in _groups(segments)]
    kept = [b for b in blocks if b is not None]
    if not kept:
        return None
    if len(kept) == 1:
        return kept[0]
    return RowBlock(
        np.concatenate([b.entity for b in kept]),
        np.concatenate([b.times for b in kept]),
        np.concatenate([b.created_ms for b in kept]),
        np.concatenate([b.first_offset for b in kept]),
        np.concatenate([b.last_offset for b in kept]),
        {k: np.concatenate([b.values[k] for b in kept]) for k in kept[0].values},
    )


def _segment(plan: TopicPlan, view: ViewPlan, item: RunningItem, whole: bool) -> _Segment:
    """``item``'s tile events: those after the stored start, or all from the first.

    All where ``whole``: a count_distinct or a percentile, whose values so far are not a running
    statistic that could continue from the start's.
    """
    tile = plan.tile_us
    entity, start = item.entity, item.tile_start
    meta = entity.tiles_meta(start - view.max_window_us, start, tile)
    held = entity.open.get(start)
    if held is None or not len(held):
        return _Segment(item, None, None, 0, np.full(len(item.times), -1, np.int64), meta)
    if held.ordered:
        at = np.searchsorted(held.event_us, item.times, side="right") - 1
        part = held.start_n
        if whole or not part or int(at.min()) < part:
            part = 0
        return _Segment(item, held, None, part, at - part, meta)
    order = np.lexsort((held.offset, held.event_us))
    at = np.searchsorted(held.event_us[order], item.times, side="right") - 1
    return _Segment(item, held, order, 0, at, meta)


def _groups(segments: list[_Segment]) -> list[list[_Segment]]:
    """Segments in groups whose padded matrices stay within :data:`MATRIX_CELLS`."""
    if len(segments) * max(len(s) for s in segments) <= MATRIX_CELLS:
        return [segments]
    ranked = sorted(segments, key=len, reverse=True)
    groups: list[list[_Segment]] = []
    for s in ranked:
        if groups and (len(groups[-1]) + 1) * len(groups[-1][0]) <= MATRIX_CELLS:
            groups[-1].append(s)
        else:
            groups.append([s])
    return groups


class _Matrix:
    """One column of every segment of a group: a matrix with a segment per column, NaN-padded."""

    def __init__(
        self, segments: list[_Segment], values: list[npt.NDArray[np.generic]], fill: float
    ) -> None:
        self.length = max(1, max(len(s) for s in segments))
        sizes = np.fromiter((len(s) for s in segments), np.int64, len(segments))
        self.sizes = sizes
        matrix = np.full((self.length, len(segments)), fill)
        if sizes.sum():
            rows = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
            cols = np.repeat(np.arange(len(segments)), sizes)
            matrix[rows, cols] = np.concatenate(values)
        self.values = matrix


class _Prefix:
    """Running statistics of one column down each segment, continuing from its start."""

    def __init__(self, segments: list[_Segment], column: str, matrix: _Matrix) -> None:
        self.v = matrix.values
        self.mask = ~np.isnan(self.v)
        self.starts = [s.start(column) for s in segments]
        self._cache: dict[str, F64 | I64] = {}

    def _initial(self, pick: str, empty: float) -> F64:
        return np.array([empty if s is None else float(getattr(s, pick)) for s in self.starts])

    def get(self, stat: str) -> F64 | I64:
        """``n``, ``total``, ``mean``, ``m2``, ``lo``, ``hi``, ``first`` or ``last``."""
        if stat not in self._cache:
            self._compute(stat)
        return self._cache[stat]

    def _running_sum(self, initial: F64, values: F64) -> F64:
        out: F64 = np.cumsum(np.vstack((initial[None, :], values)), axis=0)[1:]
        return out

    def _compute(self, stat: str) -> None:
        v, mask, c = self.v, self.mask, self._cache
        if stat == "n":
            n0 = np.array([0 if s is None else s.n for s in self.starts], np.int64)
            c["n"] = np.cumsum(mask, axis=0, dtype=np.int64) + n0[None, :]
        elif stat == "total":
            c["total"] = self._running_sum(self._initial("total", 0.0), np.where(mask, v, 0.0))
        elif stat in ("mean", "m2"):
            anything = mask.any(axis=0)
            first = v[np.argmax(mask, axis=0), np.arange(v.shape[1])]
            own = np.where(anything, first, 0.0)
            ref = np.array(
                [own[j] if s is None else s.ref for j, s in enumerate(self.starts)], np.float64
            )
            d = np.where(mask, v - ref[None, :], 0.0)
            s1 = self._running_sum(self._initial("s1", 0.0), d)
            s2 = self._running_sum(self._initial("s2", 0.0), d * d)
            n = self.get("n")
            with np.errstate(divide="ignore", invalid="ignore"):
                c["mean"] = np.where(n > 0, ref[None, :] + s1 / np.maximum(n, 1), 0.0)
                c["m2"] = np.maximum(np.where(n > 0, s2 - s1 * s1 / np.maximum(n, 1), 0.0), 0.0)
        elif stat == "lo":
            c["lo"] = np.fmin.accumulate(np.vstack((self._initial("lo", math.nan)[None], v)))[1:]
        elif stat == "hi":
            c["hi"] = np.fmax.accumulate(np.vstack((self._initial("hi", math.nan)[None], v)))[1:]
        elif stat == "first":
            cols = np.arange(v.shape[1])
            first_i = np.where(mask.any(axis=0), np.argmax(mask, axis=0), v.shape[0])
            value = v[np.minimum(first_i, v.shape[0] - 1), cols]
            rows = np.arange(v.shape[0])[:, None]
            own = np.where(rows >= first_i[None, :], value[None, :], math.nan)
            stored = np.array(
                [math.nan if s is None or s.first is None else s.first[0] for s in self.starts]
            )
            has_stored = np.array([s is not None and s.first is not None for s in self.starts])
            c["first"] = np.where(has_stored[None, :], stored[None, :], own)
        elif stat == "last":
            rows = np.arange(v.shape[0])[:, None]
            idx = np.maximum.accumulate(np.where(mask, rows, -1), axis=0)
            stored = np.array(
                [math.nan if s is None or s.last is None else s.last[0] for s in self.starts]
            )
            cols = np.broadcast_to(np.arange(v.shape[1])[None, :], v.shape)
            c["last"] = np.where(idx >= 0, v[np.maximum(idx, 0), cols], stored[None, :])
        else:  # pragma: no cover - the callers ask for the names above
            raise KeyError(stat)


def _rows(plan: TopicPlan, view: ViewPlan, segments: list[_Segment]) -> RowBlock | None:
    tile = plan.tile_us
    counts = np.fromiter((len(s.item.times) for s in segments), np.int64, len(segments))
    item = np.repeat(np.arange(len(segments)), counts)
    at = np.concatenate([s.at for s in segments])
    has = at >= 0
    pos = np.maximum(at, 0)
    meta = np.array([s.meta for s in segments], np.int64).reshape(len(segments), 4)
    events, kafka, lo, hi = (meta[item, k] for k in range(4))
    created, first, last = kafka, lo, hi
    if any(s.tile is not None for s in segments):
        empty = np.empty(0, np.int64)
        before = [_before(s) for s in segments]
        k_seg = [s.column(s.tile.kafka_ms) if s.tile else empty for s in segments]
        k_m = _Matrix(segments, k_seg, -1)
        o_seg = [s.column(s.tile.offset) if s.tile else empty for s in segments]
        o_lo = _Matrix(segments, o_seg, 2**62)
        o_hi = _Matrix(segments, o_seg, -1)
        k0, lo0, hi0 = np.array(before, np.int64).reshape(len(segments), 3).T
        k_cum = np.maximum.accumulate(np.vstack((k0[None], k_m.values)), axis=0)[1:]
        o_min = np.minimum.accumulate(np.vstack((lo0[None], o_lo.values)), axis=0)[1:]
        o_max = np.maximum.accumulate(np.vstack((hi0[None], o_hi.values)), axis=0)[1:]
        created = np.where(has, np.maximum(kafka, k_cum[pos, item]), kafka)
        first = np.where(has, np.minimum(lo, o_min[pos, item]), lo)
        last = np.where(has, np.maximum(hi, o_max[pos, item]), hi)
    keep = has | (events > 0)
    if not keep.any():
        return None
    values: dict[str, F64] = {}
    prefixes: dict[str, _Prefix] = {}
    bases: dict[tuple[str, int], list[Summary]] = {}
    percentiles: dict[tuple[str, int], dict[float, F64]] = {}
    for agg in view.aggregations:
        key = (agg.column, agg.window_us)
        if key not in bases:
            bases[key] = [
                s.item.entity.window_summary(
                    agg.column, s.item.tile_start + tile - agg.window_us, s.item.tile_start, tile
                )
                for s in segments
            ]
        if agg.column not in prefixes:
            columns = [
                s.column(s.tile.values[agg.column]) if s.tile else np.empty(0) for s in segments
            ]
            matrix = _Matrix(segments, columns, math.nan)
            prefixes[agg.column] = _Prefix(segments, agg.column, matrix)
        if agg.function.quantile is not None:
            if key not in percentiles:  # every percentile of this column and window in one pass
                quantiles = {
                    a.function.quantile
                    for a in view.aggregations
                    if (a.column, a.window_us) == key and a.function.quantile is not None
                }
                percentiles[key] = _percentiles(agg.column, quantiles, bases[key], segments, pos)
            full = percentiles[key][agg.function.quantile]
        else:
            full = _finalize(agg, bases[key], prefixes[agg.column], segments, pos, item)
        if not has.all():
            alone = np.array([finalize(b, agg.function) for b in bases[key]])
            full = np.where(has, full, alone[item])
        values[agg.name] = full
    names = np.array([s.item.name for s in segments], dtype=object)
    times = np.concatenate([s.item.times for s in segments])
    return RowBlock(
        names[item][keep], times[keep].astype(np.int64), created[keep].astype(np.int64),
        first[keep].astype(np.int64), last[keep].astype(np.int64),
        {k: v[keep] for k, v in values.items()},
    )  # fmt: skip


def _before(s: _Segment) -> tuple[int, int, int]:
    """(Kafka max, offset min, offset max) of the tile's events before the segment."""
    if s.tile is None or not s.part:
        return -1, 2**62, -1
    k, o = s.tile.kafka_ms[: s.part], s.tile.offset[: s.part]
    return int(k.max()), int(o.min()), int(o.max())


def _finalize(
    agg: AggPlan, bases: list[Summary], prefix: _Prefix, segments: list[_Segment], pos: I64,
    item: I64,
) -> F64:  # fmt: skip
    """``agg``'s function over each row's base summary followed by its segment's prefix."""
    f, fn = AggFunction, agg.function
    if fn is f.COUNT_DISTINCT:
        return _count_distinct(agg, bases, segments, pos)
    if fn is f.MIN:
        base_lo = np.array([b.lo for b in bases])
        lowest: F64 = np.fmin(base_lo[item], prefix.get("lo")[pos, item])
        return lowest
    if fn is f.MAX:
        base_hi = np.array([b.hi for b in bases])
        highest: F64 = np.fmax(base_hi[item], prefix.get("hi")[pos, item])
        return highest
    if fn is f.FIRST:
        has_base = np.array([b.first is not None for b in bases])
        base_first = np.array([b.first[0] if b.first else math.nan for b in bases])
        return np.where(has_base[item], base_first[item], prefix.get("first")[pos, item])
    n_p = prefix.get("n")[pos, item]
    base_n = np.array([b.n for b in bases], np.int64)[item]
    n = base_n + n_p
    if fn is f.COUNT:
        return n.astype(np.float64)
    if fn in (f.SUM, f.MEAN):
        p_total = prefix.get("total")[pos, item]
        base_total = np.array([b.total for b in bases])[item]
        total = np.where(base_n > 0, base_total + p_total, p_total)
        if fn is f.SUM:
            return np.where(n > 0, total, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(n > 0, total / np.maximum(n, 1), math.nan)
    if fn is f.LAST:
        fallback = np.array([b.last[0] if b.last else math.nan for b in bases])[item]
        return np.where(n_p > 0, prefix.get("last")[pos, item], fallback)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_p, m2_p = prefix.get("mean")[pos, item], prefix.get("m2")[pos, item]
        base_mean = np.array([b.mean for b in bases])[item]
        base_m2 = np.array([b.m2 for b in bases])[item]
        delta = mean_p - base_mean
        merged = np.where(
            n_p > 0, base_m2 + m2_p + delta * delta * base_n * n_p / np.maximum(n, 1), base_m2
        )
        m2 = np.where(base_n > 0, merged, m2_p)
        var = np.where(n >= 2, m2 / np.maximum(n - 1, 1), math.nan)
        return var if fn is f.VAR else np.sqrt(var)


def _count_distinct(agg: AggPlan, bases: list[Summary], segments: list[_Segment], pos: I64) -> F64:
    """Distinct values of the base plus those new in each segment so far (read from its first)."""
    out = np.zeros(len(pos))
    row = 0
    for s, base in zip(segments, bases, strict=True):
        rows = len(s.item.times)
        seen = set(base.distinct or ())
        known = len(seen)
        if s.tile is not None:
            values = s.column(s.tile.values[agg.column])
            fresh = np.zeros(len(values), np.int64)
            for i, v in enumerate(values.tolist()):
                if v == v and v not in seen:  # not NaN, not seen
                    seen.add(v)
                    fresh[i] = 1
            counts = np.cumsum(fresh)
            out[row : row + rows] = known + (counts[pos[row : row + rows]] if len(counts) else 0)
        else:
            out[row : row + rows] = known
        row += rows
    return out


def _percentiles(
    column: str, quantiles: set[float], bases: list[Summary], segments: list[_Segment], pos: I64
) -> dict[float, F64]:  # fmt: skip
    """Each quantile of the base's values and each segment's values so far (from its first)."""
    out = {q: np.full(len(pos), math.nan) for q in quantiles}
    row = 0
    for s, base in zip(segments, bases, strict=True):
        rows = len(s.item.times)
        ordered = list(base.ordered())  # a copy: rows before the segment read the base alone
        if s.tile is not None:
            values = s.column(s.tile.values[column])
            so_far = {q: np.empty(len(values)) for q in quantiles}
            for i, v in enumerate(values.tolist()):
                if v == v:  # not NaN
                    bisect.insort(ordered, v)
                for q, at in so_far.items():
                    at[i] = percentile(ordered, q)
            if len(values):
                for q, at in so_far.items():
                    out[q][row : row + rows] = at[pos[row : row + rows]]
        else:
            for q in quantiles:
                out[q][row : row + rows] = percentile(ordered, q)
        row += rows
    return out

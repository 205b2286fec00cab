"""Partial aggregates of one column: per tile, merged over windows, and as running prefixes.

One :class:`ColumnStats` holds everything any declared function needs (count, sum, mean and
second moment, min, max, first, last, distinct values, and every value for the percentiles),
so a tile is summarised once whatever
the views ask of it. Sums are accumulated in the order events arrive (sequential adds, never
numpy's pairwise sum), so a tile's sums do not depend on how the log was cut into batches.
The variance is kept as sums of deviations from the tile's first value (no cancellation for
prices far from zero) and merged across tiles with Chan's formula.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import numpy as np
import numpy.typing as npt

from featurestore.definitions.model import AggFunction

__all__ = ["ColumnStats", "Summary", "add_grouped", "finalize", "percentile"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
_NAN = math.nan
_NO_KEY = (2**62, 2**62)
GROUPED_MAX_EVENTS = 256
"""Tiles with more new events than this are folded one by one (:func:`add_grouped`)."""


def _seq_sum(initial: float, values: F64) -> float:
    if len(values) == 0:
        return initial
    return float(np.add.accumulate(np.concatenate(([initial], values)))[-1])


@dataclass
class ColumnStats:
    """One column's partial aggregate over one tile's events (nulls skipped)."""

    n: int = 0
    total: float = 0.0
    ref: float = 0.0
    """The first value added: deviations from it keep the variance exact."""
    s1: float = 0.0
    s2: float = 0.0
    lo: float = _NAN
    hi: float = _NAN
    first: tuple[float, int, int] | None = None
    """(value, event time, offset) of the earliest event (ties: first in the log)."""
    last: tuple[float, int, int] | None = None
    distinct: set[float] | None = None
    kept: array[float] | None = None
    """Every value, in log order (kept only for a column some percentile reads), as doubles:
    8 bytes a value, where a list of Python floats takes 32."""

    def add(
        self, values: F64, times: I64, offsets: I64, *, distinct: bool, keep_values: bool = False
    ) -> None:
        """Fold in events, in log order."""
        mask = ~np.isnan(values)
        if not mask.any():
            return
        v, t, o = values[mask], times[mask], offsets[mask]
        if self.n == 0:
            self.ref = float(v[0])
        d = v - self.ref
        self.n += len(v)
        self.total = _seq_sum(self.total, v)
        self.s1 = _seq_sum(self.s1, d)
        self.s2 = _seq_sum(self.s2, d * d)
        self.lo = float(np.fmin(self.lo, v.min()))
        self.hi = float(np.fmax(self.hi, v.max()))
        order = np.lexsort((o, t))
        i, j = int(order[0]), int(order[-1])
        head = (float(v[i]), int(t[i]), int(o[i]))
        tail = (float(v[j]), int(t[j]), int(o[j]))
        if self.first is None or head[1:] < self.first[1:]:
            self.first = head
        if self.last is None or tail[1:] > self.last[1:]:
            self.last = tail
        if distinct:
            if self.distinct is None:
                self.distinct = set()
            self.distinct.update(v.tolist())
        if keep_values:
            if self.kept is None:
                self.kept = array("d")
            self.kept.frombytes(v.tobytes())

    def copy(self) -> ColumnStats:
        """An independent copy (the distinct and kept values too)."""
        return ColumnStats(
            self.n, self.total, self.ref, self.s1, self.s2, self.lo, self.hi, self.first,
            self.last, None if self.distinct is None else set(self.distinct),
            None if self.kept is None else array("d", self.kept),
        )  # fmt: skip

    def summary(self) -> Summary:
        """As a mergeable summary."""
        if self.n == 0:
            return Summary()
        mean = self.ref + self.s1 / self.n
        m2 = max(self.s2 - self.s1 * self.s1 / self.n, 0.0)
        return Summary(
            self.n, self.total, mean, m2, self.lo, self.hi, self.first, self.last,
            set(self.distinct) if self.distinct is not None else None,
            list(self.kept) if self.kept is not None else None,
        )  # fmt: skip

    def to_doc(self, *, kept: bool = True) -> list[Any]:
        """JSON-ready (floats round-trip exactly through JSON).

        ``kept``: with the kept values (False: an empty list in their place, for a tile whose
        values are stored in the journal).
        """
        return [
            self.n, self.total, self.ref, self.s1, self.s2, _f(self.lo), _f(self.hi),
            list(self.first) if self.first else None, list(self.last) if self.last else None,
            sorted(self.distinct) if self.distinct is not None else None,
            None if self.kept is None else self.kept.tolist() if kept else [],
        ]  # fmt: skip

    @classmethod
    def from_doc(cls, doc: list[Any]) -> ColumnStats:
        """Read what :meth:`to_doc` returned (one stored before the kept values: without)."""
        n, total, ref, s1, s2, lo, hi, first, last, distinct = doc[:10]
        kept = doc[10] if len(doc) > 10 else None
        return cls(
            n, total, ref, s1, s2, _nan(lo), _nan(hi),
            (float(first[0]), int(first[1]), int(first[2])) if first else None,
            (float(last[0]), int(last[1]), int(last[2])) if last else None,
            set(distinct) if distinct is not None else None,
            array("d", kept) if kept is not None else None,
        )  # fmt: skip


def add_grouped(
    stats: Sequence[ColumnStats], values: F64, times: I64, offsets: I64, group: I64,
    *, distinct: bool, keep_values: bool = False,
) -> None:  # fmt: skip
    """Fold events into several tiles' statistics at once; the same as :meth:`ColumnStats.add`.

    ``group[i]`` is the index in ``stats`` of event i's tile; the events of each tile are in
    log order. The sums are the very sequential additions ``add`` makes, one tile per column
    of a padded matrix accumulated down its rows (a padding 0.0 adds nothing), so a tile's
    sums stay the same however the log was cut into batches and tiles grouped. A tile with
    more than :data:`GROUPED_MAX_EVENTS` new events goes through ``add`` alone: the matrix
    stays within that many rows.
    """
    mask = ~np.isnan(values)
    if not mask.any():
        return
    order = np.flatnonzero(mask)
    order = order[np.argsort(group[order], kind="stable")]  # by tile, log order inside
    v, t, o, g = values[order], times[order], offsets[order], group[order]
    counts = np.bincount(g, minlength=len(stats))
    ends = np.cumsum(counts)
    begins = ends - counts
    long = np.flatnonzero(counts > GROUPED_MAX_EVENTS).tolist()
    for k in long:
        a, b = int(begins[k]), int(ends[k])
        stats[k].add(v[a:b], t[a:b], o[a:b], distinct=distinct, keep_values=keep_values)
    short = np.flatnonzero((counts > 0) & (counts <= GROUPED_MAX_EVENTS))
    if not len(short):
        return
    if long:
        keep = counts[g] <= GROUPED_MAX_EVENTS
        v, t, o, g = v[keep], t[keep], o[keep], g[keep]
    size = counts[short]
    begin = np.cumsum(size) - size
    column = np.full(len(stats), -1, np.int64)
    column[short] = np.arange(len(short))
    col = column[g]
    rank = np.arange(len(v)) - begin[col]
    tiles = [stats[k] for k in short.tolist()]
    n0 = np.fromiter((s.n for s in tiles), np.int64, len(tiles))
    ref = np.where(n0 > 0, [s.ref for s in tiles], v[begin])
    d = v - ref[col]
    sums = np.zeros((int(size.max()) + 1, 3, len(tiles)))
    sums[0, 0] = [s.total for s in tiles]
    sums[0, 1] = [s.s1 for s in tiles]
    sums[0, 2] = [s.s2 for s in tiles]
    sums[rank + 1, 0, col] = v
    sums[rank + 1, 1, col] = d
    sums[rank + 1, 2, col] = d * d
    total, s1, s2 = np.add.accumulate(sums, axis=0)[-1].tolist()
    lo = np.minimum.reduceat(v, begin).tolist()
    hi = np.maximum.reduceat(v, begin).tolist()
    by_time = np.lexsort((o, t, col))  # per tile: earliest (time, offset) first
    head, tail = by_time[begin], by_time[begin + size - 1]
    heads = zip(v[head].tolist(), t[head].tolist(), o[head].tolist(), strict=True)
    tails = zip(v[tail].tolist(), t[tail].tolist(), o[tail].tolist(), strict=True)
    refs, added = ref.tolist(), size.tolist()
    for j, (s, first, last) in enumerate(zip(tiles, heads, tails, strict=True)):
        s.ref = refs[j]
        s.n += added[j]
        s.total, s.s1, s.s2 = total[j], s1[j], s2[j]
        s.lo = lo[j] if s.lo != s.lo else min(s.lo, lo[j])  # NaN: no value yet
        s.hi = hi[j] if s.hi != s.hi else max(s.hi, hi[j])
        if s.first is None or first[1:] < s.first[1:]:
            s.first = first
        if s.last is None or last[1:] > s.last[1:]:
            s.last = last
        if distinct:
            a = int(begin[j])
            if s.distinct is None:
                s.distinct = set()
            s.distinct.update(v[a : a + added[j]].tolist())
        if keep_values:
            a = int(begin[j])
            if s.kept is None:
                s.kept = array("d")
            s.kept.frombytes(v[a : a + added[j]].tobytes())


def _f(x: float) -> float | None:
    return None if math.isnan(x) else x


def _nan(x: float | None) -> float:
    return _NAN if x is None else float(x)


@dataclass
class Summary:
    """Merged statistics of a window's tiles."""

    n: int = 0
    total: float = 0.0
    mean: float = 0.0
    m2: float = 0.0
    lo: float = _NAN
    hi: float = _NAN
    first: tuple[float, int, int] | None = None
    last: tuple[float, int, int] | None = None
    distinct: set[float] | None = field(default=None)
    kept: list[float] | None = field(default=None)
    """Every value of the tiles (for the percentiles), in no particular order until
    :meth:`ordered` sorts it."""

    def merge(self, other: Summary) -> None:
        """Fold in the summary of tiles after these (in time)."""
        if other.n == 0:
            return
        if self.n == 0:
            self.n, self.total, self.mean, self.m2 = other.n, other.total, other.mean, other.m2
        else:
            n = self.n + other.n
            delta = other.mean - self.mean
            self.mean += delta * other.n / n
            self.m2 += other.m2 + delta * delta * self.n * other.n / n
            self.total += other.total
            self.n = n
        self.lo = float(np.fmin(self.lo, other.lo))
        self.hi = float(np.fmax(self.hi, other.hi))
        if other.first is not None and (self.first is None or other.first[1:] < self.first[1:]):
            self.first = other.first
        if other.last is not None and (self.last is None or other.last[1:] > self.last[1:]):
            self.last = other.last
        # Folded into this summary's own set and list, so each tile's values are copied once.
        if other.distinct is not None:
            if self.distinct is None:
                self.distinct = set(other.distinct)
            else:
                self.distinct |= other.distinct
        if other.kept is not None:
            if self.kept is None:
                self.kept = list(other.kept)
            else:
                self.kept.extend(other.kept)

    def ordered(self) -> list[float]:
        """The kept values, sorted (in place: a second percentile of this window sorts no more).

        Timsort finds the list's runs, so a list sorted before, or sorted runs merged, costs
        one pass.
        """
        if self.kept is None:
            return []
        self.kept.sort()
        return self.kept


def finalize(summary: Summary, function: AggFunction) -> float:
    """The value of ``function`` over a window summarised by ``summary`` (NaN: null)."""
    n = summary.n
    if function is AggFunction.COUNT:
        return float(n)
    if function is AggFunction.SUM:
        return summary.total if n else 0.0
    if function is AggFunction.COUNT_DISTINCT:
        return float(len(summary.distinct or ()))
    if n == 0:
        return _NAN
    if function.quantile is not None:
        return percentile(summary.ordered(), function.quantile)
    if function is AggFunction.MEAN:
        return summary.total / n
    if function is AggFunction.MIN:
        return summary.lo
    if function is AggFunction.MAX:
        return summary.hi
    if function is AggFunction.FIRST:
        return summary.first[0] if summary.first else _NAN
    if function is AggFunction.LAST:
        return summary.last[0] if summary.last else _NAN
    if n < 2:
        return _NAN
    var = summary.m2 / (n - 1)
    return var if function is AggFunction.VAR else math.sqrt(var)


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q`` quantile of ``ordered`` (sorted, no NaN), linearly interpolated; NaN if empty.

    At rank ``q * (n - 1)`` between the values around it, as PostgreSQL's ``percentile_cont``
    and NumPy's default ``linear`` method.
    """
    if not ordered:
        return _NAN
    rank = q * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    fraction = rank - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction

"""Partial aggregates of one column: per tile, merged over windows, and as running prefixes.

One :class:`ColumnStats` holds everything any declared function needs (count, sum, mean and
second moment, min, max, first, last, distinct values), so a tile is summarised once whatever
the views ask of it. Sums are accumulated in the order events arrive (sequential adds, never
numpy's pairwise sum), so a tile's sums do not depend on how the log was cut into batches.
The variance is kept as sums of deviations from the tile's first value (no cancellation for
prices far from zero) and merged across tiles with Chan's formula.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from featurestore.definitions.model import AggFunction

__all__ = ["ColumnStats", "Prefix", "Summary", "finalize", "finalize_many"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
_NAN = math.nan
_NO_KEY = (2**62, 2**62)


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

    def add(self, values: F64, times: I64, offsets: I64, *, distinct: bool) -> None:
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

    def summary(self) -> Summary:
        """As a mergeable summary."""
        if self.n == 0:
            return Summary()
        mean = self.ref + self.s1 / self.n
        m2 = max(self.s2 - self.s1 * self.s1 / self.n, 0.0)
        return Summary(
            self.n, self.total, mean, m2, self.lo, self.hi, self.first, self.last,
            set(self.distinct) if self.distinct is not None else None,
        )  # fmt: skip

    def to_doc(self) -> list[Any]:
        """JSON-ready (floats round-trip exactly through JSON)."""
        return [
            self.n, self.total, self.ref, self.s1, self.s2, _f(self.lo), _f(self.hi),
            list(self.first) if self.first else None, list(self.last) if self.last else None,
            sorted(self.distinct) if self.distinct is not None else None,
        ]  # fmt: skip

    @classmethod
    def from_doc(cls, doc: list[Any]) -> ColumnStats:
        """Read what :meth:`to_doc` returned."""
        n, total, ref, s1, s2, lo, hi, first, last, distinct = doc
        return cls(
            n, total, ref, s1, s2, _nan(lo), _nan(hi),
            (float(first[0]), int(first[1]), int(first[2])) if first else None,
            (float(last[0]), int(last[1]), int(last[2])) if last else None,
            set(distinct) if distinct is not None else None,
        )  # fmt: skip


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
        if other.distinct is not None:
            self.distinct = (self.distinct or set()) | other.distinct


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


class Prefix:
    """Running statistics of one column over events sorted by (time, offset).

    Each statistic is computed the first time a function asks for it: a view asking for
    ``max`` and ``last`` of a column does not pay for its running sums and moments.
    """

    def __init__(
        self,
        values: F64,
        base_distinct: set[float] | None,
        *,
        distinct: bool,
        start: ColumnStats | None = None,
    ) -> None:
        """Prefixes of ``values`` (already in (time, offset) order).

        Args:
            values: the column, nulls as NaN.
            base_distinct: distinct values of the window's earlier tiles (count_distinct).
            distinct: whether count_distinct needs the prefixes of new distinct values.
            start: the statistics of the events before ``values`` when they came in the same
                order (a tile whose events arrived in time order): the prefixes continue from
                them, with the very additions a prefix over all the events would make.
        """
        self._values = values
        self._base_distinct = base_distinct
        self._distinct = distinct
        self._start = start if start is not None and start.n else None
        self._mask = ~np.isnan(values)

    @classmethod
    def of(
        cls,
        values: F64,
        base_distinct: set[float] | None,
        *,
        distinct: bool,
        start: ColumnStats | None = None,
    ) -> Prefix:
        """See :meth:`__init__`."""
        return cls(values, base_distinct, distinct=distinct, start=start)

    @cached_property
    def n(self) -> I64:
        """Non-null values up to each event."""
        s0 = self._start
        out: I64 = np.cumsum(self._mask, dtype=np.int64) + (s0.n if s0 else 0)
        return out

    @cached_property
    def total(self) -> F64:
        """Sum of the values up to each event."""
        s0 = self._start
        return _cumsum_from(s0.total if s0 else 0.0, np.where(self._mask, self._values, 0.0))

    @cached_property
    def _moments(self) -> tuple[F64, F64]:
        values, mask, s0 = self._values, self._mask, self._start
        if s0 is not None:
            ref = s0.ref
        else:
            ref = float(values[int(np.argmax(mask))]) if mask.any() else 0.0
        d = np.where(mask, values - ref, 0.0)
        s1 = _cumsum_from(s0.s1 if s0 else 0.0, d)
        s2 = _cumsum_from(s0.s2 if s0 else 0.0, d * d)
        n = self.n
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.where(n > 0, ref + s1 / np.maximum(n, 1), 0.0)
            m2 = np.maximum(np.where(n > 0, s2 - s1 * s1 / np.maximum(n, 1), 0.0), 0.0)
        return mean, m2

    @property
    def mean(self) -> F64:
        """Mean of the values up to each event."""
        return self._moments[0]

    @property
    def m2(self) -> F64:
        """Sum of squared deviations from the mean, up to each event."""
        return self._moments[1]

    @cached_property
    def lo(self) -> F64:
        """Minimum up to each event."""
        lo0 = self._start.lo if self._start else _NAN
        out: F64 = np.fmin.accumulate(np.concatenate(([lo0], self._values)))[1:]
        return out

    @cached_property
    def hi(self) -> F64:
        """Maximum up to each event."""
        hi0 = self._start.hi if self._start else _NAN
        out: F64 = np.fmax.accumulate(np.concatenate(([hi0], self._values)))[1:]
        return out

    @cached_property
    def first(self) -> F64:
        """The first non-null value up to each event."""
        values, mask, s0 = self._values, self._mask, self._start
        if s0 is not None and s0.first is not None:
            return np.full(len(values), s0.first[0])
        first_i = int(np.argmax(mask)) if mask.any() else len(values)
        first = np.full(len(values), _NAN)
        if first_i < len(values):
            first[first_i:] = values[first_i]
        return first

    @cached_property
    def last(self) -> F64:
        """The last non-null value up to each event."""
        values, mask, s0 = self._values, self._mask, self._start
        idx = np.maximum.accumulate(np.where(mask, np.arange(len(values)), -1))
        last0 = s0.last[0] if s0 is not None and s0.last is not None else _NAN
        out: F64 = np.where(idx >= 0, values[np.maximum(idx, 0)], last0)
        return out

    @cached_property
    def new_distinct(self) -> I64:
        """Distinct values so far that the base summary did not have."""
        values, mask = self._values, self._mask
        if not self._distinct or not mask.any():
            return np.zeros(len(values), np.int64)
        seen = set(self._base_distinct or ())
        fresh = np.zeros(len(values), np.int64)
        for i in np.flatnonzero(mask).tolist():
            v = float(values[i])
            if v not in seen:
                seen.add(v)
                fresh[i] = 1
        out: I64 = np.cumsum(fresh)
        return out


def _cumsum_from(initial: float, values: F64) -> F64:
    """Running sums of ``values`` after ``initial`` (sequential: the same additions as a loop)."""
    out: F64 = np.cumsum(np.concatenate(([initial], values)))[1:]
    return out


def finalize_many(base: Summary, prefix: Prefix, at: I64, function: AggFunction) -> F64:
    """``function`` over the base summary followed by the prefixes at positions ``at``."""
    f = AggFunction
    if function is f.COUNT_DISTINCT:
        return (len(base.distinct or ()) + prefix.new_distinct[at]).astype(np.float64)
    if function is f.MIN:
        return np.fmin(base.lo, prefix.lo[at])
    if function is f.MAX:
        return np.fmax(base.hi, prefix.hi[at])
    if function is f.FIRST:
        return np.full(len(at), base.first[0]) if base.first else prefix.first[at]
    n_p = prefix.n[at]
    n = base.n + n_p
    if function is f.COUNT:
        return n.astype(np.float64)
    if function in (f.SUM, f.MEAN):
        total = base.total + prefix.total[at] if base.n else prefix.total[at]
        if function is f.SUM:
            return np.where(n > 0, total, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(n > 0, total / np.maximum(n, 1), _NAN)
    if function is f.LAST:
        fallback = base.last[0] if base.last else _NAN
        return np.where(n_p > 0, prefix.last[at], fallback)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_p, m2_p = prefix.mean[at], prefix.m2[at]
        if base.n:
            delta = mean_p - base.mean
            m2 = np.where(
                n_p > 0, base.m2 + m2_p + delta * delta * base.n * n_p / np.maximum(n, 1), base.m2
            )
        else:
            m2 = m2_p
        var = np.where(n >= 2, m2 / np.maximum(n - 1, 1), _NAN)
        return var if function is f.VAR else np.sqrt(var)

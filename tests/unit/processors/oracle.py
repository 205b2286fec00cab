"""An independent oracle for definition-driven stream features.

Computes, from the whole input at once, the feature rows that the streaming engine of
``processors.features`` must end up with (after collapsing its re-emissions to the last one per
``(entity, event_us)``), plus which events it must report late or drop as duplicates.

It is written from the written semantics only, never from the engine: no tiles or partial
aggregates, no incremental state; every row is recomputed from the raw accepted events of its
window, with exact-ish sums (:func:`math.fsum`) and two-pass variances. It imports nothing from
``processors`` so that a shared misreading cannot hide a bug in both; expressions are parsed by
the definitions' parser (whose trees its own tests pin), their values are the oracle's. Plain
Python, because the inputs of the tests are small and the rules read more directly as loops than
as dataframes.

Times are integer microseconds since the epoch; a null value is ``None`` (a NaN field is null).
"""

from __future__ import annotations

import math
import statistics
from bisect import bisect_left
from bisect import bisect_right
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import timedelta
from typing import TypeAlias

from featurestore.definitions import expressions as ast
from featurestore.definitions.model import AggFunction
from featurestore.definitions.model import FeatureView
from featurestore.definitions.model import StreamSource

__all__ = [
    "OracleResult",
    "OracleRow",
    "SourceEvent",
    "aggregate",
    "compute_features",
    "evaluate",
]

Value: TypeAlias = float | None
Field: TypeAlias = float | str | None
"""What an expression reads: a number, a text field's text, or null."""


@dataclass(frozen=True)
class SourceEvent:
    """One Kafka record as the engine sees it, decoded."""

    entity: str
    event_us: int
    kafka_ms: int
    partition: int
    offset: int
    event_id: str | None
    fields: Mapping[str, float | str | None]
    """Numeric fields (NaN is null) and text fields (None is null)."""


@dataclass(frozen=True)
class OracleRow:
    """One feature row: the values of a view's aggregations and derived features at a time."""

    entity: str
    event_us: int
    created_ms: int
    first_offset: int
    last_offset: int
    values: Mapping[str, Value]


@dataclass(frozen=True)
class OracleResult:
    """What the engine must produce for an input (indices are positions in the input)."""

    rows: Mapping[str, Mapping[tuple[str, int], OracleRow]]
    """Per view name, the rows keyed by ``(entity, event_us)``."""
    late: tuple[int, ...]
    duplicates: tuple[int, ...]


# --- expressions -------------------------------------------------------------------------------


def _truth(x: Value) -> bool | None:
    return None if x is None else x != 0


def _compare(op: str, a: Field, b: Field) -> Value:
    if a is None or b is None:
        return None
    if isinstance(a, str) or isinstance(b, str):
        assert op in ("==", "!=") and isinstance(a, str) and isinstance(b, str)
        return float((a == b) == (op == "=="))
    holds = {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}
    return float(holds[op])


def _logical(op: str, a: Value, b: Value) -> Value:
    x, y = _truth(a), _truth(b)
    if op == "and":
        if x is False or y is False:
            return 0.0
        return None if x is None or y is None else 1.0
    if x is True or y is True:
        return 1.0
    return None if x is None or y is None else 0.0


@dataclass(frozen=True)
class History:
    """What an entity's events before the current one left, for ``prev()`` to read."""

    last: Mapping[str, Field]
    """Every column of the entity's previous event (``prev``)."""
    known: Mapping[str, Field]
    """Each column's value in the latest earlier event where it was not null (``prev_nonnull``)."""


def evaluate(
    expr: ast.Expr, current: Mapping[str, Field], previous: History | None = None
) -> Value:
    """The value of ``expr``; ``previous`` is what ``prev()`` reads (None: no event before)."""
    value = _evaluate(expr, current, previous)
    assert not isinstance(value, str), f"a text where a number is read: {expr!r}"
    return value


def _evaluate(expr: ast.Expr, current: Mapping[str, Field], previous: History | None) -> Field:
    match expr:
        case ast.Text(text):
            return text
        case ast.BinaryOp(op, left, right) if op in ast.COMPARISONS:
            return _compare(
                op, _evaluate(left, current, previous), _evaluate(right, current, previous)
            )
        case ast.BinaryOp(op, left, right) if op in ("and", "or"):
            return _logical(
                op, evaluate(left, current, previous), evaluate(right, current, previous)
            )
        case ast.When(condition, value, otherwise):
            if _truth(evaluate(condition, current, previous)):
                return evaluate(value, current, previous)
            return None if otherwise is None else evaluate(otherwise, current, previous)
        case ast.Coalesce(arguments):
            for argument in arguments:
                found = evaluate(argument, current, previous)
                if found is not None:
                    return found
            return None
        case ast.Number(value):
            return value
        case ast.Name(name):
            return current[name]
        case ast.Prev(name, skip_nulls):
            if previous is None:
                return None
            return previous.known.get(name) if skip_nulls else previous.last[name]
        case ast.Negate(operand):
            negated = evaluate(operand, current, previous)
            return None if negated is None else -negated
        case ast.BinaryOp(op, left, right):
            a = evaluate(left, current, previous)
            b = evaluate(right, current, previous)
            if a is None or b is None:
                return None
            if op == "+":
                return a + b
            if op == "-":
                return a - b
            if op == "*":
                return a * b
            return None if b == 0 else a / b
        case ast.Call(function, argument):
            x = evaluate(argument, current, previous)
            if x is None:
                return None
            if function == "ln":
                return math.log(x) if x > 0 else None
            if function == "sqrt":
                return math.sqrt(x) if x >= 0 else None
            if function == "abs":
                return abs(x)
            if function == "not":
                return float(x == 0)
            try:
                return math.exp(x)
            except OverflowError:
                return math.inf
    raise AssertionError(f"not an expression: {expr!r}")


# --- aggregate functions -----------------------------------------------------------------------


def _variance(values: Sequence[float]) -> float | None:
    if len(values) < 2:
        return None
    mean = math.fsum(values) / len(values)
    return math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1)


def aggregate(function: AggFunction, values: Sequence[Value]) -> Value:
    """``function`` over ``values`` given in (event time, log) order, nulls skipped."""
    present = [v for v in values if v is not None]
    if function is AggFunction.COUNT:
        return float(len(present))
    if function is AggFunction.SUM:
        return math.fsum(present)
    if function is AggFunction.COUNT_DISTINCT:
        return float(len(set(present)))
    if not present:
        return None
    if function is AggFunction.MEAN:
        return math.fsum(present) / len(present)
    if function is AggFunction.MIN:
        return min(present)
    if function is AggFunction.MAX:
        return max(present)
    if function is AggFunction.FIRST:
        return present[0]
    if function is AggFunction.LAST:
        return present[-1]
    if function.quantile is not None:  # statistics' inclusive method: R's type 7, linear
        if len(present) == 1:
            return present[0]
        cuts = statistics.quantiles(present, n=100, method="inclusive")
        return cuts[round(function.quantile * 100) - 1]
    variance = _variance(present)
    if function is AggFunction.VAR or variance is None:
        return variance
    return math.sqrt(variance)


# --- acceptance and computed columns -----------------------------------------------------------


def _us(delta: timedelta) -> int:
    return delta // timedelta(microseconds=1)


@dataclass(frozen=True)
class _Accepted:
    position: int
    event: SourceEvent
    columns: Mapping[str, Field]
    """Raw fields (NaN as None) and computed columns."""
    first_offset: int | None = None
    """For a row of an upstream view taken as an event: the first offset of its lineage."""


@dataclass
class _Partition:
    accepted: list[_Accepted] = field(default_factory=list)
    late: list[int] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    final_watermark: float = -math.inf


def _floor(x: int, step: int) -> int:
    return x - x % step


def _number(value: Field) -> Value:
    """What an aggregation reads: never a text (validation refuses aggregating a text field)."""
    assert not isinstance(value, str), f"an aggregation of a text: {value!r}"
    return value


def _field(value: float | str | None) -> Field:
    """A text as it is; a number as a float (NaN: None)."""
    if value is None or isinstance(value, str):
        return value
    return None if math.isnan(value) else float(value)


def _accept(
    events: Sequence[tuple[int, SourceEvent]], source: StreamSource, tile_us: int
) -> _Partition:
    """Rules 1-3 of the spec over one partition's events, given in log order."""
    lateness = _us(source.watermark_delay)
    computed = [(name, ast.parse(text, allow_prev=True)) for name, text in source.columns.items()]
    out = _Partition()
    watermark: float = -math.inf
    tiles_of_id: dict[tuple[str, str], list[int]] = {}
    previous: dict[str, History] = {}
    for position, event in events:
        tile = _floor(event.event_us, tile_us)
        if tile + tile_us + lateness <= watermark:
            out.late.append(position)
            continue
        key = (event.entity, event.event_id) if event.event_id is not None else None
        if source.id_field is not None and key is not None:
            tiles = tiles_of_id.setdefault(key, [])
            if any(t + tile_us + lateness > watermark for t in tiles):
                out.duplicates.append(position)
                continue
            tiles.append(tile)
        watermark = max(watermark, event.event_us)
        columns: dict[str, Field] = {name: _field(v) for name, v in event.fields.items()}
        before = previous.get(event.entity)
        for name, expr in computed:
            columns[name] = evaluate(expr, columns, before)
        known = {} if before is None else dict(before.known)
        known.update((name, v) for name, v in columns.items() if v is not None)
        previous[event.entity] = History(columns, known)
        out.accepted.append(_Accepted(position, event, columns))
    out.final_watermark = watermark
    return out


# --- rows --------------------------------------------------------------------------------------


class _EntityEvents:
    """One entity's accepted events sorted by (event time, log position), with range lookups."""

    def __init__(self, accepted: Sequence[_Accepted]) -> None:
        self.events = sorted(accepted, key=lambda a: (a.event.event_us, a.position))
        self.times = [a.event.event_us for a in self.events]

    def half_open(self, lo: int, hi: int) -> list[_Accepted]:
        """Events with event time in ``[lo, hi)``."""
        return self.events[bisect_left(self.times, lo) : bisect_left(self.times, hi)]

    def closed(self, lo: int, hi: int) -> list[_Accepted]:
        """Events with event time in ``[lo, hi]``."""
        return self.events[bisect_left(self.times, lo) : bisect_right(self.times, hi)]


def _boundaries(times: Sequence[int], step: int, reach: int) -> set[int]:
    """Multiples b of ``step`` with some time x in ``[b - reach, b)``, i.e. x < b <= x + reach."""
    out: set[int] = set()
    for x in set(times):
        b = _floor(x, step) + step
        while b <= x + reach:
            out.add(b)
            b += step
    return out


def _view_rows(
    view: FeatureView, entity: str, events: _EntityEvents, final_watermark: float
) -> dict[tuple[str, int], OracleRow]:
    stream = view.stream
    assert stream is not None
    tile_us = _us(stream.tile)
    lateness = _us(stream.source.watermark_delay)
    windows = {a.name: _us(a.window) for a in stream.aggregations}
    slides = {a.name: _us(a.slide) for a in stream.aggregations}
    widest = max(windows.values())
    derived = [(name, ast.parse(text)) for name, text in stream.derived.items()]

    last_tiles = {a.name: (a.column, a.last_tiles) for a in stream.aggregations if a.last_tiles}

    def window_of(name: str, t: int) -> list[_Accepted]:
        if stream.running:
            return events.closed(_floor(t, tile_us) + tile_us - windows[name], t)
        end = _floor(t, slides[name])
        found = events.half_open(end - windows[name], end)
        if name in last_tiles:  # "the last N bars": the latest N tiles with a value
            column, count = last_tiles[name]
            tiles = {
                _floor(a.event.event_us, tile_us) for a in found if a.columns[column] is not None
            }
            kept = set(sorted(tiles)[-count:])
            found = [a for a in found if _floor(a.event.event_us, tile_us) in kept]
        return found

    if stream.running:
        if any(s != tile_us for s in slides.values()):
            raise ValueError(f"running view {view.name!r} needs every slide equal to the tile")
        step = tile_us
        times = set(events.times)
        for b in _boundaries(events.times, step, widest):
            if b + lateness <= final_watermark:
                times.update((b - 1, b))
    else:
        step = 0
        for s in slides.values():
            step = math.gcd(step, s)
        times = {
            b
            for b in _boundaries(events.times, step, step + widest)
            if b + lateness <= final_watermark
        }

    rows: dict[tuple[str, int], OracleRow] = {}
    for t in sorted(times):
        values: dict[str, Value] = {}
        for agg in stream.aggregations:
            column = [_number(a.columns[agg.column]) for a in window_of(agg.name, t)]
            values[agg.name] = aggregate(agg.function, column)
        for name, expr in derived:
            values[name] = evaluate(expr, values)
        # Lineage: [floor_T(t) - widest, t] for running rows, [b - hop - widest, b) otherwise.
        if stream.running:
            covered = events.closed(_floor(t, tile_us) - widest, t)
        else:
            covered = events.half_open(t - widest - step, t)
        rows[(entity, t)] = OracleRow(
            entity=entity,
            event_us=t,
            created_ms=max(a.event.kafka_ms for a in covered),
            first_offset=min(
                a.event.offset if a.first_offset is None else a.first_offset for a in covered
            ),
            last_offset=max(a.event.offset for a in covered),
            values=values,
        )
    return rows


def _check_views(views: Sequence[FeatureView]) -> StreamSource:
    sources = [v.stream.source for v in views if v.stream is not None]
    if not sources or len(sources) != len(views) or any(s != sources[0] for s in sources):
        raise ValueError("the oracle takes stream views of one shared source")
    source = sources[0]
    known: set[str] = set()
    for name, text in source.columns.items():
        early = [
            n
            for n in ast.names(ast.parse(text, allow_prev=True))
            if n in source.columns and n not in known
        ]
        if early:
            raise ValueError(f"computed column {name!r} reads {early} before they are declared")
        known.add(name)
    for view in views:
        assert view.stream is not None
        outputs = {a.name for a in view.stream.aggregations}
        for name, text in view.stream.derived.items():
            unknown = ast.names(ast.parse(text)) - outputs
            if unknown:
                raise ValueError(f"derived {name!r} of {view.name!r} reads {sorted(unknown)}")
    return source


def _upstream(view: FeatureView) -> str:
    assert view.stream is not None and view.stream.upstream is not None
    return view.stream.upstream


def compute_features(views: Sequence[FeatureView], events: Sequence[SourceEvent]) -> OracleResult:
    """The rows, late and duplicate events for ``events``, given in log order per partition.

    A chained view (``stream.upstream``) reads the window-end rows of its upstream view, which
    must be among ``views``: each row at b is one event at ``b - 1`` whose columns are the
    row's features; its rows are those of any view over such events, closed by the
    partition's watermark like its upstream's.
    """
    source = _check_views(views)
    direct = [v for v in views if v.stream is not None and v.stream.upstream is None]
    chained: list[FeatureView] = []
    waiting = [v for v in views if v not in direct]
    while waiting:
        ready = [v for v in waiting if _upstream(v) in {d.name for d in (*direct, *chained)}]
        if not ready:
            raise ValueError(f"upstream views missing for {[v.name for v in waiting]}")
        chained += ready
        waiting = [v for v in waiting if v not in ready]
    tiles = {_us(v.stream.tile) for v in views if v.stream is not None}
    if len(tiles) != 1:
        raise ValueError("the views of one source share one tile")
    tile_us = tiles.pop()

    by_partition: dict[int, list[tuple[int, SourceEvent]]] = {}
    for position, event in enumerate(events):
        by_partition.setdefault(event.partition, []).append((position, event))
    partition_of: dict[str, int] = {}
    for event in events:
        if partition_of.setdefault(event.entity, event.partition) != event.partition:
            raise ValueError(f"entity {event.entity!r} is in two partitions")

    rows: dict[str, dict[tuple[str, int], OracleRow]] = {v.name: {} for v in views}
    late: list[int] = []
    duplicates: list[int] = []
    for partition_events in by_partition.values():
        part = _accept(partition_events, source, tile_us)
        late += part.late
        duplicates += part.duplicates
        per_entity: dict[str, list[_Accepted]] = {}
        for accepted in part.accepted:
            per_entity.setdefault(accepted.event.entity, []).append(accepted)
        for entity, accepted_events in per_entity.items():
            indexed = _EntityEvents(accepted_events)
            for view in direct:
                rows[view.name].update(_view_rows(view, entity, indexed, part.final_watermark))
            for view in chained:
                upstream = _upstream(view)
                as_events = _EntityEvents(
                    [
                        _Accepted(
                            -1,
                            SourceEvent(entity, t - 1, r.created_ms, 0, r.last_offset, None, {}),
                            r.values,
                            r.first_offset,
                        )
                        for (e, t), r in rows[upstream].items()
                        if e == entity
                    ]
                )
                if as_events.events:
                    rows[view.name].update(
                        _view_rows(view, entity, as_events, part.final_watermark)
                    )
    return OracleResult(rows=rows, late=tuple(sorted(late)), duplicates=tuple(sorted(duplicates)))

"""The engine: one partition's next events in, the feature rows of every declared view out.

Rules (the why is in ``processors/README.md``; T is the tile, L the source's lateness):

- **Acceptance**, per event in log order, W being the latest accepted event time of the
  partition so far: *late* when its tile has closed (``floor_T(x) + T + L <= W``), dead-lettered;
  else a *duplicate* when an accepted event of the same entity with the same id sits in a tile
  still open, dropped; else accepted (W grows).
- **Window-end rows** (every view): at each multiple b of the view's hop once ``b + L <= W``,
  for entities with events in ``[b - hop - longest window, b)``; an aggregation with window w
  and slide s covers ``[B - w, B)``, ``B = floor_s(b)``.
- **Running views** also have a row at each accepted event time y, covering
  ``[floor_T(y) + T - w, y]``, and rows at ``b - 1 us`` and ``b`` of each closed boundary b. An
  event that lands before rows already emitted (out of order, within the lateness) re-emits
  them, so every row ends up covering exactly its window.
- ``created`` and lineage of a row at t: the latest Kafka time and the offset range of the
  entity's events in ``[floor_T(t) - longest window, t]`` (running rows) or
  ``[b - hop - longest window, b)`` (window-end rows).

The output depends only on the log: any split of it into consecutive calls gives the same
rows once re-emissions are collapsed (the last emission of a key wins, as in the stores).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from processors.features.plan import TopicPlan, ViewChain, ViewPlan
from processors.features.state import EntityState, OpenTile, PartitionFeatureState, TileStats
from processors.features.stats import ColumnStats, Prefix, Summary, finalize, finalize_many

__all__ = [
    "EventBatch",
    "FeatureOutput",
    "advance_chain",
    "advance_watermark",
    "feed_chain",
    "process_chain",
    "process_events",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Rows = dict[str, npt.NDArray[np.generic]]


@dataclass(frozen=True)
class EventBatch:
    """Decoded events of one partition, in log order, as columns.

    Entities are dictionary-encoded: :attr:`names` holds each distinct entity once and
    :attr:`code` each event's index into it, so that grouping by entity is integer work.
    """

    names: Sequence[str]
    code: I64
    event_us: I64
    kafka_ms: I64
    partition: I64
    offset: I64
    event_id: Sequence[str] | None
    fields: Mapping[str, F64]
    first_offset: I64 | None = None
    """Where an event stands for several records (a row of the view a chained view reads):
    the first of their offsets, :attr:`offset` being the last (None: one record each)."""

    def __len__(self) -> int:
        """The number of events."""
        return len(self.event_us)

    @property
    def entity(self) -> list[str]:
        """Each event's entity."""
        names = self.names
        return [names[c] for c in self.code.tolist()]

    def take(self, index: npt.NDArray[np.intp]) -> EventBatch:
        """The events at ``index`` (in that order)."""
        return EventBatch(
            self.names,
            self.code[index],
            self.event_us[index],
            self.kafka_ms[index],
            self.partition[index],
            self.offset[index],
            None if self.event_id is None else [self.event_id[i] for i in index.tolist()],
            {k: v[index] for k, v in self.fields.items()},
            None if self.first_offset is None else self.first_offset[index],
        )

    @classmethod
    def of(
        cls,
        entity: Sequence[str],
        event_us: Sequence[int] | I64,
        kafka_ms: Sequence[int] | I64 | None = None,
        partition: Sequence[int] | I64 | None = None,
        offset: Sequence[int] | I64 | None = None,
        event_id: Sequence[str] | None = None,
        fields: Mapping[str, Sequence[float] | F64] | None = None,
    ) -> EventBatch:
        """A batch from sequences; offsets default to 0..n-1, Kafka time to event time."""
        ev = np.asarray(event_us, dtype=np.int64)
        n = len(ev)
        codes: dict[str, int] = {}
        code = np.fromiter(
            (codes.setdefault(e, len(codes)) for e in entity), dtype=np.int64, count=len(entity)
        )
        return cls(
            list(codes),
            code,
            ev,
            np.asarray(ev // 1000 if kafka_ms is None else kafka_ms, dtype=np.int64),
            np.asarray(np.zeros(n) if partition is None else partition, dtype=np.int64),
            np.asarray(np.arange(n) if offset is None else offset, dtype=np.int64),
            None if event_id is None else list(event_id),
            {k: np.asarray(v, dtype=np.float64) for k, v in (fields or {}).items()},
        )


@dataclass
class FeatureOutput:
    """What one call emitted."""

    rows: dict[str, Rows] = field(default_factory=dict)
    """Per view: columns ``entity``, ``event_us``, ``created_ms``, the features,
    ``first_offset``, ``last_offset``; a key may repeat (the last emission wins)."""
    late: I64 = field(default_factory=lambda: np.empty(0, np.int64))
    duplicates: I64 = field(default_factory=lambda: np.empty(0, np.int64))
    closed_us: int | None = None
    """Boundaries up to this time have had their rows emitted, now or before."""


class _RowSink:
    """Collects one view's rows as blocks of columns."""

    def __init__(self, view: ViewPlan) -> None:
        self.view = view
        self.blocks: list[Rows] = []

    def add(
        self, entity: str, times: I64, meta: tuple[I64, I64, I64], values: dict[str, F64]
    ) -> None:
        if not len(times):
            return
        block: Rows = {
            "entity": np.full(len(times), entity, dtype=object),
            "event_us": times.astype(np.int64),
            "created_ms": meta[0],
            "first_offset": meta[1],
            "last_offset": meta[2],
        }
        agg_values = {a.name: values[a.name] for a in self.view.aggregations}
        for name, expr in self.view.derived:
            agg_values[name] = expr.evaluate(agg_values, size=len(times))
        for name in self.view.features:
            col = agg_values[name]
            if name in self.view.int_features:
                block[name] = np.where(np.isnan(col), 0, col).astype(np.int64)
            else:
                block[name] = col
        self.blocks.append(block)

    def rows(self) -> Rows:
        names = [
            "entity",
            "event_us",
            "created_ms",
            *self.view.features,
            "first_offset",
            "last_offset",
        ]
        if not self.blocks:
            out: Rows = {n: np.empty(0, np.float64) for n in names}
            out["entity"] = np.empty(0, object)
            for n in (
                "event_us",
                "created_ms",
                "first_offset",
                "last_offset",
                *self.view.int_features,
            ):
                out[n] = np.empty(0, np.int64)
            return out
        return {n: np.concatenate([b[n] for b in self.blocks]) for n in names}


def _floor(x: int, step: int) -> int:
    return x - x % step


# ---------------------------------------------------------------- acceptance


def _accept(
    plan: TopicPlan, state: PartitionFeatureState, batch: EventBatch
) -> tuple[I64, I64, I64]:
    """Indices of accepted, late and duplicate events (log order), updating the watermark."""
    tile, lateness = plan.tile_us, plan.source.lateness_us
    x = batch.event_us
    n = len(x)
    w0 = state.watermark_us
    floor0 = np.iinfo(np.int64).min if w0 is None else w0
    ids = batch.event_id
    clash = False
    if ids is not None and n:
        id_set = set(ids)
        if len(id_set) != n:
            clash = True
        else:
            for name in {batch.names[c] for c in np.unique(batch.code).tolist()}:
                entity = state.entities.get(name)
                if entity is not None and any(
                    not t.id_set.isdisjoint(id_set) for t in entity.open.values()
                ):
                    clash = True
                    break
    if not clash:
        before = np.maximum.accumulate(np.concatenate(([floor0], x)))[:-1]
        late_mask = (x - x % tile) + tile + lateness <= before
        accepted = np.flatnonzero(~late_mask)
        late = np.flatnonzero(late_mask)
        if len(accepted):
            top = int(x[accepted].max())
            state.watermark_us = top if w0 is None else max(w0, top)
        return accepted, late, np.empty(0, np.int64)
    # Slow path: ids repeat; decide event by event.
    w = w0
    acc: list[int] = []
    late_l: list[int] = []
    dup: list[int] = []
    batch_ids: dict[tuple[str, str], int] = {}
    assert ids is not None
    entities = batch.entity
    for i in range(n):
        xi = int(x[i])
        start = xi - xi % tile
        if w is not None and start + tile + lateness <= w:
            late_l.append(i)
            continue
        key = (entities[i], ids[i])
        earlier = batch_ids.get(key)
        if earlier is None:
            entity = state.entities.get(key[0])
            earlier = entity.id_tile(key[1]) if entity is not None else None
        if earlier is not None and (w is None or earlier + tile + lateness > w):
            dup.append(i)
            continue
        acc.append(i)
        batch_ids[key] = start
        w = xi if w is None else max(w, xi)
    state.watermark_us = w
    return (np.asarray(acc, np.int64), np.asarray(late_l, np.int64), np.asarray(dup, np.int64))


# ---------------------------------------------------------------- columns


def _columns(
    plan: TopicPlan, state: PartitionFeatureState, batch: EventBatch, acc: I64,
    entities: tuple[list[str], I64],
) -> dict[str, F64]:  # fmt: skip
    """The aggregated columns of the accepted events (computed columns included)."""
    cols: dict[str, F64] = {name: batch.fields[name][acc] for name in plan.source.fields}
    if not plan.source.columns:
        return cols
    prev: dict[str, F64] = {}
    if plan.source.prev_fields:
        # The previous accepted event of the same entity, in log order: within each entity's
        # events (a stable sort keeps log order), the one before; the first takes the stored.
        names, codes = entities
        order = np.argsort(codes, kind="stable")
        sorted_codes = codes[order]
        starts_group = np.ones(len(order), dtype=bool)
        starts_group[1:] = sorted_codes[1:] != sorted_codes[:-1]
        prev_index = np.full(len(acc), -1, np.int64)
        prev_index[order[~starts_group]] = order[np.flatnonzero(~starts_group) - 1]
        firsts = order[starts_group]
        for fname in plan.source.prev_fields:
            own = cols.get(fname)
            value = np.full(len(acc), np.nan)
            if own is not None:
                has = prev_index >= 0
                value[has] = own[prev_index[has]]
            value[firsts] = [
                state.entity(names[c]).prev.get(fname, np.nan) for c in codes[firsts].tolist()
            ]
            prev[fname] = value
    for name, expr in plan.source.columns:
        value = expr.evaluate(cols, {k: v for k, v in prev.items()}, size=len(acc))
        cols[name] = value
    if plan.source.prev_fields:
        names, codes = entities
        last = np.full(len(names), -1, np.int64)
        last[codes] = np.arange(len(acc))  # the last write wins: each entity's last event
        for code, j in enumerate(last.tolist()):
            entity = state.entity(names[code])
            for fname in plan.source.prev_fields:
                entity.prev[fname] = float(cols[fname][j])
    return cols


def _entity_codes(batch: EventBatch, acc: I64) -> tuple[list[str], I64]:
    """The distinct entities of the accepted events (sorted), and each event's index into them."""
    if not len(acc):
        return [], np.empty(0, np.int64)
    codes = batch.code[acc]
    present = np.flatnonzero(np.bincount(codes, minlength=len(batch.names))).tolist()
    present.sort(key=lambda c: batch.names[c])
    remap = np.zeros(len(batch.names), np.int64)
    remap[present] = np.arange(len(present))
    return [batch.names[c] for c in present], remap[codes]


# ---------------------------------------------------------------- summaries


def _window_summary(entity: EntityState, column: str, start: int, stop: int, tile: int) -> Summary:
    """Merged statistics of the entity's tiles in ``[start, stop)``."""
    out = Summary()
    for k in range(start, stop, tile):
        stats = entity.tiles.get(k)
        if stats is not None:
            col = stats.columns.get(column)
            if col is not None and col.n:
                out.merge(col.summary())
    return out


def _last_tiles_summary(
    entity: EntityState, column: str, start: int, stop: int, tile: int, count: int
) -> Summary:
    """Merged statistics of the latest ``count`` tiles in ``[start, stop)`` with a value."""
    chosen: list[ColumnStats] = []
    for k in range(stop - tile, start - 1, -tile):
        stats = entity.tiles.get(k)
        col = stats.columns.get(column) if stats is not None else None
        if col is not None and col.n:
            chosen.append(col)
            if len(chosen) == count:
                break
    out = Summary()
    for col in reversed(chosen):  # merged in time order, like any window
        out.merge(col.summary())
    return out


def _meta_tiles(entity: EntityState, start: int, stop: int, tile: int) -> tuple[int, int, int, int]:
    """(events, kafka max, offset min, offset max) of the tiles in ``[start, stop)``."""
    events, kafka, lo, hi = 0, -1, 2**62, -1
    for k in range(start, stop, tile):
        t = entity.tiles.get(k)
        if t is not None and t.events:
            events += t.events
            kafka = max(kafka, t.kafka_max)
            lo = min(lo, t.offset_min)
            hi = max(hi, t.offset_max)
    return events, kafka, lo, hi


def _window_end_rows(
    plan: TopicPlan,
    view: ViewPlan,
    name: str,
    entity: EntityState,
    bounds: list[int],
    sink: _RowSink,
) -> None:
    tile = plan.tile_us
    times, created, first, last = [], [], [], []
    values: dict[str, list[float]] = {a.name: [] for a in view.aggregations}
    for b in bounds:
        events, kafka, lo, hi = _meta_tiles(entity, b - view.hop_us - view.max_window_us, b, tile)
        if not events:
            continue
        times.append(b)
        created.append(kafka)
        first.append(lo)
        last.append(hi)
        cache: dict[tuple[str, int, int, int | None], Summary] = {}
        for agg in view.aggregations:
            end = _floor(b, agg.slide_us)
            key = (agg.column, end - agg.window_us, end, agg.last_tiles)
            summary = cache.get(key)
            if summary is None and agg.last_tiles is not None:
                summary = cache[key] = _last_tiles_summary(
                    entity, agg.column, key[1], end, tile, agg.last_tiles
                )
            elif summary is None:
                summary = cache[key] = _window_summary(entity, agg.column, key[1], end, tile)
            values[agg.name].append(finalize(summary, agg.function))
    if times:
        sink.add(
            name,
            np.asarray(times, np.int64),
            (
                np.asarray(created, np.int64),
                np.asarray(first, np.int64),
                np.asarray(last, np.int64),
            ),
            {k: np.asarray(v, np.float64) for k, v in values.items()},
        )


def _running_rows(
    plan: TopicPlan, view: ViewPlan, name: str, entity: EntityState, tile_start: int,
    times: I64, sink: _RowSink,
) -> None:  # fmt: skip
    """Rows of a running view at ``times`` (sorted, distinct, all in the tile at tile_start)."""
    tile = plan.tile_us
    open_tile = entity.open.get(tile_start)
    skip = 0
    if open_tile is not None and len(open_tile):
        if open_tile.ordered:
            order = np.arange(len(open_tile))
            ev = open_tile.event_us
        else:
            order = np.lexsort((open_tile.offset, open_tile.event_us))
            ev = open_tile.event_us[order]
        at = np.searchsorted(ev, times, side="right") - 1
        if open_tile.ordered and open_tile.start_n and int(at.min()) >= open_tile.start_n:
            skip = open_tile.start_n  # rows of the new events only: continue from the start
    else:
        order = np.empty(0, np.int64)
        ev = np.empty(0, np.int64)
        at = np.full(len(times), -1, np.int64)
    has = at >= 0
    safe = np.maximum(at, 0)
    # Meta over [tile_start - longest window, t].
    events, kafka, lo, hi = _meta_tiles(entity, tile_start - view.max_window_us, tile_start, tile)
    if len(ev):
        k_cum = np.maximum.accumulate(open_tile.kafka_ms[order])  # type: ignore[union-attr]
        o_sorted = open_tile.offset[order]  # type: ignore[union-attr]
        o_min = np.minimum.accumulate(o_sorted)
        o_max = np.maximum.accumulate(o_sorted)
        created = np.where(has, np.maximum(kafka, k_cum[safe]), kafka)
        first = np.where(has, np.minimum(lo, o_min[safe]), lo)
        last = np.where(has, np.maximum(hi, o_max[safe]), hi)
    else:
        created = np.full(len(times), kafka)
        first = np.full(len(times), lo)
        last = np.full(len(times), hi)
    keep = has | (events > 0)
    if not keep.any():
        return
    values: dict[str, F64] = {}
    prefixes: dict[tuple[str, int], tuple[Summary, Prefix]] = {}
    shifts: dict[tuple[str, int], int] = {}
    for agg in view.aggregations:
        key = (agg.column, agg.window_us)
        if key not in prefixes:
            base = _window_summary(
                entity, agg.column, tile_start + tile - agg.window_us, tile_start, tile
            )
            distinct = agg.column in plan.distinct
            prefix = None
            if len(ev):
                assert open_tile is not None
                part = skip if not distinct else 0
                column = open_tile.values[agg.column][order[part:]]
                start = open_tile.start.get(agg.column) if part else None
                if part and start is None:
                    start = ColumnStats()
                prefix = Prefix.of(column, base.distinct, distinct=distinct, start=start)
                shifts[key] = part
            prefixes[key] = (base, prefix)  # type: ignore[assignment]
        base, prefix = prefixes[key]
        if prefix is None:
            values[agg.name] = np.full(len(times), finalize(base, agg.function))
        else:
            full = finalize_many(base, prefix, safe - shifts[key], agg.function)
            values[agg.name] = np.where(has, full, finalize(base, agg.function))
    sink.add(
        name,
        times[keep],
        (created[keep].astype(np.int64), first[keep].astype(np.int64), last[keep].astype(np.int64)),
        {k: v[keep] for k, v in values.items()},
    )


# ---------------------------------------------------------------- the step


def _fold(
    plan: TopicPlan, state: PartitionFeatureState, batch: EventBatch, acc: I64,
    cols: dict[str, F64], entities: tuple[list[str], I64],
) -> dict[str, int]:  # fmt: skip
    """Add accepted events to their tiles; returns each entity's earliest new event time."""
    tile = plan.tile_us
    keep_events = plan.running or batch.event_id is not None
    x = batch.event_us[acc]
    offsets = batch.offset[acc]
    first_offsets = offsets if batch.first_offset is None else batch.first_offset[acc]
    kafka = batch.kafka_ms[acc]
    starts = x - x % tile
    earliest: dict[str, int] = {}
    if not len(acc):
        return earliest
    # Group by (entity, tile), keeping log order inside each group (a stable sort).
    names, codes = entities
    order = np.lexsort((starts, codes))
    key_codes, key_starts = codes[order], starts[order]
    cut = np.flatnonzero((key_codes[1:] != key_codes[:-1]) | (key_starts[1:] != key_starts[:-1]))
    groups = np.split(order, cut + 1)
    groups.sort(key=lambda g: int(g[0]))  # in the order their first events came
    for idx in groups:
        name = names[int(codes[idx[0]])]
        start = int(starts[idx[0]])
        entity = state.entity(name)
        stats = entity.tiles.get(start)
        if stats is None:
            stats = entity.tiles[start] = TileStats()
        held = entity.open.get(start) if keep_events else None
        if held is not None:
            # What the tile held before: running rows of the new events continue from it.
            held.start_n = len(held)
            held.start = {c: replace(s) for c, s in stats.columns.items()}
        for column in plan.aggregated:
            col = stats.columns.get(column)
            if col is None:
                col = stats.columns[column] = ColumnStats()
            col.add(cols[column][idx], x[idx], offsets[idx], distinct=column in plan.distinct)
        stats.events += len(idx)
        stats.kafka_max = max(stats.kafka_max, int(kafka[idx].max()))
        stats.offset_min = min(stats.offset_min, int(first_offsets[idx].min()))
        stats.offset_max = max(stats.offset_max, int(offsets[idx].max()))
        if keep_events:
            ids = batch.event_id
            new = OpenTile(
                x[idx], offsets[idx], kafka[idx],
                {c: cols[c][idx] for c in plan.aggregated},
                [ids[i] for i in acc[idx].tolist()] if ids is not None else [""] * len(idx),
            )  # fmt: skip
            if held is None:
                held = entity.open[start] = OpenTile.empty(plan.aggregated)
            held.extend(new)
        low = int(x[idx].min())
        earliest[name] = min(earliest.get(name, low), low)
    return earliest


def process_events(
    plan: TopicPlan, state: PartitionFeatureState, batch: EventBatch
) -> FeatureOutput:
    """Apply one partition's next events (log order) to its state, in place; returns the rows."""
    acc, late, dup = _accept(plan, state, batch)
    entities = _entity_codes(batch, acc)
    cols = _columns(plan, state, batch, acc, entities)
    earliest = _fold(plan, state, batch, acc, cols, entities)
    tile = plan.tile_us
    sinks = {v.name: _RowSink(v) for v in plan.views}
    # Running rows as of the new events (and any later event they precede).
    for view in plan.views:
        if not view.running:
            continue
        for name, low in earliest.items():
            entity = state.entities[name]
            for start in sorted(entity.open):
                if start + tile <= low - low % tile:
                    continue
                held = entity.open[start].event_us
                times = np.unique(held[held >= low])
                if len(times):
                    _running_rows(plan, view, name, entity, start, times, sinks[view.name])
    _emit_closed(plan, state, sinks)
    rows = {name: sink.rows() for name, sink in sinks.items()}
    return FeatureOutput(rows, late, dup, state.closed_us)


def advance_watermark(
    plan: TopicPlan, state: PartitionFeatureState, watermark_us: int
) -> FeatureOutput:
    """Move the partition's watermark to ``watermark_us`` without an event; returns the rows.

    For a bounded input whose end is known (a frame, a finished file): the windows that the
    input's last events left open close as if later events had come.
    """
    if state.watermark_us is None or watermark_us > state.watermark_us:
        state.watermark_us = watermark_us
    sinks = {v.name: _RowSink(v) for v in plan.views}
    _emit_closed(plan, state, sinks)
    return FeatureOutput(
        {name: sink.rows() for name, sink in sinks.items()}, closed_us=state.closed_us
    )


def process_chain(
    chain: ViewChain, states: Sequence[PartitionFeatureState], batch: EventBatch
) -> FeatureOutput:
    """:func:`process_events` for one view, through the stages of its chain.

    ``states`` holds one state per stage. The late and duplicate events are the topic's (a
    later stage has neither: its events come in time order and its watermark follows the
    rows the stage before has closed).
    """
    return _downstream(chain, states, process_events(chain.stages[0], states[0], batch))


def advance_chain(
    chain: ViewChain, states: Sequence[PartitionFeatureState], watermark_us: int
) -> FeatureOutput:
    """:func:`advance_watermark` for one view, through the stages of its chain."""
    return _downstream(chain, states, advance_watermark(chain.stages[0], states[0], watermark_us))


def feed_chain(
    chain: ViewChain, states: Sequence[PartitionFeatureState], upstream: FeatureOutput
) -> FeatureOutput:
    """A chained view's last stage fed with its upstream view's output of the same events.

    The upstream view's state is a function of the log alone, so once a chained view has
    reached its upstream's offset, its own copy of the upstream stages would equal the
    upstream's: it reads the upstream's rows instead of computing them again. Only the last
    of ``states`` is read and updated.
    """
    return _downstream(chain, states, upstream, start=len(chain.stages) - 1)


def _downstream(
    chain: ViewChain, states: Sequence[PartitionFeatureState], first: FeatureOutput,
    start: int = 1,
) -> FeatureOutput:  # fmt: skip
    """Feed each stage's rows to the next stage, then let it close what the rows closed.

    A window-end row at b is final (an event that could change it is late), so it is one event
    at ``b - 1 us`` for the next stage. Every row up to the stage's closed time has been
    emitted, so the next stage's watermark moves there: its row at B reads every row before B
    as soon as the stage before has emitted them, without waiting for a later event.
    """
    out = first
    for i in range(start, len(chain.stages)):
        before, stage = chain.stages[i - 1], chain.stages[i]
        events = rows_as_events(out.rows[before.views[0].name], stage.source.fields)
        parts = [process_events(stage, states[i], events)]
        if out.closed_us is not None:
            parts.append(advance_watermark(stage, states[i], out.closed_us))
        name = stage.views[0].name
        rows = [p.rows[name] for p in parts]
        out = FeatureOutput(
            {name: {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}},
            closed_us=states[i].closed_us,
        )
    return FeatureOutput(out.rows, first.late, first.duplicates, out.closed_us)


def rows_as_events(rows: Rows, columns: Sequence[str]) -> EventBatch:
    """Window-end rows as the events of a view chained from them, in time order.

    An event per row at ``event_us - 1`` (the last instant its windows cover), Kafka time its
    ``created_ms``, offsets its lineage range; ``columns`` are the features the next stage reads.
    """
    order = np.argsort(rows["event_us"], kind="stable")
    names, code = np.unique(rows["entity"][order].astype(str), return_inverse=True)
    return EventBatch(
        names.tolist(),
        np.asarray(code, np.int64).reshape(-1),
        rows["event_us"][order].astype(np.int64) - 1,
        rows["created_ms"][order].astype(np.int64),
        np.zeros(len(order), np.int64),
        rows["last_offset"][order].astype(np.int64),
        None,
        {c: rows[c][order].astype(np.float64) for c in columns},
        rows["first_offset"][order].astype(np.int64),
    )


def _emit_closed(plan: TopicPlan, state: PartitionFeatureState, sinks: dict[str, _RowSink]) -> None:
    """Rows of the boundaries the watermark passed since the last call."""
    if state.watermark_us is None:
        return
    limit = state.watermark_us - plan.source.lateness_us
    since = state.closed_us
    if since is None or limit > since:
        for view in plan.views:
            _close(plan, view, state, since, limit, sinks[view.name])
        state.closed_us = limit
        _prune(plan, state, limit)


def _bounds_of(
    entity: EntityState, view: ViewPlan, tile: int, since: int | None, limit: int
) -> list[int]:
    """Boundaries in ``(since, limit]`` near the entity's non-empty tiles."""
    hop = view.hop_us
    reach = tile + view.max_window_us + (0 if view.running else hop)
    found: set[int] = set()
    for k, stats in entity.tiles.items():
        if not stats.events:
            continue
        low = k + 1 if since is None else max(k + 1, since + 1)
        high = min(k + reach - 1, limit)
        b = -(-low // hop) * hop
        while b <= high:
            found.add(b)
            b += hop
    return sorted(found)


def _close(
    plan: TopicPlan, view: ViewPlan, state: PartitionFeatureState, since: int | None,
    limit: int, sink: _RowSink,
) -> None:  # fmt: skip
    tile = plan.tile_us
    for name, entity in state.entities.items():
        bounds = _bounds_of(entity, view, tile, since, limit)
        if not bounds:
            continue
        if not view.running:
            _window_end_rows(plan, view, name, entity, bounds, sink)
            continue
        by_tile: dict[int, list[int]] = {}
        for b in bounds:
            by_tile.setdefault(b - tile, []).append(b - 1)
            by_tile.setdefault(b, []).append(b)
        for start, times in sorted(by_tile.items()):
            _running_rows(
                plan, view, name, entity, start, np.asarray(sorted(set(times)), np.int64), sink
            )


def _prune(plan: TopicPlan, state: PartitionFeatureState, limit: int) -> None:
    """Drop the events of closed tiles, and tiles no window can read any more."""
    tile = plan.tile_us
    oldest = limit - plan.horizon_us
    for entity in state.entities.values():
        for start in [k for k in entity.open if k + tile <= limit]:
            del entity.open[start]
        for start in [k for k in entity.tiles if k + tile <= limit and k < oldest]:
            del entity.tiles[start]

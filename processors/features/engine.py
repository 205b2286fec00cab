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

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field

import numpy as np
import numpy.typing as npt

from featurestore.definitions.expressions import Prev
from processors.features.plan import TopicPlan
from processors.features.plan import ViewChain
from processors.features.plan import ViewPlan
from processors.features.running import RowBlock
from processors.features.running import RunningItem
from processors.features.running import running_rows
from processors.features.state import EntityState
from processors.features.state import OpenTile
from processors.features.state import PartitionFeatureState
from processors.features.state import TileStats
from processors.features.stats import ColumnStats
from processors.features.stats import Summary
from processors.features.stats import add_grouped
from processors.features.stats import finalize

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
"""A view's rows as columns: its features and the metadata every row has
(:data:`featurestore.definitions.columns.ROW_METADATA`)."""


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

    def add_block(self, block: RowBlock | None) -> None:
        """Rows of several entities (nothing for None)."""
        if block is not None:
            meta = (block.created_ms, block.first_offset, block.last_offset)
            self.add(block.entity, block.times, meta, block.values)

    def add(
        self, entity: str | npt.NDArray[np.object_], times: I64, meta: tuple[I64, I64, I64],
        values: dict[str, F64],
    ) -> None:  # fmt: skip
        """Rows at ``times`` of one entity (a name) or of each row's entity (an array)."""
        if not len(times):
            return
        if isinstance(entity, str):
            entity = np.full(len(times), entity, dtype=object)
        block: Rows = {
            "entity": entity,
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
        if len(set(ids)) != n:
            clash = True
        else:
            # Each entity's ids against its own open tiles (a tile holds thousands).
            order = np.argsort(batch.code, kind="stable")
            codes = batch.code[order]
            cuts = np.flatnonzero(codes[1:] != codes[:-1]) + 1
            for part in np.split(order, cuts):
                entity = state.entities.get(batch.names[int(batch.code[part[0]])])
                if entity is not None and entity.open:
                    mine = [ids[i] for i in part.tolist()]
                    if any(not t.id_set.isdisjoint(mine) for t in entity.open.values()):
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
    names, codes = entities
    groups: _EntityGroups | None = None
    for name, expr in plan.source.columns:
        # A column's previous values once it is computed: a later column may read them.
        for read in sorted((p for p in expr.prevs if p.key not in prev), key=lambda p: p.key):
            groups = groups or _EntityGroups.of(codes)
            prev[read.key] = _previous(read, cols[read.name], names, groups, state)
        cols[name] = expr.evaluate(cols, prev, size=len(acc))
    for read in plan.source.prevs:
        column = cols[read.name]
        last = np.full(len(names), -1, np.int64)
        if read.skip_nulls:
            kept = np.flatnonzero(~np.isnan(column))
            last[codes[kept]] = kept  # the last write wins: each entity's last value
        else:
            last[codes] = np.arange(len(acc))  # each entity's last event
        for code, j in enumerate(last.tolist()):
            if j >= 0:
                state.entity(names[code]).prev[read.key] = float(column[j])
    return cols


@dataclass(frozen=True)
class _EntityGroups:
    """The batch's events grouped by entity, in log order within each group (sorted once)."""

    order: I64
    """Event positions, entity by entity (a stable sort keeps log order)."""
    starts: npt.NDArray[np.bool_]
    """Where in ``order`` each entity's group begins."""
    codes: list[int]
    """The entity of each group, in order."""

    @classmethod
    def of(cls, codes: I64) -> _EntityGroups:
        order = np.argsort(codes, kind="stable")
        sorted_codes = codes[order]
        starts = np.ones(len(order), dtype=bool)
        starts[1:] = sorted_codes[1:] != sorted_codes[:-1]
        return cls(order, starts, sorted_codes[starts].tolist())


def _previous(
    read: Prev, column: F64, names: list[str], groups: _EntityGroups,
    state: PartitionFeatureState,
) -> F64:  # fmt: skip
    """What ``read`` gives each event of the batch, in the batch's order.

    ``column`` in the entity's event before (for ``prev_nonnull``, the latest one where it is
    not null); where the batch holds none, the value the state kept from the batches before.
    """
    order, starts = groups.order, groups.starts
    kept = np.array([state.entity(names[c]).prev.get(read.key, np.nan) for c in groups.codes])
    out = np.empty(len(order))
    if not read.skip_nulls:  # the event before in the entity's group, or the kept value
        out[order[~starts]] = column[order[np.flatnonzero(~starts) - 1]]
        out[order[starts]] = kept
        return out
    # The latest position at or before each one that holds a value, if in the same group.
    values = column[order]
    positions = np.arange(len(order))
    latest = np.maximum.accumulate(np.where(np.isnan(values), -1, positions))
    before = np.concatenate(([-1], latest[:-1]))
    has = before >= np.maximum.accumulate(np.where(starts, positions, 0))
    found = np.empty(len(order))
    found[has] = values[before[has]]
    found[~has] = kept[(np.cumsum(starts) - 1)[~has]]
    out[order] = found
    return out


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
        events, kafka, lo, hi = entity.tiles_meta(b - view.hop_us - view.max_window_us, b, tile)
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
                summary = cache[key] = entity.window_summary(agg.column, key[1], end, tile)
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


# ---------------------------------------------------------------- the step


def _fold(
    plan: TopicPlan, state: PartitionFeatureState, batch: EventBatch, acc: I64,
    cols: dict[str, F64], entities: tuple[list[str], I64],
) -> dict[str, int]:  # fmt: skip
    """Add accepted events to their tiles; returns each entity's earliest new event time.

    The events are grouped by (entity, tile) once; each column's statistics of every group
    are folded in one call (:func:`add_grouped`), the rest per group.
    """
    tile = plan.tile_us
    # A percentile's values are stored with the events (state.py): its tiles keep them too.
    keep_events = plan.running or batch.event_id is not None or bool(plan.kept)
    earliest: dict[str, int] = {}
    if not len(acc):
        return earliest
    x = batch.event_us[acc]
    starts = x - x % tile
    # Group by (entity, tile), keeping log order inside each group (a stable sort).
    names, codes = entities
    order = np.lexsort((starts, codes))
    key_codes, key_starts = codes[order], starts[order]
    cut = np.flatnonzero((key_codes[1:] != key_codes[:-1]) | (key_starts[1:] != key_starts[:-1]))
    bounds = np.concatenate(([0], cut + 1, [len(order)]))
    # The groups in the order their first events came (the entities' tiles are created so).
    firsts = order[bounds[:-1]]
    rank = np.argsort(firsts, kind="stable")
    group_of = np.empty(len(acc), np.int64)
    group_of[order] = np.repeat(np.argsort(rank), np.diff(bounds))
    order = np.argsort(group_of, kind="stable")  # by group in arrival order, log order inside
    x, g = x[order], group_of[order]
    begin = np.flatnonzero(np.concatenate(([True], g[1:] != g[:-1])))
    end = np.append(begin[1:], len(g))
    src = acc[order]
    offsets = batch.offset[src]
    first_offsets = offsets if batch.first_offset is None else batch.first_offset[src]
    kafka = batch.kafka_ms[src]
    values = {c: cols[c][order] for c in plan.aggregated}
    events = np.diff(np.append(begin, len(g))).tolist()
    kafka_max = np.maximum.reduceat(kafka, begin).tolist()
    offset_min = np.minimum.reduceat(first_offsets, begin).tolist()
    offset_max = np.maximum.reduceat(offsets, begin).tolist()
    low = np.minimum.reduceat(x, begin).tolist()
    group_codes = codes[order[begin]].tolist()
    group_starts = (x[begin] - x[begin] % tile).tolist()
    ids = batch.event_id
    group_stats: list[TileStats] = []
    for j, (code, start) in enumerate(zip(group_codes, group_starts, strict=True)):
        name = names[code]
        entity = state.entity(name)
        stats = entity.tiles.get(start)
        if stats is None:
            stats = entity.tiles[start] = TileStats(journaled=bool(plan.kept))
        for column in plan.aggregated:
            if column not in stats.columns:
                stats.columns[column] = ColumnStats()
        group_stats.append(stats)
        held = entity.open.get(start) if keep_events else None
        if held is not None and plan.running:
            # What the tile held before: running rows of the new events continue from it.
            held.start_n = len(held)
            held.start = {c: s.copy() for c, s in stats.columns.items()}
        stats.events += events[j]
        stats.kafka_max = max(stats.kafka_max, kafka_max[j])
        stats.offset_min = min(stats.offset_min, offset_min[j])
        stats.offset_max = max(stats.offset_max, offset_max[j])
        if keep_events:
            a, b = int(begin[j]), int(end[j])
            if held is None:
                held = entity.open[start] = OpenTile.empty(plan.aggregated)
            held.append(
                x[a:b], offsets[a:b], kafka[a:b], {c: v[a:b] for c, v in values.items()},
                [ids[i] for i in src[a:b].tolist()] if ids is not None else [""] * (b - a),
            )  # fmt: skip
        earliest[name] = min(earliest.get(name, low[j]), low[j])
    for column in plan.aggregated:
        add_grouped(
            [s.columns[column] for s in group_stats], values[column], x, offsets, g,
            distinct=column in plan.distinct, keep_values=column in plan.kept,
        )  # fmt: skip
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
        items = []
        for name, low in earliest.items():
            entity = state.entities[name]
            for start in sorted(entity.open):
                if start + tile <= low - low % tile:
                    continue
                held = entity.open[start].event_us
                times = np.unique(held[held >= low])
                if len(times):
                    items.append(RunningItem(name, entity, start, times))
        sinks[view.name].add_block(running_rows(plan, view, items))
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
    items = []
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
            items.append(RunningItem(name, entity, start, np.asarray(sorted(set(times)), np.int64)))
    sink.add_block(running_rows(plan, view, items))


def _prune(plan: TopicPlan, state: PartitionFeatureState, limit: int) -> None:
    """Drop the events of closed tiles, tiles no window can read any more, and idle entities."""
    tile = plan.tile_us
    oldest = limit - plan.horizon_us
    for name, entity in state.entities.items():
        for start in [k for k in entity.tiles if k + tile <= limit and k < oldest]:
            del entity.tiles[start]
        # After the tiles dropped: a tile both closed and dropped now journals nothing more.
        for start in [k for k in entity.open if k + tile <= limit]:
            state.close_open_tile(name, start)
    state.forget_idle()

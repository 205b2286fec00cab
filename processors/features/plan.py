"""The applied definitions of one topic, compiled into what the engine executes.

:func:`compile_topic` checks that every view can be computed (columns exist, windows are
multiples of the tile, running views slide by the tile) and raises a ConfigurationError
naming the view and the field otherwise; the engine itself assumes a valid plan.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import numpy as np

from featurestore.definitions.expressions import Prev
from featurestore.definitions.expressions import text_names
from featurestore.definitions.model import AggFunction
from featurestore.definitions.model import FeatureView
from featurestore.definitions.model import StreamSource
from featurestore.definitions.model import ValueType
from featurestore.errors import ConfigurationError
from processors.features.expressions import F64
from processors.features.expressions import Expression
from processors.features.expressions import compile_expression
from processors.features.expressions import lower_texts

__all__ = [
    "AggPlan",
    "SourcePlan",
    "TopicPlan",
    "ViewChain",
    "ViewPlan",
    "compile_chain",
    "compile_topic",
]

_US = timedelta(microseconds=1)


def _us(delta: timedelta) -> int:
    return delta // _US


@dataclass(frozen=True)
class AggPlan:
    """One aggregation: ``function`` of ``column`` over ``window_us``, ending at slide bounds."""

    name: str
    column: str
    function: AggFunction
    window_us: int
    slide_us: int
    last_tiles: int | None = None
    """Read only the latest this many tiles with a value of ``column`` in the window."""


@dataclass(frozen=True)
class ViewPlan:
    """One view: its aggregations, derived features and how its rows are timed."""

    name: str
    features: tuple[str, ...]
    """Output features in the view's schema order."""
    int_features: frozenset[str]
    aggregations: tuple[AggPlan, ...]
    derived: tuple[tuple[str, Expression], ...]
    running: bool
    hop_us: int
    """Rows at multiples of this (the gcd of the slides; the tile for running views)."""
    max_window_us: int


@dataclass(frozen=True)
class SourcePlan:
    """What the engine reads of each event, and the rules of acceptance."""

    topic: str
    entity_field: str
    timestamp_field: str
    id_field: str | None
    lateness_us: int
    fields: tuple[str, ...]
    """Fields of the event that columns or aggregations read: numbers, and the text fields of
    :attr:`texts` as codes."""
    columns: tuple[tuple[str, Expression], ...]
    """Computed columns, in order (a column may read the ones before it); their texts are
    lowered to codes (:func:`~processors.features.expressions.lower_texts`)."""
    prevs: tuple[Prev, ...]
    """The ``prev()``/``prev_nonnull()`` reads whose value per entity is kept, by key."""
    texts: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """Each text field the columns compare with texts, and those texts in code order (sorted):
    the engine reads the field as the index of its text there (-1: another text; NaN: null)."""

    def text_codes(self, field: str, values: Sequence[str | None]) -> F64:
        """``values`` of the text field ``field`` as the engine reads them (see :attr:`texts`)."""
        code = {text: float(i) for i, text in enumerate(dict(self.texts)[field])}
        return np.fromiter(
            (np.nan if v is None else code.get(v, -1.0) for v in values), np.float64, len(values)
        )


@dataclass(frozen=True)
class TopicPlan:
    """Every view computed from one topic."""

    source: SourcePlan
    views: tuple[ViewPlan, ...]
    join_key: str
    tile_us: int
    aggregated: tuple[str, ...]
    """Columns some aggregation reads (kept per tile)."""
    distinct: frozenset[str]
    """Columns some count_distinct reads (their value sets are kept per tile)."""
    kept: frozenset[str] = frozenset()
    """Columns some percentile reads (every value is kept per tile)."""

    @property
    def running(self) -> bool:
        """Whether a view needs the events of open tiles (rows as of every event)."""
        return any(v.running for v in self.views)

    @property
    def horizon_us(self) -> int:
        """How far back of the closed boundary closed tiles are still read.

        A row at a later boundary reads each aggregation's window ending at the latest multiple
        of that aggregation's own slide: up to its window + slide back. The view's hop (the gcd
        of its slides) is shorter when slides differ, and is not the bound.
        """
        reach = max(a.window_us + a.slide_us for v in self.views for a in v.aggregations)
        return reach + self.tile_us

    def view(self, name: str) -> ViewPlan:
        """The plan of the view called ``name``."""
        for view in self.views:
            if view.name == name:
                return view
        raise KeyError(name)


def _source_plan(source: StreamSource, where: str, known_fields: set[str] | None) -> SourcePlan:
    columns: list[tuple[str, Expression]] = []
    available = set(known_fields) if known_fields is not None else None
    fields: set[str] = set()
    prevs: set[Prev] = set()
    compiled = {
        name: compile_expression(text, where=f"{where} column {name!r}", allow_prev=True)
        for name, text in source.columns.items()
    }
    vocabulary: dict[str, set[str]] = {}
    for expr in compiled.values():
        for field, compared in text_names(expr.tree).items():
            vocabulary.setdefault(field, set()).update(compared)
    texts = {field: tuple(sorted(values)) for field, values in sorted(vocabulary.items())}
    for name, unlowered in compiled.items():
        expr = lower_texts(unlowered, texts)
        for used in expr.names | {p.name for p in expr.prevs}:
            if used in dict(columns):
                continue
            if available is not None and used not in available:
                raise ConfigurationError(
                    f"{where} column {name!r}: {used!r} is not a field of the source's events"
                )
            fields.add(used)
        prevs |= expr.prevs
        columns.append((name, expr))
    return SourcePlan(
        topic=source.topic,
        entity_field=source.entity_field,
        timestamp_field=source.timestamp_field,
        id_field=source.id_field,
        lateness_us=_us(source.watermark_delay),
        fields=tuple(sorted(fields)),
        columns=tuple(columns),
        prevs=tuple(sorted(prevs, key=lambda p: p.key)),
        texts=tuple(texts.items()),
    )


def _view_plan(view: FeatureView, tile_us: int, readable: set[str] | None) -> ViewPlan:
    stream = view.stream
    assert stream is not None
    where = f"feature view {view.name!r}"
    aggs: list[AggPlan] = []
    for agg in stream.aggregations:
        at = f"{where} aggregation {agg.name!r}"
        window, slide = _us(agg.window), _us(agg.slide)
        if window <= 0 or window % tile_us:
            raise ConfigurationError(f"{at}: window {agg.window} is not a multiple of the tile")
        if slide <= 0 or slide % tile_us:
            raise ConfigurationError(f"{at}: slide {agg.slide} is not a multiple of the tile")
        if stream.running and slide != tile_us:
            raise ConfigurationError(f"{at}: a running view slides by its tile ({slide} us)")
        if stream.running and agg.last_tiles is not None:
            raise ConfigurationError(f"{at}: 'the last N tiles' needs window-end rows")
        if readable is not None and agg.column not in readable:
            raise ConfigurationError(f"{at}: unknown column {agg.column!r}")
        aggs.append(AggPlan(agg.name, agg.column, agg.function, window, slide, agg.last_tiles))
    if not aggs:
        raise ConfigurationError(f"{where}: a stream feature view needs aggregations")
    names = [a.name for a in aggs]
    derived: list[tuple[str, Expression]] = []
    for name, text in stream.derived.items():
        expr = compile_expression(text, where=f"{where} derived feature {name!r}")
        compared = sorted(text_names(expr.tree))
        if compared:
            raise ConfigurationError(
                f"{where} derived feature {name!r}: compares {compared[0]!r} with a text;"
                " derived features read the view's aggregates, which are numbers"
            )
        unknown = sorted(expr.names - set(names) - {d for d, _ in derived})
        if unknown:
            raise ConfigurationError(
                f"{where} derived feature {name!r}: unknown aggregate {unknown[0]!r}"
            )
        derived.append((name, expr))
    outputs = set(names) | {d for d, _ in derived}
    declared = view.feature_names
    missing = sorted(outputs - set(declared))
    extra = sorted(set(declared) - outputs)
    if missing or extra:
        raise ConfigurationError(
            f"{where}: its schema must list exactly its aggregations and derived features"
            f" (not declared: {missing or 'none'}; not computed: {extra or 'none'})"
        )
    hop = tile_us if stream.running else math.gcd(*(a.slide_us for a in aggs))
    return ViewPlan(
        name=view.name,
        features=declared,
        int_features=frozenset(f.name for f in view.features if f.value_type is ValueType.INT64),
        aggregations=tuple(aggs),
        derived=tuple(derived),
        running=stream.running,
        hop_us=hop,
        max_window_us=max(a.window_us for a in aggs),
    )


def compile_topic(
    views: Sequence[FeatureView], join_key: str, *, fields: Sequence[str] | None = None
) -> TopicPlan:
    """The plan of ``views``, all computed from one source topic.

    Args:
        views: stream feature views of one topic.
        join_key: the entity's join key (the rows' key column).
        fields: the event's fields, when known (checks that columns exist).
    """
    if not views:
        raise ConfigurationError("no stream feature views to compute")
    plain = [v.name for v in views if v.stream is None]
    if plain:
        raise ConfigurationError(f"feature views {plain} have no stream computation")
    sources = [v.stream.source for v in views if v.stream is not None]
    source = sources[0]
    if any(s.topic != source.topic for s in sources):
        raise ConfigurationError("compile_topic takes the views of one topic")
    for view, other in zip(views, sources, strict=True):
        if other != source:
            raise ConfigurationError(
                f"feature view {view.name!r}: the views of topic {source.topic!r} must declare"
                f" the same source (columns, id field, lateness) as {views[0].name!r}"
            )
    tiles = {_us(v.stream.tile) for v in views if v.stream is not None}
    if len(tiles) != 1:
        raise ConfigurationError(
            f"the views of topic {source.topic!r} must share one tile (found {sorted(tiles)} us)"
        )
    (tile_us,) = tiles
    if tile_us <= 0:
        raise ConfigurationError(f"topic {source.topic!r}: the tile must be positive")
    where = f"source {source.name!r}"
    source_plan = _source_plan(source, where, set(fields) if fields is not None else None)
    readable = (set(fields) | set(dict(source_plan.columns))) if fields is not None else None
    plans = tuple(_view_plan(v, tile_us, readable) for v in views)
    aggregated = sorted({a.column for v in plans for a in v.aggregations})
    distinct = frozenset(
        a.column for v in plans for a in v.aggregations
        if a.function is AggFunction.COUNT_DISTINCT
    )  # fmt: skip
    kept = frozenset(
        a.column for v in plans for a in v.aggregations if a.function.quantile is not None
    )
    needed = set(source_plan.fields) | {c for c in aggregated if c not in dict(source_plan.columns)}
    source_plan = SourcePlan(**{**source_plan.__dict__, "fields": tuple(sorted(needed))})
    return TopicPlan(source_plan, plans, join_key, tile_us, tuple(aggregated), distinct, kept)


@dataclass(frozen=True)
class ViewChain:
    """How one view is computed: stages from the topic's events to the view's rows.

    ``stages[0]`` reads the topic's events; each later stage has one view, chained from the
    view of the stage before: its events are that view's window-end rows. A view computed
    from the topic itself has one stage.
    """

    stages: tuple[TopicPlan, ...]

    @property
    def view(self) -> ViewPlan:
        """The plan of the view this chain computes."""
        return self.stages[-1].views[0]

    @property
    def join_key(self) -> str:
        """The entity's join key column."""
        return self.stages[0].join_key


def _rows_stage(view: FeatureView, upstream: TopicPlan, join_key: str) -> TopicPlan:
    """The stage of a chained view: the upstream stage's one view's rows are its events."""
    stream = view.stream
    assert stream is not None
    feeding = upstream.views[0]
    tile_us = _us(stream.tile)
    plan = _view_plan(view, tile_us, set(feeding.features))
    aggregated = sorted({a.column for a in plan.aggregations})
    source = SourcePlan(
        topic=upstream.source.topic,
        entity_field=upstream.source.entity_field,
        timestamp_field=upstream.source.timestamp_field,
        id_field=None,
        lateness_us=0,
        fields=tuple(aggregated),
        columns=(),
        prevs=(),
    )
    distinct = frozenset(
        a.column for a in plan.aggregations if a.function is AggFunction.COUNT_DISTINCT
    )
    kept = frozenset(a.column for a in plan.aggregations if a.function.quantile is not None)
    return TopicPlan(source, (plan,), join_key, tile_us, tuple(aggregated), distinct, kept)


def compile_chain(view: FeatureView, views: Mapping[str, FeatureView], join_key: str) -> ViewChain:
    """The stages that compute ``view``, following its upstream views in ``views``.

    Raises:
        ConfigurationError: an upstream view that is unknown, running or part of a cycle, or
            a column the view reads that its upstream does not produce.
    """
    stream = view.stream
    if stream is None:
        raise ConfigurationError(f"feature view {view.name!r} has no stream computation")
    if stream.upstream is None:
        return ViewChain((compile_topic([view], join_key),))
    where = f"feature view {view.name!r} tag 'featurestore.source_view'"
    if stream.running:
        raise ConfigurationError(f"{where}: a chained view has window-end rows, not running rows")
    seen = {view.name}
    name: str | None = stream.upstream
    while name is not None:
        if name in seen:
            raise ConfigurationError(f"{where}: the chain of upstream views has a cycle")
        seen.add(name)
        found = views.get(name)
        if found is None or found.stream is None:
            raise ConfigurationError(f"{where}: {name!r} is not a stream feature view")
        if found.stream.running:
            raise ConfigurationError(f"{where}: {name!r} has running rows, not window-end rows")
        name = found.stream.upstream
    head = compile_chain(views[stream.upstream], views, join_key)
    return ViewChain((*head.stages, _rows_stage(view, head.stages[-1], join_key)))

"""Domain types for what the Feast registry defines: entities, feature views, feature services.

These are what the service, the processors and the offline export use; Feast's own objects are
converted at one edge (:mod:`featurestore.definitions.feast_codec`) and nowhere else, so callers
never pay ``import feast`` nor depend on its classes.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import timedelta
from typing import Any
from typing import TypeVar

from featurestore.definitions.expressions import names
from featurestore.definitions.expressions import parse
from featurestore.errors import ConfigurationError
from featurestore.errors import NotFoundError
from featurestore.errors import ValidationError

__all__ = [
    "INTEGER_AVRO_TYPES",
    "NUMERIC_AVRO_TYPES",
    "AggFunction",
    "Aggregation",
    "Definitions",
    "Entity",
    "Feature",
    "FeatureRef",
    "FeatureService",
    "FeatureView",
    "SourceTable",
    "StreamComputation",
    "StreamSource",
    "ValueType",
    "avro_kinds",
]


NUMERIC_AVRO_TYPES = frozenset(("int", "long", "float", "double"))
"""The Avro types of the fields a computed column or an aggregation may read: the processors
decode each such field into a float (a record where it is anything else is dead-lettered)."""

INTEGER_AVRO_TYPES = frozenset(("int", "long"))
"""The numeric Avro types whose values are whole numbers."""


def avro_kinds(avro_type: Any) -> frozenset[str]:
    """The primitive types an Avro field type allows, ``null`` left out (a union gives several)."""
    if isinstance(avro_type, list):
        return frozenset().union(*(avro_kinds(t) for t in avro_type))
    if isinstance(avro_type, dict):
        return avro_kinds(avro_type.get("type"))
    if isinstance(avro_type, str) and avro_type != "null":
        return frozenset((avro_type,))
    return frozenset()


class ValueType(enum.Enum):
    """The scalar types a feature may have: Feast's, by the names Feast's types print.

    The one type for the whole store: definitions, the offline tables and the online layout.
    Its value is Feast's type name (``Float64``), which fingerprints of stored views hold;
    :attr:`feast_number` is Feast's ``ValueType`` number, which the online layout stores. The
    offline store has columns for the first four only (:attr:`has_offline_column`); the online
    store serves every one. ``ValueType(5)`` also finds a type by its Feast number.
    """

    FLOAT64 = "Float64"
    INT64 = "Int64"
    STRING = "String"
    BOOL = "Bool"
    BYTES = "Bytes"
    INT32 = "Int32"
    FLOAT32 = "Float32"
    UNIX_TIMESTAMP = "UnixTimestamp"

    @classmethod
    def _missing_(cls, value: object) -> ValueType | None:
        """``ValueType(number)``: the type whose Feast ``ValueType`` number is ``number``."""
        if isinstance(value, int) and not isinstance(value, bool):
            for member in cls:
                if _FEAST_NUMBERS[member] == value:
                    return member
        return None

    @property
    def feast_number(self) -> int:
        """Feast's ``ValueType`` number (``feast.value_type.ValueType``; the online layout's)."""
        return _FEAST_NUMBERS[self]

    @property
    def has_offline_column(self) -> bool:
        """Whether the offline tables can hold a feature of this type."""
        return self in _PG_TYPES

    @property
    def postgres_type(self) -> str:
        """The column type of the offline table.

        Raises:
            ConfigurationError: the offline store has no column type for it.
        """
        try:
            return _PG_TYPES[self]
        except KeyError:
            raise ConfigurationError(
                f"feature type {self.value} is not supported by the offline store"
            ) from None


_PG_TYPES = {
    ValueType.FLOAT64: "double precision",
    ValueType.INT64: "bigint",
    ValueType.STRING: "text",
    ValueType.BOOL: "boolean",
}
_FEAST_NUMBERS = {
    ValueType.BYTES: 1,
    ValueType.STRING: 2,
    ValueType.INT32: 3,
    ValueType.INT64: 4,
    ValueType.FLOAT64: 5,
    ValueType.FLOAT32: 6,
    ValueType.BOOL: 7,
    ValueType.UNIX_TIMESTAMP: 8,
}


@dataclass(frozen=True)
class Entity:
    """An entity: what feature rows are about (here a traded symbol)."""

    name: str
    join_key: str
    value_type: ValueType = ValueType.STRING
    description: str = ""


@dataclass(frozen=True)
class Feature:
    """One feature (column) of a feature view."""

    name: str
    value_type: ValueType = ValueType.FLOAT64
    description: str = ""


@dataclass(frozen=True)
class SourceTable:
    """The PostgreSQL table a feature view reads from (the offline table contract)."""

    table: str
    """Table name, optionally schema-qualified (``schema.table``)."""
    timestamp_field: str = "event_timestamp"
    created_timestamp_column: str = "created_timestamp"
    partition_interval: str = "month"
    """Native range partitions per ``day`` or ``month`` of ``event_timestamp``."""
    retention: timedelta | None = None
    """How long the table keeps rows: a partition wholly older than ``now - retention`` is
    dropped by :mod:`featurestore.offline.retention` (None: kept forever). Rows derived from
    the log; a dropped range is rebuilt by replaying it (``featurestore processors
    backfill``)."""

    @property
    def schema(self) -> str:
        """The schema part of :attr:`table` (``public`` when unqualified)."""
        return self.table.split(".", 1)[0] if "." in self.table else "public"

    @property
    def name(self) -> str:
        """The table part of :attr:`table`."""
        return self.table.split(".", 1)[-1]


@dataclass(frozen=True, slots=True)
class FeatureRef:
    """A feature named by its view: ``bars_1m:close`` (the one reference type of the store)."""

    view: str
    feature: str

    @classmethod
    def parse(cls, text: str, *, field_name: str = "features") -> FeatureRef:
        """Parse ``view:feature`` as written; :class:`ValidationError` naming ``field_name``."""
        view, sep, feature = text.partition(":")
        if not sep or not view or not feature or ":" in feature:
            raise ValidationError(
                f"{field_name}: {text!r} is not a feature reference of the form 'view:feature'",
                field=field_name,
            )
        return cls(view, feature)

    @classmethod
    def selection(
        cls, features: Sequence[str | FeatureRef] | None, service: str | None
    ) -> tuple[FeatureRef, ...]:
        """Check what a request selects: references (parsed and returned) or a service (``()``).

        Raises :class:`ValidationError` naming ``features`` when both or neither are given, when
        the list is empty, when a reference is not ``view:feature`` or is named twice. Whether
        the views and features exist is for :meth:`Definitions.resolve`.
        """
        if (features is None) == (service is None):
            raise ValidationError(
                "give either feature references or a feature service, not both or neither",
                field="features",
            )
        if features is None:
            return ()
        if not features:
            raise ValidationError("no features requested", field="features")
        return cls.once_each(
            [f if isinstance(f, FeatureRef) else cls.parse(f.strip()) for f in features]
        )

    @property
    def column(self) -> str:
        """The full name ``view__feature``.

        The column of this feature in an export with full feature names, and the name of a
        model input Predict reads this feature for.
        """
        return f"{self.view}__{self.feature}"

    @classmethod
    def of_column(cls, column: str) -> FeatureRef | None:
        """``rolling_1m__vwap_5m`` -> ``rolling_1m:vwap_5m``; None if not ``view__feature``.

        The view is before the first ``__``: a feature's name may contain one, a view's not.
        """
        view, sep, feature = column.partition("__")
        return cls(view, feature) if sep and view and feature else None

    @staticmethod
    def once_each(
        refs: Sequence[FeatureRef], *, field_name: str = "features"
    ) -> tuple[FeatureRef, ...]:
        """``refs``, each named once; a repeat is a :class:`ValidationError` naming both places.

        Feast refuses a feature named twice, and the answer has one column a name: taking the
        repeat silently would hide a mistake in the request.
        """
        first_at: dict[FeatureRef, int] = {}
        for i, ref in enumerate(refs):
            first = first_at.setdefault(ref, i)
            if first != i:
                where = f"{field_name}[{i}]"
                raise ValidationError(
                    f"{where}: '{ref}' is named twice (first at [{first}])", field=where
                )
        return tuple(refs)

    def __str__(self) -> str:
        """``view:feature``."""
        return f"{self.view}:{self.feature}"


class AggFunction(enum.Enum):
    """What an :class:`Aggregation` computes over the events of its window (nulls skipped).

    Over a window without a non-null value: ``count``, ``sum`` and ``count_distinct`` are 0,
    the others null; ``std`` and ``var`` (sample, ddof=1) need two values. The percentiles
    (``p25``, ``median``, ``p75``, ``p90``, ``p95``, ``p99``) are exact, interpolated linearly
    between the two values around the rank (PostgreSQL's ``percentile_cont``, NumPy's default):
    a window keeps every value of the column to give them.
    """

    COUNT = "count"
    SUM = "sum"
    MEAN = "mean"
    MIN = "min"
    MAX = "max"
    STD = "std"
    VAR = "var"
    FIRST = "first"
    """The value of the event with the earliest event time (ties: first in the log)."""
    LAST = "last"
    """The value of the event with the latest event time (ties: last in the log)."""
    COUNT_DISTINCT = "count_distinct"
    """Exact number of distinct non-null values."""
    P25 = "p25"
    MEDIAN = "median"
    P75 = "p75"
    P90 = "p90"
    P95 = "p95"
    P99 = "p99"

    @property
    def quantile(self) -> float | None:
        """The fraction a percentile function stands for (``p95``: 0.95); None for the others."""
        return _QUANTILES.get(self)

    @classmethod
    def parse(cls, name: str) -> AggFunction:
        """The function called ``name`` (``avg`` is ``mean``); ValidationError otherwise."""
        aliases = {"avg": "mean", "stddev": "std", "variance": "var", "p50": "median"}
        key = aliases.get(name.lower(), name.lower())
        for function in cls:
            if function.value == key:
                return function
        known = ", ".join(f.value for f in cls)
        raise ValidationError(f"unsupported aggregation function {name!r} (supported: {known})")


_QUANTILES = {
    AggFunction.P25: 0.25,
    AggFunction.MEDIAN: 0.5,
    AggFunction.P75: 0.75,
    AggFunction.P90: 0.9,
    AggFunction.P95: 0.95,
    AggFunction.P99: 0.99,
}


@dataclass(frozen=True)
class Aggregation:
    """One declared aggregate: ``function`` of ``column`` over windows of ``window``.

    The value at time t covers the events with event time in ``[b - window, b)``, where b is
    the latest multiple of ``slide`` (since the epoch) at or before t: windows end at slide
    boundaries, and ``slide == window`` is a tumbling window. In a running view
    (:attr:`StreamComputation.running`) the window also takes the current slide up to t:
    ``[b + slide - window, t]``.
    """

    column: str
    """A field of the source's events, or one of its computed columns."""
    function: AggFunction
    window: timedelta
    slide: timedelta
    name: str
    """The feature it produces."""
    last_tiles: int | None = None
    """"The last N bars" instead of a span of time: the events of the latest ``last_tiles``
    tiles (bars) in which ``column`` has a value, among those of the window ``[B - window,
    B)``; ``window`` bounds how far back the bars are looked for. Window-end views only."""

    def describe(self) -> str:
        """``max(price) window 0:05:00 slide 0:01:00`` (``last 20 tiles`` after it when set)."""
        tiles = f" last {self.last_tiles} tiles" if self.last_tiles is not None else ""
        text = f"{self.function.value}({self.column}) window {self.window} slide {self.slide}"
        return text + tiles


@dataclass(frozen=True)
class StreamSource:
    """A Kafka topic of Avro events (Confluent framing, schemas in the schema registry)."""

    name: str
    topic: str
    timestamp_field: str
    """The event-time field (Avro ``timestamp-micros`` or ``timestamp-millis``)."""
    entity_field: str
    """The field holding the entity key; records are keyed by it in Kafka."""
    watermark_delay: timedelta
    """Allowed lateness: an event older than its partition's latest event time minus this,
    whose window has closed, is dead-lettered with reason ``late``."""
    id_field: str | None = None
    """A unique event id: a repeated id within open windows is dropped as a duplicate."""
    columns: Mapping[str, str] = field(default_factory=dict, hash=False)
    """Computed columns: name -> expression over the event's fields (``price * size``,
    ``ln(price / prev(price))``; ``prev(x)`` is x of the entity's previous event in the log),
    in order: a column may read the ones before it (grammar:
    :mod:`featurestore.definitions.expressions`)."""
    avro_schema: str = ""
    """The Avro record schema (JSON) of the fields the features read: the reader schema of the
    topic's events, Feast's ``AvroFormat(schema_json=...)``."""

    @property
    def fields(self) -> tuple[str, ...]:
        """Names of the fields of :attr:`avro_schema`, in its order (empty when it has none)."""
        try:
            record = json.loads(self.avro_schema) if self.avro_schema else {}
        except ValueError:
            return ()
        fields = record.get("fields") if isinstance(record, dict) else None
        if not isinstance(fields, list):
            return ()
        return tuple(str(f["name"]) for f in fields if isinstance(f, dict) and "name" in f)

    @property
    def field_types(self) -> dict[str, frozenset[str]]:
        """Each field of :attr:`avro_schema` and the primitive Avro types it allows.

        ``null`` is left out (``{"price": {"double"}, "symbol": {"string"}}``); a record or array
        type gives its own name.
        """
        try:
            record = json.loads(self.avro_schema) if self.avro_schema else {}
        except ValueError:
            return {}
        fields = record.get("fields") if isinstance(record, dict) else None
        if not isinstance(fields, list):
            return {}
        return {
            str(f["name"]): avro_kinds(f.get("type"))
            for f in fields
            if isinstance(f, dict) and "name" in f
        }


@dataclass(frozen=True)
class StreamComputation:
    """How the processors compute a feature view from a stream (a Feast StreamFeatureView)."""

    source: StreamSource
    aggregations: tuple[Aggregation, ...]
    derived: Mapping[str, str] = field(default_factory=dict, hash=False)
    """Features computed from the view's aggregates at the same time: name -> expression
    (``sum_notional_5m / sum_size_5m``); a division by zero or the log of a non-positive
    value gives null."""
    tile: timedelta = timedelta(minutes=1)
    """Events are kept as partial aggregates per tile; windows and slides are multiples of it."""
    running: bool = False
    """Rows as of every event time as well (the current window so far), not only at slide
    boundaries; needs every slide equal to the tile."""
    upstream: str | None = None
    """Set for a chained view: the window-end view of the same source whose rows are this
    view's events (its aggregations read the upstream view's features). A window-end row at
    boundary b covers ``[b - w, b)`` and is final once emitted, so it enters the chained view
    as one event at ``b - 1 us`` (the last instant it covers); a chained view's windows thus
    cover exactly the source events its upstream rows covered."""

    def read_columns(self) -> dict[str, str]:
        """The source's computed columns the aggregations read, directly or through others.

        Name -> expression, in the source's order. The views of a topic share its source, so a
        column added for one view is a column of every other: what a view's rows mean depends
        on these alone (a chained view reads its upstream's features, none of them).
        """
        if self.upstream is not None:
            return {}
        columns = self.source.columns
        read: set[str] = set()
        todo = [a.column for a in self.aggregations]
        while todo:
            name = todo.pop()
            if name in read or name not in columns:
                continue
            read.add(name)
            try:
                todo.extend(names(parse(columns[name], allow_prev=True)))
            except ConfigurationError:
                continue  # validation names it; the column counts as read
        return {name: text for name, text in columns.items() if name in read}


@dataclass(frozen=True)
class FeatureView:
    """A feature view: features of one entity, valid for ``ttl`` after their event time."""

    name: str
    entities: tuple[str, ...]
    """Names of the entities (their join keys key the source table)."""
    features: tuple[Feature, ...]
    ttl: timedelta
    """How long a feature row stays valid after its ``event_timestamp`` (0: forever)."""
    source: SourceTable
    tags: Mapping[str, str] = field(default_factory=dict)
    """Free-form metadata (Feast tags). The codec's own ``featurestore.*`` tags, which carry
    :attr:`stream` through Feast, are not among them."""
    description: str = ""
    stream: StreamComputation | None = None
    """How the processors compute it (None: written by something else)."""
    online: bool = True
    """False (Feast's ``online=False``): offline only. The processors write its rows to its
    offline table and not to the online store, and the online catalog refuses it by name:
    features only trained on cost no Redis memory."""

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Names of the features, in definition order."""
        return tuple(f.name for f in self.features)

    def feature(self, name: str) -> Feature:
        """The feature called ``name``; :class:`NotFoundError` when there is none."""
        for feature in self.features:
            if feature.name == name:
                return feature
        raise NotFoundError(
            f"feature view {self.name!r} has no feature {name!r} "
            f"(it has: {', '.join(self.feature_names)})"
        )

    @property
    def source_topic(self) -> str | None:
        """The Kafka topic this view is computed from, when recorded."""
        if self.stream is not None:
            return self.stream.source.topic
        return self.tags.get("source_topic")


@dataclass(frozen=True)
class FeatureService:
    """A named set of features that one model consumes."""

    name: str
    features: tuple[FeatureRef, ...]
    tags: Mapping[str, str] = field(default_factory=dict)
    description: str = ""


_Listed = TypeVar("_Listed", "Entity", "FeatureView", "FeatureService")


@dataclass(frozen=True)
class Definitions:
    """Everything one Feast project defines, with lookups that raise :class:`NotFoundError`."""

    project: str
    entities: tuple[Entity, ...]
    views: tuple[FeatureView, ...]
    services: tuple[FeatureService, ...]

    def entity(self, name: str) -> Entity:
        """The entity called ``name``."""
        return self._named(self.entities, name, "entity")

    def view(self, name: str) -> FeatureView:
        """The feature view called ``name``."""
        return self._named(self.views, name, "feature view")

    def join_key(self, view: FeatureView) -> str:
        """The join key of ``view``'s (first) entity: the column its rows are keyed by."""
        return self.entity(view.entities[0]).join_key

    def service(self, name: str) -> FeatureService:
        """The feature service called ``name``."""
        return self._named(self.services, name, "feature service")

    def warm_up(self, service: str | None = None) -> timedelta:
        """How long after its stream starts a row has every window ``service`` reads full.

        Windows are clock time: in the first minutes of a log (or after the feed was silent),
        a 20-minute volume covers fewer minutes than it says, and a ratio to it is biased.
        Rows that young are skipped where the distribution of features matters (training,
        drift). ``service``: the views its features read (None: those of every service;
        the views no service reads, such as hourly rollups, do not count). A chained view
        adds its upstream view's warm-up.
        """
        services = self.services if service is None else (self.service(service),)
        return self.views_warm_up({ref.view for s in services for ref in s.features})

    def views_warm_up(self, views: Iterable[str]) -> timedelta:
        """How long after its stream starts a row has every window of the named ``views`` full."""
        return max((self._view_warm_up(self.view(name)) for name in views), default=timedelta(0))

    def _view_warm_up(self, view: FeatureView) -> timedelta:
        if view.stream is None:
            return timedelta(0)
        own = max((a.window for a in view.stream.aggregations), default=timedelta(0))
        upstream = view.stream.upstream
        return own + (self._view_warm_up(self.view(upstream)) if upstream else timedelta(0))

    def _named(self, items: Sequence[_Listed], name: str, what: str) -> _Listed:
        """The one of ``items`` called ``name``; NotFoundError naming the others."""
        for item in items:
            if item.name == name:
                return item
        known = ", ".join(i.name for i in items) or "none"
        raise NotFoundError(f"unknown {what} {name!r} in project {self.project!r} (known: {known})")

    def resolve(
        self,
        features: Sequence[str | FeatureRef] | None = None,
        service: str | None = None,
    ) -> tuple[FeatureRef, ...]:
        """Check a list of references or a service name and return the references.

        Exactly one of ``features`` and ``service`` must be given, a reference named once. Every
        view and feature must exist.
        """
        parsed = FeatureRef.selection(features, service)
        refs = self.service(service).features if service is not None else parsed
        resolved = tuple(dict.fromkeys(refs))
        if not resolved:
            raise ValidationError(f"feature service {service!r} has no features", field="features")
        for ref in resolved:
            self.view(ref.view).feature(ref.feature)
        return resolved

    def group_by_view(self, refs: Iterable[FeatureRef]) -> list[tuple[FeatureView, list[Feature]]]:
        """Group references by view, views in order of first reference."""
        grouped: dict[str, list[Feature]] = {}
        for ref in refs:
            grouped.setdefault(ref.view, []).append(self.view(ref.view).feature(ref.feature))
        return [(self.view(name), feats) for name, feats in grouped.items()]

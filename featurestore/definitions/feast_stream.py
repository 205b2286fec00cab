"""Stream feature views: domain :class:`StreamComputation` <-> Feast ``StreamFeatureView``.

Part of the codec (:mod:`featurestore.definitions.feast_codec`); Feast is imported inside the
functions only. What Feast has a field for travels in it: the topic, event-time field, Avro
schema and lateness of the ``KafkaSource``; the aggregations (``Aggregation(column, function,
time_window, slide_interval, name)``; the name defaults to Feast's ``{function}_{column}``)
and ``tiling_hop_size`` (the tile) of the ``StreamFeatureView``; the view's offline table is
the ``batch_source`` of its ``KafkaSource``. The rest travels in tags, all prefixed
``featurestore.`` (:data:`TAG_PREFIX`); an unknown tag with that prefix is refused, so a typo
never passes silently.

On the ``KafkaSource``::

    featurestore.stream          name of the stream the views share (default: the source's name)
    featurestore.entity_field    the event field holding the entity key (required)
    featurestore.id_field        the unique event id, for de-duplication (optional)
    featurestore.column.<name>   a computed column: an expression over the event's fields

On the ``StreamFeatureView``::

    featurestore.rows            ``running`` (rows as of every event) or ``window_end`` (default)
    featurestore.derived.<name>  a derived feature: an expression over the view's aggregates
    featurestore.features        the feature order, comma-separated (optional)
    featurestore.source_view     a chained view: the window-end view whose rows it aggregates
    featurestore.last_tiles.<aggregation>   N: the aggregation reads the latest N tiles (bars)
                                 with a value of its column within its window ("the last N bars")

A chained view names its upstream view in a tag, and keeps the upstream's ``KafkaSource``:
Feast's own form (``source=other_view``, ``sink_source=...``) loses the link in the registry
(``StreamFeatureViewSpec`` has no ``source_views``), and every copy Feast makes of such a view
(``view[[...]]`` in a feature service) fails, since it rebuilds the view from its batch source.

Why the last tag and the stream name: Feast 0.67 writes a StreamFeatureView's fields to its
registry from a ``set`` (``FeatureView.schema``), so their order is lost in the SQL registry;
and every view has its own ``KafkaSource`` (its ``batch_source`` is the view's own table, see
``registry/README.md``), but the views of one topic share one stream for the processors.

Computed columns need an order (a column may read the ones before it) and tags are a map: the
order is recomputed from what each column reads (a column after every column it reads, ties by
name), so nothing has to be numbered by hand.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from featurestore.definitions.expressions import names
from featurestore.definitions.expressions import parse
from featurestore.definitions.model import AggFunction
from featurestore.definitions.model import Aggregation
from featurestore.definitions.model import Feature
from featurestore.definitions.model import FeatureView
from featurestore.definitions.model import StreamComputation
from featurestore.definitions.model import StreamSource
from featurestore.errors import ConfigurationError
from featurestore.errors import ValidationError

__all__ = [
    "COLUMN_TAG",
    "DERIVED_TAG",
    "ENTITY_FIELD_TAG",
    "FEATURES_TAG",
    "ID_FIELD_TAG",
    "LAST_TILES_TAG",
    "ROWS_TAG",
    "SOURCE_VIEW_TAG",
    "STREAM_TAG",
    "TAG_PREFIX",
    "order_features",
    "quiet_stream_warnings",
    "stream_from_feast",
    "stream_view_to_feast",
]

TAG_PREFIX = "featurestore."
STREAM_TAG = "featurestore.stream"
ENTITY_FIELD_TAG = "featurestore.entity_field"
ID_FIELD_TAG = "featurestore.id_field"
COLUMN_TAG = "featurestore.column."
ROWS_TAG = "featurestore.rows"
DERIVED_TAG = "featurestore.derived."
LAST_TILES_TAG = "featurestore.last_tiles."
FEATURES_TAG = "featurestore.features"
SOURCE_VIEW_TAG = "featurestore.source_view"

_SOURCE_TAGS = (STREAM_TAG, ENTITY_FIELD_TAG, ID_FIELD_TAG)
_VIEW_TAGS = (ROWS_TAG, FEATURES_TAG, SOURCE_VIEW_TAG)
_RUNNING, _WINDOW_END = "running", "window_end"


@contextlib.contextmanager
def quiet_stream_warnings() -> Iterator[None]:
    """Silence the warning Feast emits for every StreamFeatureView built ("experimental").

    Feast builds one per definition, per copy (``view[[...]]``) and per registry read; the
    warning says nothing actionable, and the test suite turns warnings into errors.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="Stream feature views are experimental", category=RuntimeWarning
        )
        yield


def _check_tags(
    tags: Mapping[str, str], exact: Sequence[str], prefixes: tuple[str, ...], where: str
) -> None:
    for key in tags:
        if key.startswith(TAG_PREFIX) and key not in exact and not key.startswith(prefixes):
            raise ConfigurationError(f"{where}: unknown tag {key!r}")


def _prefixed(tags: Mapping[str, str], prefix: str) -> dict[str, str]:
    return {k[len(prefix) :]: v for k, v in sorted(tags.items()) if k.startswith(prefix)}


def _dependency_order(columns: Mapping[str, str]) -> dict[str, str]:
    """Columns after every column they read (ties by name); a cycle is left to validation."""
    reads: dict[str, frozenset[str]] = {}
    for name, text in columns.items():
        try:
            reads[name] = names(parse(text, allow_prev=True)) & (columns.keys() - {name})
        except ConfigurationError:
            reads[name] = frozenset()  # validation reports it
    ordered: dict[str, str] = {}
    remaining = sorted(columns)
    while remaining:
        ready = [n for n in remaining if reads[n] <= ordered.keys()]
        pick = (ready or remaining)[0]
        ordered[pick] = columns[pick]
        remaining.remove(pick)
    return ordered


def _source_from_feast(view: Any, kafka: Any) -> StreamSource:
    from featurestore.definitions.feast_api import AvroFormat
    from featurestore.definitions.feast_api import KafkaSource

    # Named as the store names it (its stream), which the views of one topic share, so that a
    # mistake of the source function they are built with is one problem naming them all.
    stream = dict(getattr(kafka, "tags", None) or {}).get(STREAM_TAG, kafka.name)
    where = f"feature view {view.name!r} source {stream!r}"
    if not isinstance(kafka, KafkaSource):
        raise ConfigurationError(f"{where}: a {type(kafka).__name__}, not a KafkaSource")
    if view.timestamp_field and view.timestamp_field != kafka.timestamp_field:
        raise ConfigurationError(
            f"feature view {view.name!r}: timestamp_field {view.timestamp_field!r} differs from"
            f" its source's ({kafka.timestamp_field!r}), the event time its windows use"
        )
    if kafka.field_mapping:
        new, field = next(iter((v, k) for k, v in kafka.field_mapping.items()))
        raise ConfigurationError(
            f"{where}: field_mapping {kafka.field_mapping} is not applied: the processors read"
            f" the Avro fields by name; declare a renamed field as a computed column (tag"
            f" '{COLUMN_TAG}{new}' = '{field}')"
        )
    tags = dict(kafka.tags)
    _check_tags(tags, _SOURCE_TAGS, (COLUMN_TAG,), where)
    options = kafka.kafka_options
    if not isinstance(options.message_format, AvroFormat):
        raise ConfigurationError(f"{where}: message_format must be an AvroFormat")
    if ENTITY_FIELD_TAG not in tags:
        raise ConfigurationError(f"{where}: tag {ENTITY_FIELD_TAG!r} (the entity key) is missing")
    return StreamSource(
        name=tags.get(STREAM_TAG, kafka.name),
        topic=options.topic,
        timestamp_field=kafka.timestamp_field,
        entity_field=tags[ENTITY_FIELD_TAG],
        watermark_delay=options.watermark_delay_threshold or timedelta(0),
        id_field=tags.get(ID_FIELD_TAG),
        columns=_dependency_order(_prefixed(tags, COLUMN_TAG)),
        avro_schema=options.message_format.schema_json,
    )


def _aggregation(view_name: str, agg: Any, last_tiles: Mapping[str, str]) -> Aggregation:
    name = agg.name or f"{agg.function}_{agg.column}"
    where = f"feature view {view_name!r} aggregation {name!r}"
    try:
        function = AggFunction.parse(agg.function)
    except ValidationError as exc:
        raise ConfigurationError(f"{where}: {exc}") from exc
    if agg.time_window is None:
        raise ConfigurationError(f"{where}: time_window is not set")
    count = None
    if name in last_tiles:
        text = last_tiles[name].strip()
        if not (text.isascii() and text.isdigit()) or int(text) < 1:
            raise ConfigurationError(
                f"{where}: tag {LAST_TILES_TAG + name!r} is {last_tiles[name]!r}, not a positive"
                " whole number of tiles"
            )
        count = int(text)
    return Aggregation(agg.column, function, agg.time_window, agg.slide_interval, name, count)


def stream_from_feast(view: Any) -> tuple[StreamComputation, dict[str, str]]:
    """The computation of a Feast ``StreamFeatureView``, and its tags that are not ours.

    Raises:
        ConfigurationError: an unsupported function, an unknown ``featurestore.`` tag, no
            tile, no Avro format, no entity field; the message names the view and the field.
    """
    where = f"feature view {view.name!r}"
    if view.udf is not None or view.udf_string or view.feature_transformation is not None:
        # Computing the aggregations without it would serve other features than declared.
        raise ConfigurationError(
            f"{where}: a udf (Feast's transformation of the stream's rows) is not run by this"
            " store; declare what it computes as computed columns of the source (tag"
            f" '{COLUMN_TAG}<name>', an expression such as 'size * 100') and aggregate those"
            " (registry/README.md)"
        )
    if getattr(view, "version", "latest") not in ("latest", "", None):
        raise ConfigurationError(
            f"{where}: version {view.version!r}: this store keeps one version of a view, the"
            " latest applied; apply another version as a view of its own name"
        )
    tags = dict(view.tags)
    _check_tags(tags, _VIEW_TAGS, (DERIVED_TAG, LAST_TILES_TAG), where)
    rows = tags.get(ROWS_TAG, _WINDOW_END)
    if rows not in (_RUNNING, _WINDOW_END):
        raise ConfigurationError(
            f"{where}: tag {ROWS_TAG!r} is {rows!r}, not {_RUNNING!r} or {_WINDOW_END!r}"
        )
    if view.tiling_hop_size is None:
        raise ConfigurationError(f"{where}: tiling_hop_size (the tile of its windows) is not set")
    if view.source_views:
        upstream = ", ".join(v.name for v in view.source_views)
        raise ConfigurationError(
            f"{where}: source is the feature view {upstream}, which Feast's registry does not"
            f" keep; declare the upstream view's KafkaSource as source and tag"
            f" {SOURCE_VIEW_TAG!r} with the upstream view's name (registry/README.md)"
        )
    if view.stream_source is None:
        raise ConfigurationError(f"{where}: no KafkaSource")
    source = _source_from_feast(view, view.stream_source)
    last_tiles = _prefixed(tags, LAST_TILES_TAG)
    aggregations = tuple(_aggregation(view.name, a, last_tiles) for a in view.aggregations)
    unknown = sorted(set(last_tiles) - {a.name for a in aggregations})
    if unknown:
        raise ConfigurationError(
            f"{where}: tag {LAST_TILES_TAG + unknown[0]!r} names no aggregation of the view"
        )
    stream = StreamComputation(
        source=source,
        aggregations=aggregations,
        derived=_prefixed(tags, DERIVED_TAG),
        tile=view.tiling_hop_size,
        running=rows == _RUNNING,
        upstream=tags.get(SOURCE_VIEW_TAG) or None,
    )
    own = {k: v for k, v in tags.items() if not k.startswith(TAG_PREFIX)}
    return stream, own


def order_features(
    view_name: str, tags: Mapping[str, str], stream: StreamComputation, features: Sequence[Feature]
) -> tuple[Feature, ...]:
    """Features in the order of the view's ``featurestore.features`` tag.

    Without the tag: aggregations in declared order, then derived features by name (Feast's
    registry does not keep the schema's order, so it is never used).
    """
    by_name = {f.name: f for f in features}
    if FEATURES_TAG in tags:
        order = [n.strip() for n in tags[FEATURES_TAG].split(",") if n.strip()]
        twice = sorted({n for n in order if order.count(n) > 1})
        if twice:
            raise ConfigurationError(
                f"feature view {view_name!r}: {', '.join(map(repr, twice))} listed twice (in its"
                f" schema, or its tag {FEATURES_TAG!r})"
            )
        if sorted(order) != sorted(by_name):
            raise ConfigurationError(
                f"feature view {view_name!r}: tag {FEATURES_TAG!r} lists {order}, but its"
                f" schema has {sorted(by_name)}"
            )
    else:
        computed = [a.name for a in stream.aggregations] + sorted(stream.derived)
        order = [n for n in computed if n in by_name]
        order += sorted(n for n in by_name if n not in order)
    return tuple(by_name[n] for n in order)


def stream_view_to_feast(
    view: FeatureView,
    entities: list[Any],
    schema: list[Any],
    batch_source: Any,
    kafka_bootstrap: str,
) -> Any:
    """A Feast ``StreamFeatureView`` for a domain view with a stream computation.

    Call inside :func:`quiet_stream_warnings`.

    Args:
        view: The domain view (``view.stream`` is set).
        entities: Its Feast entities.
        schema: Its Feast fields, entity columns included.
        batch_source: Its offline table (a ``PostgreSQLSource``).
        kafka_bootstrap: Recorded on the ``KafkaSource`` for Feast's own tools (the store's
            processors take the brokers from the settings).
    """
    from featurestore.definitions.feast_api import Aggregation as FeastAggregation
    from featurestore.definitions.feast_api import AvroFormat
    from featurestore.definitions.feast_api import KafkaSource
    from featurestore.definitions.feast_api import StreamFeatureView

    stream = view.stream
    assert stream is not None
    source = stream.source
    source_tags = {STREAM_TAG: source.name, ENTITY_FIELD_TAG: source.entity_field}
    if source.id_field is not None:
        source_tags[ID_FIELD_TAG] = source.id_field
    source_tags.update({f"{COLUMN_TAG}{k}": v for k, v in source.columns.items()})
    kafka = KafkaSource(
        name=f"{source.name}_{view.name}",
        topic=source.topic,
        kafka_bootstrap_servers=kafka_bootstrap,
        timestamp_field=source.timestamp_field,
        message_format=AvroFormat(schema_json=source.avro_schema),
        watermark_delay_threshold=source.watermark_delay,
        batch_source=batch_source,
        tags=source_tags,
    )
    view_tags = {
        **view.tags,
        ROWS_TAG: _RUNNING if stream.running else _WINDOW_END,
        FEATURES_TAG: ",".join(view.feature_names),
    }
    view_tags.update({f"{DERIVED_TAG}{k}": v for k, v in stream.derived.items()})
    if stream.upstream is not None:
        view_tags[SOURCE_VIEW_TAG] = stream.upstream
    view_tags.update(
        {
            f"{LAST_TILES_TAG}{a.name}": str(a.last_tiles)
            for a in stream.aggregations
            if a.last_tiles
        }
    )
    return StreamFeatureView(
        name=view.name,
        source=kafka,
        entities=entities,
        ttl=view.ttl,
        schema=schema,
        aggregations=[
            FeastAggregation(
                column=a.column,
                function=a.function.value,
                time_window=a.window,
                slide_interval=a.slide,
                name=a.name,
            )
            for a in stream.aggregations
        ],
        timestamp_field=source.timestamp_field,
        tiling_hop_size=stream.tile,
        online=view.online,
        tags=view_tags,
        description=view.description,
    )

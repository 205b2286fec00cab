"""Refusing definitions the store cannot compute, before anything is applied.

:func:`validate_definitions` needs nothing but the definitions; :func:`check_source_schemas`
asks the schema registry whether each source topic has a schema. ``apply`` runs both before it
touches Feast, so a bad definition never reaches the registry, and each error names the view
and the field (``feature view 'bars_1m' aggregation 'open': ...``).

The processors compile the applied definitions and check the same rules again; this is the
early, complete check, run where a person is waiting for the answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from featurestore.definitions import expressions as ast
from featurestore.definitions.columns import LINEAGE_COLUMNS
from featurestore.definitions.columns import reserved_feature_names
from featurestore.definitions.expressions import names
from featurestore.definitions.expressions import parse
from featurestore.definitions.expressions import text_names
from featurestore.definitions.feast_stream import TAG_PREFIX
from featurestore.definitions.model import INTEGER_AVRO_TYPES
from featurestore.definitions.model import NUMERIC_AVRO_TYPES
from featurestore.definitions.model import AggFunction
from featurestore.definitions.model import Aggregation
from featurestore.definitions.model import Definitions
from featurestore.definitions.model import Entity
from featurestore.definitions.model import FeatureView
from featurestore.definitions.model import StreamComputation
from featurestore.definitions.model import ValueType
from featurestore.definitions.problems import Problems
from featurestore.errors import ConfigurationError
from featurestore.errors import NotFoundError
from featurestore.errors import SchemaError

if TYPE_CHECKING:
    from featurestore.events.registry import SchemaStore

__all__ = [
    "check_changes",
    "check_source_schemas",
    "check_tables",
    "offline_columns",
    "topic_entity",
    "validate_definitions",
]

_WHOLE = (AggFunction.COUNT, AggFunction.COUNT_DISTINCT)
"""Functions whose value is a whole number, never null, whatever the column."""
_WHOLE_OF_WHOLE = (AggFunction.SUM,)
"""Functions whose value is a whole number, never null, over a column of whole numbers (0
over a window without a value). ``min``, ``max``, ``first`` and ``last`` of whole numbers are
whole but null over such a window, which an Int64 row cannot hold."""
_MAX_EXACT = 2**53
"""Integer literals up to this size are exact as the floats expressions compute with."""
_ROLE_AVRO_TYPES = {
    "timestamp_field": frozenset(("int", "long")),
    "entity_field": frozenset(("string",)),
    "id_field": frozenset(("string",)),
}
"""The Avro types the processors decode each named field of a source from (from any other,
every event is dead-lettered)."""


def _source_columns(view: FeatureView, stream: StreamComputation) -> set[str]:
    """Check the source of ``view``; return every column an aggregation may read."""
    from featurestore.events.schemas import parse_schema_text

    source = stream.source
    where = f"feature view {view.name!r} source {source.name!r}"
    if not source.avro_schema:
        raise ConfigurationError(f"{where}: no Avro schema (AvroFormat schema_json)")
    try:
        parse_schema_text(source.avro_schema)
    except SchemaError as exc:
        raise ConfigurationError(f"{where}: {exc}") from exc
    fields = set(source.fields)
    for role, name in (
        ("timestamp_field", source.timestamp_field),
        ("entity_field", source.entity_field),
        ("id_field", source.id_field),
    ):
        if name is not None and name not in fields:
            raise ConfigurationError(
                f"{where}: {role} {name!r} is not a field of its Avro schema"
                f" ({', '.join(source.fields)})"
            )
        kinds, allowed = source.field_types.get(name or "", frozenset()), _ROLE_AVRO_TYPES[role]
        if name is not None and not (kinds and kinds <= allowed):
            raise ConfigurationError(
                f"{where}: {role} {name!r} has Avro type {'/'.join(sorted(kinds)) or 'null'};"
                f" the processors read it from {' or '.join(sorted(allowed))}"
            )
    readable = set(fields)
    for column, text in source.columns.items():
        at = f"{where} column {column!r}"
        if column in fields:
            raise ConfigurationError(f"{at}: a field of the Avro schema has this name")
        try:
            expr = parse(text, allow_prev=True)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{at}: {exc}") from exc
        for used in sorted(names(expr)):
            if used in source.columns and used not in readable:
                cycle = _column_cycle(source.columns, column)
                if cycle:
                    raise ConfigurationError(
                        f"{at}: the computed columns form a cycle: {' -> '.join(cycle)}"
                    )
            if used not in readable:
                raise ConfigurationError(
                    f"{at}: {used!r} is neither a field of the Avro schema nor an earlier column"
                )
        for used in sorted(_numeric_names(expr)):
            _check_numeric(source.field_types, used, at)
        for used in sorted(text_names(expr)):
            kinds = source.field_types.get(used, frozenset())
            if used not in fields or kinds != {"string"}:
                what = "a computed column" if used not in fields else "/".join(sorted(kinds))
                raise ConfigurationError(
                    f"{at}: {used!r} is compared with a text, but it is {what}; texts are compared"
                    " with string fields of the Avro schema only"
                )
        readable.add(column)
    return readable


def _numeric_names(expr: ast.Expr) -> frozenset[str]:
    """The names ``expr`` reads as numbers: all but those it compares with texts."""
    if isinstance(expr, ast.Name | ast.Prev):
        return frozenset((expr.name,))
    if isinstance(expr, ast.BinaryOp) and (
        isinstance(expr.left, ast.Text) or isinstance(expr.right, ast.Text)
    ):
        return frozenset()
    return frozenset().union(*(_numeric_names(child) for child in ast.children(expr)))


def _column_cycle(columns: Mapping[str, str], start: str) -> list[str]:
    """A cycle of computed columns through ``start`` (``[a, b, a]``), or ``[]``."""

    def reads(column: str) -> list[str]:
        try:
            used = names(parse(columns[column], allow_prev=True))
        except ConfigurationError:
            return []
        return sorted(used & columns.keys())

    stack, seen = [[start]], {start}
    while stack:
        path = stack.pop()
        for following in reads(path[-1]):
            if following == start:
                return [*path, start]
            if following not in seen:
                seen.add(following)
                stack.append([*path, following])
    return []


def _check_numeric(types: Mapping[str, frozenset[str]], used: str, at: str) -> None:
    """Refuse reading a field of the Avro schema that the processors cannot decode as a number."""
    kinds = types.get(used)
    if kinds is not None and not kinds <= NUMERIC_AVRO_TYPES:
        raise ConfigurationError(
            f"{at}: field {used!r} has Avro type {'/'.join(sorted(kinds)) or 'null'}; computed"
            f" columns and aggregations read numeric fields only"
            f" ({', '.join(sorted(NUMERIC_AVRO_TYPES))})"
        )


def _whole_columns(stream: StreamComputation) -> set[str]:
    """The source's fields and computed columns whose values are whole numbers (or null)."""
    source = stream.source
    whole = {
        name for name, kinds in source.field_types.items() if kinds and kinds <= INTEGER_AVRO_TYPES
    }
    for column, text in source.columns.items():
        if _is_whole(parse(text, allow_prev=True), whole):
            whole.add(column)
    return whole


def _is_whole(expr: ast.Expr, whole: set[str]) -> bool:
    """Whether ``expr`` is a whole number (or null) when the names in ``whole`` are."""
    if isinstance(expr, ast.Number):
        return expr.value.is_integer() and abs(expr.value) <= _MAX_EXACT
    if isinstance(expr, ast.Name | ast.Prev):
        return expr.name in whole
    if isinstance(expr, ast.Negate):
        return _is_whole(expr.operand, whole)
    if isinstance(expr, ast.BinaryOp) and expr.op in ("+", "-", "*", "/"):
        return expr.op != "/" and _is_whole(expr.left, whole) and _is_whole(expr.right, whole)
    if isinstance(expr, ast.BinaryOp) or (isinstance(expr, ast.Call) and expr.function == "not"):
        return True  # a comparison, and, or, not: 1, 0 or null
    if isinstance(expr, ast.When):
        otherwise = expr.otherwise
        return _is_whole(expr.value, whole) and (otherwise is None or _is_whole(otherwise, whole))
    if isinstance(expr, ast.Coalesce):
        return all(_is_whole(a, whole) for a in expr.arguments)
    if isinstance(expr, ast.Call):
        return expr.function == "abs" and _is_whole(expr.argument, whole)
    return False


def _check_int64(
    view: FeatureView, aggregations: Sequence[Aggregation], whole_columns: set[str]
) -> None:
    """Refuse an Int64 feature whose value may be fractional or null (declare it Float64)."""
    where = f"feature view {view.name!r}"
    stream = view.stream
    assert stream is not None
    whole: set[str] = set()
    for agg in aggregations:
        column_whole = agg.column in whole_columns
        if agg.function in _WHOLE or (agg.function in _WHOLE_OF_WHOLE and column_whole):
            whole.add(agg.name)
        elif view.feature(agg.name).value_type is ValueType.INT64:
            why = (
                "null over a window without a value"
                if agg.function in (AggFunction.MIN, AggFunction.MAX, AggFunction.FIRST,
                                    AggFunction.LAST) and column_whole
                else f"not always a whole number ({agg.column!r} is"
                f" {'whole' if column_whole else 'not whole'})"
            )  # fmt: skip
            raise ConfigurationError(
                f"{where} aggregation {agg.name!r}: declared Int64, but {agg.function.value} of"
                f" {agg.column!r} is {why}; declare it Float64 (Int64 holds count,"
                " count_distinct, and sum of whole numbers)"
            )
    for name, text in stream.derived.items():
        if view.feature(name).value_type is ValueType.INT64 and not _is_whole(parse(text), whole):
            raise ConfigurationError(
                f"{where} derived feature {name!r}: declared Int64, but {text!r} is not always"
                " a whole number; declare it Float64 (an Int64 derived feature uses +, -, * and"
                f" abs() of Int64-able aggregates and integers up to 2**53)"
            )


def _positive_multiple(value: timedelta, tile: timedelta) -> bool:
    return value > timedelta(0) and value % tile == timedelta(0)


def _check_stream(
    view: FeatureView, stream: StreamComputation, upstream: FeatureView | None = None
) -> None:
    where = f"feature view {view.name!r}"
    if stream.tile <= timedelta(0):
        raise ConfigurationError(f"{where}: tile {stream.tile} is not positive")
    readable = _source_columns(view, stream)
    whole = _whole_columns(stream)
    types = stream.source.field_types
    if upstream is not None:
        readable = _chain_columns(upstream)
        whole = {f.name for f in upstream.features if f.value_type is ValueType.INT64}
        types = {}
    aggregates: list[str] = []
    for agg in stream.aggregations:
        at = f"{where} aggregation {agg.name!r}"
        if agg.name in aggregates:
            raise ConfigurationError(f"{at}: two aggregations have this name")
        if agg.column not in readable and upstream is not None:
            raise ConfigurationError(
                f"{at}: column {agg.column!r} is not a numeric feature of its upstream view"
                f" {upstream.name!r} ({', '.join(sorted(readable))})"
            )
        if agg.column not in readable:
            raise ConfigurationError(
                f"{at}: column {agg.column!r} is neither a field of the source's Avro schema"
                " nor a computed column"
            )
        _check_numeric(types, agg.column, at)
        for role, value in (("window", agg.window), ("slide", agg.slide)):
            if not _positive_multiple(value, stream.tile):
                raise ConfigurationError(
                    f"{at}: {role} {_signed(value)} is not a positive multiple of the tile"
                    f" {stream.tile}"
                )
        if agg.last_tiles is not None and stream.running:
            raise ConfigurationError(
                f"{at}: 'the last {agg.last_tiles} tiles' needs window-end rows (a running"
                " view's windows are spans of time)"
            )
        if stream.running and agg.slide != stream.tile:
            raise ConfigurationError(
                f"{at}: slide {agg.slide} differs from the tile {stream.tile}"
                " (a running view slides by its tile)"
            )
        aggregates.append(agg.name)
    if not aggregates:
        raise ConfigurationError(f"{where}: a stream feature view needs aggregations")
    for name, text in stream.derived.items():
        at = f"{where} derived feature {name!r}"
        if name in aggregates:
            raise ConfigurationError(f"{at}: an aggregation has this name")
        try:
            expr = parse(text)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{at}: {exc}") from exc
        unknown = sorted(names(expr) - set(aggregates))
        if unknown:
            raise ConfigurationError(f"{at}: unknown aggregate {unknown[0]!r} in {text!r}")
        compared = sorted(text_names(expr))
        if compared:
            raise ConfigurationError(
                f"{at}: compares {compared[0]!r} with a text; derived features read the view's"
                " aggregates, which are numbers (compare texts in the source's columns)"
            )
    computed = [*aggregates, *stream.derived]
    declared = list(view.feature_names)
    if sorted(declared) != sorted(computed):
        missing = sorted(set(computed) - set(declared))
        extra = sorted(set(declared) - set(computed))
        doubled = sorted({n for n in declared if declared.count(n) > 1})
        raise ConfigurationError(
            f"{where}: its schema must list each aggregation and derived feature once"
            f" (not in the schema: {missing or 'none'}; neither aggregated nor derived:"
            f" {extra or 'none'}; listed twice: {doubled or 'none'})"
        )
    for feature in view.features:
        if feature.value_type not in (ValueType.FLOAT64, ValueType.INT64):
            raise ConfigurationError(
                f"{where}: feature {feature.name!r} has type {feature.value_type.value}; the"
                " aggregations and derived features of a stream view are Float64 or Int64"
            )
    _check_int64(view, stream.aggregations, whole)
    reserved = sorted(k for k in view.tags if k.startswith(TAG_PREFIX))
    if reserved:
        raise ConfigurationError(f"{where}: tag {reserved[0]!r} is reserved for the codec")


def _check_chains(views: Iterable[FeatureView]) -> None:
    """A chained view reads a window-end view of its own source; no cycle.

    Cycles are reported first (the clearer error). A running view's rows are re-emitted as
    later events land, so they cannot be another view's events; the chained view's own rows
    are at window ends too (a row at each upstream row's time would add nothing).
    """
    streams = {v.name: v for v in views if v.stream is not None}
    upstream = {
        name: v.stream.upstream for name, v in streams.items() if v.stream is not None
    }  # fmt: skip
    for name, source in upstream.items():
        if source is not None and source not in streams:
            raise ConfigurationError(
                f"feature view {name!r} tag 'featurestore.source_view': {source!r} is not a"
                " stream feature view"
            )
    for start in upstream:
        path = [start]
        while (following := upstream[path[-1]]) is not None:
            if following in path:
                cycle = " -> ".join([*path[path.index(following) :], following])
                raise ConfigurationError(f"feature views form a cycle: {cycle}")
            path.append(following)
    for name, source in upstream.items():
        if source is None:
            continue
        view, feeding = streams[name], streams[source]
        assert view.stream is not None and feeding.stream is not None
        where = f"feature view {name!r} tag 'featurestore.source_view'"
        if feeding.stream.source.topic != view.stream.source.topic:
            raise ConfigurationError(
                f"{where}: {source!r} reads topic {feeding.stream.source.topic!r}, not"
                f" {view.stream.source.topic!r}: a chained view keeps its upstream's source"
            )
        if feeding.stream.running:
            raise ConfigurationError(
                f"{where}: {source!r} has running rows (re-emitted as events land); a chained"
                " view reads a window_end view"
            )
        if view.stream.running:
            raise ConfigurationError(
                f"feature view {name!r}: a chained view has rows at its window ends"
                " (tag 'featurestore.rows' = 'window_end')"
            )


def _chain_columns(upstream: FeatureView) -> set[str]:
    """What a chained view's aggregations may read: its upstream's numeric features."""
    from featurestore.definitions.model import ValueType

    return {
        f.name for f in upstream.features if f.value_type in (ValueType.FLOAT64, ValueType.INT64)
    }


def topic_entity(topic: str, views: Sequence[FeatureView]) -> str:
    """The one entity that keys every stream view of ``topic`` (``views``, chained ones too).

    The processors key a topic's rows and state by one entity; the compiler asks this too.

    Raises:
        ConfigurationError: a view keyed by no entity, by several, or by another than the
            first view of the topic; the message names the view, its entities and the topic's.
    """
    first: FeatureView | None = None
    for view in views:
        where = f"feature view {view.name!r} (topic {topic!r})"
        # Feast keys a view without entities by a placeholder entity, "__dummy".
        named = [e for e in view.entities if not e.startswith("__dummy")]
        if len(named) != 1 or len(view.entities) != 1:
            keyed = ", ".join(repr(e) for e in named) or "none"
            raise ConfigurationError(
                f"{where}: a stream feature view is keyed by exactly one entity (it names: {keyed})"
            )
        if first is None:
            first = view
        elif view.entities != first.entities:
            raise ConfigurationError(
                f"{where}: keyed by entity {view.entities[0]!r}, but the topic's views are"
                f" keyed by {first.entities[0]!r} (as {first.name!r} is); the views of one"
                " topic share one entity"
            )
    if first is None:
        raise ConfigurationError(f"topic {topic!r}: no stream feature view reads it")
    return first.entities[0]


def _check_topics(views: Iterable[FeatureView]) -> None:
    """The views of one topic share one stream source, one tile and one entity.

    The processors need it.
    """
    first: dict[str, FeatureView] = {}
    by_topic: dict[str, list[FeatureView]] = {}
    for view in views:
        if view.stream is None:
            continue
        by_topic.setdefault(view.stream.source.topic, []).append(view)
        seen = first.setdefault(view.stream.source.topic, view)
        assert seen.stream is not None
        if seen.stream.source != view.stream.source:
            raise ConfigurationError(
                f"feature view {view.name!r} source: it reads topic"
                f" {view.stream.source.topic!r} like {seen.name!r}, but declares its source"
                " differently (the views of one topic share one stream source)"
            )
        if seen.stream.tile != view.stream.tile:
            raise ConfigurationError(
                f"feature view {view.name!r} tile: {view.stream.tile} differs from the tile of"
                f" {seen.name!r} ({seen.stream.tile}), which reads the same topic"
            )
    for topic, mine in by_topic.items():
        topic_entity(topic, mine)


def _check_entities(entities: Iterable[Entity]) -> None:
    """Every join key is a String: what the processors key rows by, as Feast keys a String.

    The processors read an entity from a string field of its events and write its rows under
    that text, and the offline tables hold join keys as text. An entity Feast types otherwise
    (Int64, Int32, ...) would be keyed by Feast as that type, so Feast (and a request naming the
    entity by that type) would find none of the rows the store writes.
    """
    for entity in entities:
        if entity.value_type is not ValueType.STRING:
            raise ConfigurationError(
                f"entity {entity.name!r}: join key {entity.join_key!r} type"
                f" {entity.value_type.value} is not supported (String: the processors read an"
                " entity from a string field of its events, and the offline tables and online"
                " keys hold it as text)"
            )


def validate_definitions(definitions: Definitions) -> None:
    """Refuse definitions the store cannot compute or serve.

    Checked: every stream view's source (its Avro schema, the fields it names, its computed
    columns, each reading only fields and earlier columns), its aggregations (columns the
    source has, windows and slides positive multiples of the tile, a running view sliding by
    its tile), its derived features (expressions that parse and read only its aggregates), its
    schema (exactly its aggregations and derived features); chained views (no cycle, an
    upstream window-end view of the same source, columns among its numeric features); views
    of one topic sharing one source and tile; feature services naming existing features;
    feature types the offline tables can hold; String join keys; the Avro types of each
    source's event time, entity and id fields.
    Unsupported aggregation functions cannot reach the domain types: the codec refuses them
    when it reads Feast objects.

    Raises:
        ConfigurationError: every problem found (each view, service and check on its own); each
            names the view and the field.
    """
    problems = Problems()
    with problems.each():
        _check_entities(definitions.entities)
    names_seen: set[str] = set()
    for view in definitions.views:
        with problems.each():
            if view.name in names_seen:
                raise ConfigurationError(f"two feature views are called {view.name!r}")
            names_seen.add(view.name)
            _check_features(view)
    before = len(problems.errors)
    with problems.each():
        _check_chains(definitions.views)
    chains_hold = len(problems.errors) == before  # else an upstream may not exist
    for view in definitions.views:
        if view.stream is not None and (chains_hold or view.stream.upstream is None):
            with problems.each():
                upstream = view.stream.upstream
                _check_stream(
                    view, view.stream, definitions.view(upstream) if upstream is not None else None
                )
    with problems.each():
        _check_topics(definitions.views)
    for service in definitions.services:
        with problems.each():
            try:
                definitions.resolve(service=service.name)
            except NotFoundError as exc:
                raise ConfigurationError(f"feature service {service.name!r}: {exc}") from exc
    problems.raise_any()


def _check_features(view: FeatureView) -> None:
    reserved = reserved_feature_names(view)
    for feature in view.features:
        if feature.name in reserved:
            raise ConfigurationError(
                f"feature view {view.name!r}: feature {feature.name!r} has the name of a"
                f" column every row has besides its features ({', '.join(sorted(reserved))})"
            )
        if not feature.value_type.has_offline_column:
            raise ConfigurationError(
                f"feature view {view.name!r}: feature {feature.name!r} has type"
                f" {feature.value_type.value}, which the offline tables cannot hold"
                " (Float64, Int64, String, Bool)"
            )


def check_source_schemas(definitions: Definitions, store: SchemaStore) -> None:
    """Refuse a stream source whose topic has no value schema in the schema registry.

    Raises:
        ConfigurationError: no schema under ``<topic>-value``; names the view and the topic.
        BackendUnavailableError: the registry cannot be reached.
    """
    from featurestore.events.registry import value_subject

    checked: set[str] = set()
    for view in definitions.views:
        if view.stream is None:
            continue
        topic = view.stream.source.topic
        if topic in checked:
            continue
        subject = value_subject(topic)
        try:
            store.latest_schema_text(subject)
        except NotFoundError as exc:
            raise ConfigurationError(
                f"feature view {view.name!r} source {view.stream.source.name!r}: topic"
                f" {topic!r} has no schema in the schema registry (subject {subject!r}); a"
                " producer registers it with its first record (Confluent's Avro serializer;"
                f" `featurestore ingest metrics --topic {topic}` for metric events)"
            ) from exc
        checked.add(topic)


def _meaning(view: FeatureView) -> dict[str, str | None]:
    """What a stream view's stored rows mean, part by part as text (for the change check)."""
    stream = view.stream
    assert stream is not None
    source = stream.source
    parts: dict[str, str | None] = {
        "source topic": source.topic,
        "entity field": source.entity_field,
        "timestamp field": source.timestamp_field,
        "id field": source.id_field,
        "lateness": str(source.watermark_delay),
        "tile": str(stream.tile),
        "rows": "running" if stream.running else "window_end",
        "upstream view": stream.upstream,
    }
    parts.update({f"column {k}": repr(v) for k, v in stream.read_columns().items()})
    parts.update({f"aggregation {agg.name}": agg.describe() for agg in stream.aggregations})
    parts.update({f"derived feature {k}": repr(v) for k, v in stream.derived.items()})
    parts.update({f"feature {f.name} type": f.value_type.value for f in view.features})
    return parts


def check_changes(before: Definitions | None, after: Definitions) -> None:
    """Refuse a change to a stream view that would reinterpret the rows it has stored.

    A view whose computation or feature types change under the same name would hold rows of
    two meanings in one table, and its state would continue from the old one. Such a change
    is applied as a new view (a new name, for example ``rolling_1m_v2``): it is backfilled from
    the log while the old one keeps serving, and the old one is removed when no longer used.
    Descriptions, TTL, tags and feature services may change freely; views may be added or
    removed (a removed view is no longer written).

    Raises:
        ConfigurationError: naming the view and the field that changed.
    """
    if before is None:
        return
    old = {v.name: v for v in before.views if v.stream is not None}
    for view in after.views:
        previous = old.get(view.name)
        if previous is None or view.stream is None:
            continue
        was, now = _meaning(previous), _meaning(view)
        for part in sorted(set(was) | set(now)):
            if was.get(part) != now.get(part):
                raise ConfigurationError(
                    f"feature view {view.name!r}: {part} changes from {was.get(part) or '(none)'}"
                    f" to {now.get(part) or '(none)'}, which would reinterpret the rows already"
                    f" computed; apply it as a new view (for example {view.name}_v2) instead"
                )


def offline_columns(view: FeatureView, join_keys: Sequence[str]) -> dict[str, str]:
    """The columns of the view's offline table, in order: name -> PostgreSQL type.

    Types are spelled as PostgreSQL's ``format_type`` writes them, so that a table that exists
    compares equal column by column (:func:`check_tables`). The layout is that of
    :mod:`featurestore.offline.tables`, which creates the table from these.
    """
    src = view.source
    columns = dict.fromkeys(join_keys, "text")
    columns[src.timestamp_field] = "timestamp with time zone"
    columns[src.created_timestamp_column] = "timestamp with time zone"
    columns.update((f.name, f.value_type.postgres_type) for f in view.features)
    columns.update(LINEAGE_COLUMNS)
    return columns


def _table_differences(
    view: FeatureView, join_keys: Sequence[str], found: Mapping[str, str]
) -> list[str]:
    """How the table's columns ``found`` differ from what ``view`` declares, one text each."""
    wanted = offline_columns(view, join_keys)
    features = {f.name: f.value_type.value for f in view.features}
    differences = []
    for name, kind in wanted.items():
        what = f"feature {name} ({features[name]})" if name in features else f"column {name}"
        if name in join_keys:
            what = f"join key {name}"
        if name not in found:
            differences.append(f"{what} has no column")
        elif found[name] != kind:
            differences.append(f"{what} needs {kind}, but the column is {found[name]}")
    differences += [
        f"column {name} ({kind}) is not declared by the view (a feature or join key removed)"
        for name, kind in found.items()
        if name not in wanted
    ]
    return differences


def check_tables(definitions: Definitions, tables: Mapping[str, Mapping[str, str]]) -> None:
    """Refuse a view whose offline table exists with other columns than the view declares.

    An offline table is created when its view is first applied and never altered afterwards:
    its rows keep the meaning they were written with, and the table is what the view's first
    definition (and, for a stream view, a replay of the log) makes. A feature added, removed
    or retyped, or a join key changed (its entity, or the entity's join key), under the same
    name and table, would otherwise be accepted while the writers, the point-in-time reads and
    the export fail on the missing column or read values of another type. Such a change is
    applied as a new view with a table of its own, as :func:`check_changes` asks of a stream
    view; the same holds for a removed view added again over the table it left.

    Args:
        definitions: What is applied.
        tables: The columns (name -> type, as ``format_type`` writes it) of each offline table
            that exists, by the name a view's ``source.table`` gives it.

    Raises:
        ConfigurationError: naming the view, its table and each column that differs.
    """
    for view in definitions.views:
        found = tables.get(view.source.table)
        if found is None:
            continue
        keys = [definitions.entity(name).join_key for name in view.entities]
        differences = _table_differences(view, keys, found)
        if differences:
            raise ConfigurationError(
                f"feature view {view.name!r}: its offline table {view.source.table!r} already"
                f" exists with other columns: {'; '.join(differences)}. The table is never"
                " altered, so that the rows already written keep their meaning; apply the"
                f" change as a new view with an offline table of its own (for example"
                f" {view.name}_v2, table {view.source.table}_v2) instead"
            )


def _signed(span: timedelta) -> str:
    """``-0:01:00`` for minus a minute, where ``str`` writes ``-1 day, 23:59:00``."""
    return f"-{-span}" if span < timedelta(0) else str(span)

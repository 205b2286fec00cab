"""Each refusal of validate_definitions, with a message naming the view and the field."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from featurestore.apply import apply_definitions
from featurestore.config import load_settings
from featurestore.definitions import AggFunction
from featurestore.definitions import Aggregation
from featurestore.definitions import Definitions
from featurestore.definitions import Entity
from featurestore.definitions import Feature
from featurestore.definitions import FeatureRef
from featurestore.definitions import FeatureService
from featurestore.definitions import FeatureView
from featurestore.definitions import StreamComputation
from featurestore.definitions import ValueType
from featurestore.definitions import market_definitions
from featurestore.definitions import validate_definitions
from featurestore.definitions.columns import LINEAGE_COLUMNS
from featurestore.definitions.columns import ROW_METADATA
from featurestore.definitions.problems import Problems
from featurestore.definitions.validate import check_source_schemas
from featurestore.errors import ConfigurationError
from featurestore.events import InMemorySchemaStore

MINUTE = timedelta(minutes=1)
DEFS = market_definitions()


def _stream(view: FeatureView) -> StreamComputation:
    assert view.stream is not None
    return view.stream


def _with_view(view: FeatureView, defs: Definitions = DEFS) -> Definitions:
    views = tuple(view if v.name == view.name else v for v in defs.views)
    if view.name not in {v.name for v in defs.views}:
        views = (*views, view)
    return replace(defs, views=views)


def _bars(**changes: Any) -> FeatureView:
    bars = DEFS.view("bars_1m")
    return replace(bars, stream=replace(_stream(bars), **changes))


def _agg0(**changes: Any) -> Definitions:
    stream = _stream(DEFS.view("bars_1m"))
    first = replace(stream.aggregations[0], **changes)
    return _with_view(_bars(aggregations=(first, *stream.aggregations[1:])))


def _source(**changes: Any) -> Definitions:
    """Every view of the trades topic with the same changed source."""
    defs = DEFS
    for name in [v.name for v in DEFS.views]:
        view = defs.view(name)
        stream = _stream(view)
        new = replace(stream, source=replace(stream.source, **changes))
        defs = _with_view(replace(view, stream=new), defs)
    return defs


_EVERY_VIEW = "feature views " + ", ".join(f"'{v.name}'" for v in DEFS.views)
"""How a problem of the source every view shares (:func:`_source`) names them."""


def _refused(defs: Definitions, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        validate_definitions(defs)


def test_the_store_s_definitions_pass() -> None:
    validate_definitions(DEFS)
    validate_definitions(market_definitions("p", table_prefix="x_", source_topic="tt"))


def test_an_aggregation_column_must_be_a_field_or_a_computed_column() -> None:
    _refused(
        _agg0(column="prise"),
        r"feature view 'bars_1m' aggregation 'open': column 'prise' is neither a field of the"
        r" source's Avro schema nor a computed column",
    )
    validate_definitions(_agg0(column="log_return"))  # a computed column
    validate_definitions(_agg0(column="size"))  # a field


def test_every_problem_is_reported_at_once_each_naming_its_view() -> None:
    rolling = DEFS.view("rolling_1m")
    first = replace(_stream(rolling).aggregations[0], column="prise")
    broken = _with_view(
        replace(rolling, stream=replace(_stream(rolling), aggregations=(first,))),
        _agg0(column="sighs"),
    )
    broken = replace(
        broken,
        services=(*broken.services, FeatureService("svc", (FeatureRef("bars_1m", "nope"),))),
    )
    with pytest.raises(ConfigurationError) as refused:
        validate_definitions(broken)
    lines = str(refused.value).splitlines()
    assert lines[0] == "3 problems:"
    assert re.match(r"  1\. feature view 'bars_1m' aggregation 'open': column 'sighs'", lines[1])
    assert re.match(r"  2\. feature view 'rolling_1m' aggregation '\w+': column 'prise'", lines[2])
    assert re.match(r"  3\. feature service 'svc': .*'nope'", lines[3])


@pytest.mark.parametrize(
    ("function", "column"),
    [
        (AggFunction.COUNT, "symbol"),
        (AggFunction.COUNT_DISTINCT, "trade_id"),
        (AggFunction.SUM, "trade_id"),
    ],
)
def test_an_aggregation_reads_a_numeric_field(function: AggFunction, column: str) -> None:
    """The processors decode what aggregations read as numbers: a record with a string there
    would be dead-lettered, every record of the topic."""
    _refused(
        _agg0(function=function, column=column),
        rf"feature view 'bars_1m' aggregation 'open': field '{column}' has Avro type string;"
        r" computed columns and aggregations read numeric fields only",
    )


def test_a_computed_column_reads_numeric_fields() -> None:
    _refused(
        _source(columns={"odd": "trade_id * 2"}),
        rf"^{_EVERY_VIEW} source 'trades' column 'odd': field 'trade_id' has Avro type string",
    )


def _typed(view: FeatureView, **types: ValueType) -> FeatureView:
    features = tuple(
        replace(f, value_type=types[f.name]) if f.name in types else f for f in view.features
    )
    return replace(view, features=features)


@pytest.mark.parametrize(
    ("changes", "feature", "message"),
    [
        ({}, "avg_trade_size", "mean of 'size' is not always a whole number"),
        ({}, "high", "max of 'price' is not always a whole number"),
        ({"column": "size", "function": AggFunction.MIN}, "open", "min of 'size' is null over"),
        ({"column": "size", "function": AggFunction.STD}, "open", "std of 'size' is not always"),
        ({"column": "notional", "function": AggFunction.SUM}, "open", "sum of 'notional'"),
        ({"column": "size", "function": AggFunction.MEDIAN}, "open", "median of 'size' is not"),
    ],
)
def test_an_int64_aggregation_is_a_whole_number_never_null(
    changes: dict[str, Any], feature: str, message: str
) -> None:
    stream = _stream(DEFS.view("bars_1m"))
    aggregations = (replace(stream.aggregations[0], **changes), *stream.aggregations[1:])
    view = _typed(_bars(aggregations=aggregations), **{feature: ValueType.INT64})
    _refused(
        _with_view(view),
        rf"feature view 'bars_1m' aggregation '{feature}': declared Int64, but {message}",
    )


def _with_whole_features(derived: str) -> Definitions:
    """bars_1m with whole-number aggregations typed Int64, and ``twice = derived`` too."""
    columns = _stream(DEFS.view("bars_1m")).source.columns
    defs = _source(columns={**columns, "lots": "size * 2 - 1"})
    bars = defs.view("bars_1m")
    stream = _stream(bars)
    view = replace(
        bars,
        stream=replace(
            stream,
            aggregations=(
                *stream.aggregations,
                Aggregation("price", AggFunction.COUNT_DISTINCT, MINUTE, MINUTE, "prices"),
                Aggregation("lots", AggFunction.SUM, MINUTE, MINUTE, "lots"),
            ),
            derived={**stream.derived, "twice": derived},
        ),
    )
    view = replace(
        view, features=(*view.features, *(Feature(n) for n in ("prices", "lots", "twice")))
    )
    whole = ("volume", "trade_count", "prices", "lots", "twice")
    return _with_view(_typed(view, **dict.fromkeys(whole, ValueType.INT64)), defs)


@pytest.mark.parametrize(
    "text",
    [
        "abs(-prices * 2 + volume) - lots * trade_count",
        "when(prices > 2, lots, volume)",
        "coalesce(when(lots > 0, lots), trade_count, 0)",
    ],
)
def test_int64_holds_counts_and_sums_of_whole_numbers(text: str) -> None:
    validate_definitions(_with_whole_features(text))


@pytest.mark.parametrize(
    "text",
    [
        "prices / 2", "prices * 0.5", "sqrt(prices)", "prices * 1e300", "lots + avg_trade_size",
        "when(prices > 2, lots, 0.5)", "coalesce(lots, prices / 2)",
    ],
)  # fmt: skip
def test_an_int64_derived_feature_is_a_whole_number(text: str) -> None:
    _refused(
        _with_whole_features(text),
        rf"feature view 'bars_1m' derived feature 'twice': declared Int64, but"
        rf" {re.escape(repr(text))} is not always a whole number",
    )


def test_a_stream_view_s_features_are_numbers() -> None:
    _refused(
        _with_view(_typed(DEFS.view("bars_1m"), open=ValueType.STRING)),
        r"feature view 'bars_1m': feature 'open' has type String; the aggregations and derived"
        r" features of a stream view are Float64 or Int64",
    )


@pytest.mark.parametrize(
    "name",
    [
        *ROW_METADATA,
        "event_timestamp",
        "created_timestamp",
        *(column for column, _ in LINEAGE_COLUMNS),
    ],
)
def test_a_feature_may_not_take_the_name_of_a_row_column(name: str) -> None:
    """The processors' rows and the offline tables have these columns besides the features."""
    stream = _stream(DEFS.view("bars_1m"))
    first = replace(stream.aggregations[0], name=name)
    view = _bars(aggregations=(first, *stream.aggregations[1:]))
    view = replace(view, features=(Feature(name), *view.features[1:]))
    _refused(
        _with_view(view),
        rf"feature view 'bars_1m': feature '{name}' has the name of a column every row has"
        r" besides its features",
    )


def _keyed(*entities: str, name: str = "bars_1m", defs: Definitions = DEFS) -> Definitions:
    return _with_view(replace(defs.view(name), entities=entities), defs)


def test_the_views_of_one_topic_are_keyed_by_one_same_entity() -> None:
    other = Entity("ticker", "ticker")
    defs = replace(DEFS, entities=(*DEFS.entities, other))
    topic = _stream(DEFS.view("bars_1m")).source.topic
    _refused(
        _keyed("ticker", name="rolling_1m", defs=defs),
        rf"feature view 'rolling_1m' \(topic '{topic}'\): keyed by entity 'ticker', but the"
        r" topic's views are keyed by 'symbol' \(as 'bars_1m' is\)",
    )
    _refused(
        _keyed("symbol", "ticker", defs=defs),
        r"feature view 'bars_1m' .*: a stream feature view is keyed by exactly one entity"
        r" \(it names: 'symbol', 'ticker'\)",
    )
    _refused(_keyed(), r"feature view 'bars_1m' .*exactly one entity \(it names: none\)")
    _refused(_keyed("__dummy"), r"feature view 'bars_1m' .*exactly one entity \(it names: none\)")
    chained = replace(_chained("rolling_5m", "rolling_1m"), entities=("ticker",))
    _refused(
        _with_view(chained, defs),
        r"feature view 'rolling_5m' .*: keyed by entity 'ticker', but the topic's views are keyed"
        r" by 'symbol'",
    )


@pytest.mark.parametrize(
    ("window", "slide", "message"),
    [
        (timedelta(seconds=90), MINUTE, r"window 0:01:30 is not a positive multiple of the tile"),
        (MINUTE, timedelta(0), r"slide 0:00:00 is not a positive multiple of the tile"),
        (-MINUTE, MINUTE, r"window -0:01:00 is not a positive multiple"),
    ],
)
def test_windows_and_slides_are_positive_multiples_of_the_tile(
    window: timedelta, slide: timedelta, message: str
) -> None:
    _refused(
        _agg0(window=window, slide=slide), rf"feature view 'bars_1m' aggregation 'open': {message}"
    )


def test_a_running_view_slides_by_its_tile() -> None:
    _refused(
        _agg0(window=2 * MINUTE, slide=2 * MINUTE),
        r"feature view 'bars_1m' aggregation 'open': slide 0:02:00 differs from the tile",
    )
    stream = _stream(DEFS.view("bars_1m"))
    validate_definitions(_with_view(_bars(running=False, aggregations=stream.aggregations)))


def test_derived_features_parse_and_read_only_aggregates() -> None:
    _refused(
        _with_view(_bars(derived={"vwap": "notional / volumes"})),
        r"feature view 'bars_1m' derived feature 'vwap': unknown aggregate 'volumes'",
    )
    _refused(
        _with_view(_bars(derived={"vwap": "notional // volume"})),
        r"feature view 'bars_1m' derived feature 'vwap': cannot parse 'notional // volume'",
    )
    _refused(
        _with_view(_bars(derived={"vwap": "notional / prev(volume)"})),
        r"feature view 'bars_1m' derived feature 'vwap': .*prev\(\) is allowed in source columns",
    )
    _refused(
        _with_view(_bars(derived={"vwap": "price / volume"})),  # a field, not an aggregate
        r"feature view 'bars_1m' derived feature 'vwap': unknown aggregate 'price'",
    )


def test_computed_columns_parse_and_read_fields_or_earlier_columns() -> None:
    _refused(
        _source(columns={"notional": "price * size", "log_return": "ln(price / prev(prize))"}),
        rf"^{_EVERY_VIEW} source 'trades' column 'log_return': 'prize' is neither a"
        r" field of the Avro schema nor an earlier column",
    )
    _refused(
        _source(columns={"log_return": "ln(price / prev(price))", "notional": "price * * size"}),
        rf"^{_EVERY_VIEW} source 'trades' column 'notional': cannot parse",
    )
    _refused(
        _source(columns={"notional": "double * 2", "double": "price * size"}),
        r"column 'notional': 'double' is neither a field of the Avro schema nor an earlier column",
    )
    _refused(
        _source(columns={"notional": "price * size", "log_return": "1", "price": "2"}),
        r"source 'trades' column 'price': a field of the Avro schema has this name",
    )


def test_the_source_s_schema_and_named_fields() -> None:
    _refused(_source(avro_schema=""), rf"^{_EVERY_VIEW} source 'trades': no Avro schema")
    _refused(_source(avro_schema="{"), rf"^{_EVERY_VIEW} source 'trades': invalid Avro")
    _refused(
        _source(entity_field="ticker"),
        rf"^{_EVERY_VIEW} source 'trades': entity_field 'ticker' is not a field",
    )
    _refused(_source(timestamp_field="ts"), r"source 'trades': timestamp_field 'ts' is not a field")
    _refused(_source(id_field="uid"), r"source 'trades': id_field 'uid' is not a field")
    validate_definitions(_source(id_field=None))


def test_the_schema_lists_exactly_the_aggregations_and_derived_features() -> None:
    bars = DEFS.view("bars_1m")
    _refused(
        _with_view(replace(bars, features=bars.features[:-1])),
        r"feature view 'bars_1m': its schema must list each aggregation and derived feature"
        r" once \(not in the schema: \['notional'\]; neither aggregated nor derived: none",
    )
    extra = replace(bars.features[0], name="spread")
    _refused(
        _with_view(replace(bars, features=(*bars.features, extra))),
        r"neither aggregated nor derived: \['spread'\]",
    )
    _refused(
        _with_view(replace(bars, features=(*bars.features, bars.features[0]))),
        r"listed twice: \['open'\]",
    )


def _chained(
    name: str, upstream: str, *, column: str = "volume_1m", running: bool = False, topic: str = ""
) -> FeatureView:
    """A view summing ``column`` of ``upstream``'s rows over 5 minutes."""
    rolling = DEFS.view("rolling_1m")
    stream = _stream(rolling)
    source = replace(stream.source, topic=topic) if topic else stream.source
    agg = Aggregation(column, AggFunction.SUM, 5 * MINUTE, 5 * MINUTE, "volume_5m_of_bars")
    return replace(
        rolling,
        name=name,
        features=(Feature("volume_5m_of_bars"),),
        stream=replace(
            stream, source=source, aggregations=(agg,), derived={}, upstream=upstream,
            running=running,
        ),
    )  # fmt: skip


def test_a_view_chained_from_a_window_end_view_of_its_source_is_accepted() -> None:
    validate_definitions(_with_view(_chained("rolling_5m", "rolling_1m")))
    five = _with_view(_chained("rolling_5m", "rolling_1m"))
    validate_definitions(
        _with_view(_chained("rolling_25m", "rolling_5m", column="volume_5m_of_bars"), five)
    )


def test_the_last_n_tiles_need_window_end_rows() -> None:
    _refused(
        _agg0(last_tiles=3),
        r"feature view 'bars_1m' aggregation 'open': 'the last 3 tiles' needs window-end rows",
    )
    rolling = DEFS.view("rolling_1m")
    stream = _stream(rolling)
    sma = replace(stream.aggregations[-1], last_tiles=20)
    validate_definitions(
        _with_view(
            replace(rolling, stream=replace(stream, aggregations=(*stream.aggregations[:-1], sma)))
        )
    )


def test_bad_chains_are_refused_naming_the_view() -> None:
    a, b = _chained("a", "b"), _chained("b", "a")
    _refused(_with_view(b, _with_view(a)), r"feature views form a cycle: a -> b -> a")
    _refused(_with_view(_chained("a", "a")), r"feature views form a cycle: a -> a")
    _refused(
        _with_view(_chained("c", "nope")),
        r"feature view 'c' tag 'featurestore.source_view': 'nope' is not a stream feature view",
    )
    _refused(
        _with_view(_chained("c", "bars_1m")),
        r"feature view 'c' tag 'featurestore.source_view': 'bars_1m' has running rows",
    )
    _refused(
        _with_view(_chained("c", "rolling_1m", running=True)),
        r"feature view 'c': a chained view has rows at its window ends",
    )
    _refused(
        _with_view(_chained("c", "rolling_1m", column="price")),
        r"feature view 'c' aggregation 'volume_5m_of_bars': column 'price' is not a numeric"
        r" feature of its upstream view 'rolling_1m'",
    )
    _refused(
        _with_view(_chained("c", "rolling_1m", topic="other")),
        r"feature view 'c' tag 'featurestore.source_view': 'rolling_1m' reads topic 'trades',"
        r" not 'other'",
    )


def test_the_views_of_one_topic_share_one_source_and_tile() -> None:
    stream = _stream(DEFS.view("bars_1m"))
    other = replace(stream.source, watermark_delay=timedelta(seconds=9))
    _refused(
        _with_view(_bars(source=other)),
        r"feature view '\w+' source: it reads topic 'trades' like 'bars_1m', but declares"
        r" its source differently",
    )
    rolling = DEFS.view("rolling_1m")
    half = replace(rolling, stream=replace(_stream(rolling), tile=timedelta(seconds=30)))
    _refused(
        _with_view(half),
        r"feature view 'rolling_1m' tile: 0:00:30 differs from the tile of 'bars_1m' \(0:01:00\)",
    )


def test_reserved_tags_duplicate_views_and_services() -> None:
    bars = DEFS.view("bars_1m")
    _refused(
        _with_view(replace(bars, tags={"featurestore.rows": "running"})),
        r"feature view 'bars_1m': tag 'featurestore.rows' is reserved",
    )
    _refused(replace(DEFS, views=(*DEFS.views, bars)), r"two feature views are called 'bars_1m'")
    bad = FeatureService("svc", (FeatureRef("bars_1m", "nope"),))
    _refused(
        replace(DEFS, services=(bad,)),
        r"feature service 'svc': feature view 'bars_1m' has no feature 'nope'",
    )


def test_a_topic_needs_a_schema_in_the_schema_registry() -> None:
    store = InMemorySchemaStore()
    with pytest.raises(
        ConfigurationError,
        match=r"feature view 'bars_1m' source 'trades': topic 'trades' has no schema in the"
        r" schema registry \(subject 'trades-value'\); a producer registers it with its first"
        r" record \(Confluent's Avro serializer; `featurestore ingest metrics --topic trades`",
    ):
        check_source_schemas(DEFS, store)
    store.register("trades-value", _stream(DEFS.view("bars_1m")).source.avro_schema)
    check_source_schemas(DEFS, store)


def test_apply_refuses_before_touching_postgres_or_feast() -> None:
    nowhere = load_settings({"FEATURESTORE_POSTGRES__PORT": "1"})  # would be unreachable
    with pytest.raises(ConfigurationError, match="has no schema in the schema registry"):
        apply_definitions(nowhere, DEFS, schema_store=InMemorySchemaStore())
    with pytest.raises(ConfigurationError, match="column 'prise'"):
        apply_definitions(nowhere, _agg0(column="prise"), schema_store=InMemorySchemaStore())


def test_a_change_that_reinterprets_stored_rows_is_refused_naming_view_and_field() -> None:
    from dataclasses import replace as _replace
    from datetime import timedelta as _td

    from featurestore.definitions import market_definitions
    from featurestore.definitions.model import Feature
    from featurestore.definitions.model import ValueType
    from featurestore.definitions.validate import check_changes

    before = market_definitions()
    check_changes(None, before)
    check_changes(before, before)
    rolling = before.view("rolling_1m")
    assert rolling.stream is not None
    longer = tuple(
        _replace(a, window=_td(minutes=10)) if a.name == "sma_5" else a
        for a in rolling.stream.aggregations
    )
    changed = _replace(rolling, stream=_replace(rolling.stream, aggregations=longer))
    after = _replace(before, views=(before.view("bars_1m"), changed))
    with pytest.raises(ConfigurationError, match="'rolling_1m': aggregation sma_5 changes"):
        check_changes(before, after)
    bars = before.view("bars_1m")
    retyped = _replace(
        bars,
        features=tuple(
            Feature(f.name, ValueType.FLOAT64) if f.name == "trade_count" else f
            for f in bars.features
        ),
    )
    with pytest.raises(ConfigurationError, match="'bars_1m': feature trade_count type"):
        check_changes(before, _replace(before, views=(retyped, rolling)))
    # A new view, a removed view and a new TTL are fine.
    check_changes(before, _replace(before, views=(_replace(bars, ttl=_td(0)),)))
    check_changes(before, _replace(before, views=(bars, rolling, _replace(rolling, name="r_v2"))))


def test_a_feature_type_without_an_offline_column_is_refused() -> None:
    from featurestore.definitions import ValueType

    defs = market_definitions()
    view = defs.views[0]
    bad = replace(view, features=(*view.features, Feature("raw", ValueType.BYTES)))
    with pytest.raises(ConfigurationError, match="type Bytes, which the offline tables cannot"):
        validate_definitions(replace(defs, views=(bad, *defs.views[1:])))


def test_a_cycle_of_computed_columns_is_called_one() -> None:
    _refused(
        _source(columns={"ca": "cb + 1", "cb": "ca * 2"}),
        r"source 'trades' column 'ca': the computed columns form a cycle: ca -> cb -> ca",
    )


def _with_columns(**columns: str) -> Definitions:
    """The trades source with ``columns`` added to its own."""
    source = _stream(DEFS.view("bars_1m")).source
    return _source(columns={**source.columns, **columns})


def test_a_string_field_is_compared_with_texts() -> None:
    defs = _with_columns(ibm="when(symbol == 'IBM' and price > 0, size)", not_ibm="'IBM' != symbol")
    validate_definitions(defs)
    _refused(
        _with_columns(odd="when(symbol == 'IBM', symbol)"),
        r"column 'odd': field 'symbol' has Avro type string; computed columns and aggregations"
        r" read numeric fields only",
    )


@pytest.mark.parametrize(
    ("text", "what"),
    [("when(price == 'x', 1)", "double"), ("when(notional != 'x', 1)", "a computed column")],
)
def test_only_a_string_field_is_compared_with_a_text(text: str, what: str) -> None:
    _refused(
        _with_columns(odd=text),
        rf"column 'odd': '\w+' is compared with a text, but it is {what}; texts are compared"
        r" with string fields of the Avro schema only",
    )


def test_prev_nonnull_reads_a_number_declared_before() -> None:
    validate_definitions(
        _with_columns(big="when(size >= 100, price)", jump="big - prev_nonnull(big)")
    )
    _refused(
        _with_columns(jump="price - prev_nonnull(prize)"),
        r"column 'jump': 'prize' is neither a field of the Avro schema nor an earlier column",
    )
    _refused(
        _with_columns(odd="prev_nonnull(symbol)"),
        r"column 'odd': field 'symbol' has Avro type string; computed columns and aggregations"
        r" read numeric fields only",
    )
    _refused(
        _with_view(_bars(derived={"vwap": "notional / prev_nonnull(volume)"})),
        r"derived feature 'vwap': .*prev_nonnull\(\) is allowed in source columns",
    )


def test_a_derived_feature_compares_no_text() -> None:
    _refused(
        _with_view(_bars(derived={"vwap": "when(volume == 'x', notional / volume)"})),
        r"feature view 'bars_1m' derived feature 'vwap': compares 'volume' with a text; derived"
        r" features read the view's aggregates",
    )


def test_a_column_added_for_another_view_reinterprets_nothing() -> None:
    from featurestore.definitions.validate import check_changes

    added = _with_columns(big="when(size >= 10000, size)")
    check_changes(DEFS, added)
    with pytest.raises(ConfigurationError, match="'bars_1m': column notional changes"):
        check_changes(DEFS, _with_columns(notional="price * size / 100"))


def test_one_mistake_found_in_several_views_is_one_problem_naming_them() -> None:
    """A computed column of a source function reaches every view built with it: one mistake."""
    problems = Problems()
    for view in ("bars_1m", "flow_1m", "rolling_1m"):
        with problems.each():
            raise ConfigurationError(f"feature view {view!r} source 'trades' column 'c': bad 'x'")
    with problems.each():
        raise ConfigurationError("feature view 'flow_1m' aggregation 'a': column 'y' unknown")
    with problems.each():
        raise ConfigurationError("feature service 'svc': no feature 'z'")
    with pytest.raises(ConfigurationError) as refused:
        problems.raise_any()
    assert str(refused.value).splitlines() == [
        "3 problems:",
        "  1. feature views 'bars_1m', 'flow_1m', 'rolling_1m' source 'trades' column 'c': bad 'x'",
        "  2. feature view 'flow_1m' aggregation 'a': column 'y' unknown",
        "  3. feature service 'svc': no feature 'z'",
    ]

    tiles = Problems()  # a view's own field: the name, then a colon
    for view in ("bars_1m", "rolling_1m"):
        with tiles.each():
            raise ConfigurationError(f"feature view {view!r}: tiling_hop_size is not set")
    with pytest.raises(
        ConfigurationError, match=r"^feature views 'bars_1m', 'rolling_1m': tiling_hop_size is not"
    ):
        tiles.raise_any()

    alone = Problems()
    for view in ("bars_1m", "rolling_1m"):
        with alone.each():
            raise ConfigurationError(f"feature view {view!r} source 'trades': topic 't' missing")
    with pytest.raises(
        ConfigurationError,
        match=r"^feature views 'bars_1m', 'rolling_1m' source 'trades': topic 't' missing$",
    ):
        alone.raise_any()

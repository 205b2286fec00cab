"""registry/ and the codec: Feast objects <-> domain definitions, through Feast's SQL registry."""

from __future__ import annotations

import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from featurestore.cli.registry import describe
from featurestore.definitions import PROJECT
from featurestore.definitions import REPO_PATH
from featurestore.definitions import AggFunction
from featurestore.definitions import Aggregation
from featurestore.definitions import Definitions
from featurestore.definitions import Entity
from featurestore.definitions import Feature
from featurestore.definitions import FeatureRef
from featurestore.definitions import FeatureService
from featurestore.definitions import FeatureView
from featurestore.definitions import SourceTable
from featurestore.definitions import StreamComputation
from featurestore.definitions import StreamSource
from featurestore.definitions import ValueType
from featurestore.definitions import load_repo
from featurestore.definitions import market_definitions
from featurestore.definitions import stream_definitions
from featurestore.definitions.changes import diff_definitions
from featurestore.definitions.feast_codec import from_feast
from featurestore.definitions.feast_codec import to_feast_objects
from featurestore.definitions.registry import read_registry
from featurestore.definitions.registry import register_objects
from featurestore.definitions.repo import read_repo
from featurestore.errors import ConfigurationError
from featurestore.errors import NotFoundError
from featurestore.online.catalog import catalog_from_definitions
from featurestore.online.catalog import catalog_from_feast

SCHEMA = (
    '{"type": "record", "name": "Tick", "fields": [{"name": "key", "type": "string"},'
    ' {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},'
    ' {"name": "x", "type": "double"}]}'
)


def _small() -> Definitions:
    """Definitions unlike the store's: a plain view, chained columns, no id, 0 lateness, a view
    chained from another."""
    source = StreamSource(
        name="ticks",
        topic="ticks-topic",
        timestamp_field="ts",
        entity_field="key",
        watermark_delay=timedelta(0),
        columns={"dx": "x - prev(x)", "dx2": "dx * dx", "a": "abs(dx2)"},
        avro_schema=SCHEMA,
    )
    minute = timedelta(minutes=1)
    stream = StreamComputation(
        source=source,
        aggregations=(
            Aggregation("x", AggFunction.COUNT_DISTINCT, 2 * minute, minute, "distinct_x"),
            Aggregation("dx2", AggFunction.VAR, 4 * minute, 2 * minute, "var_dx"),
        ),
        derived={"ratio": "var_dx / (distinct_x + 1)"},
        tile=minute,
    )
    key = Entity("key", "key", ValueType.STRING, "a key")
    computed = FeatureView(
        name="ticks_w",
        entities=("key",),
        features=(
            Feature("ratio", ValueType.FLOAT64, "a ratio"),
            Feature("distinct_x", ValueType.INT64),
            Feature("var_dx"),
        ),
        ttl=timedelta(0),
        source=SourceTable("t_ticks_w", partition_interval="day"),
        tags={"owner": "me"},
        description="ticks",
        stream=stream,
    )
    plain = FeatureView(
        name="labels",
        entities=("key",),
        features=(Feature("flag", ValueType.BOOL), Feature("name", ValueType.STRING)),
        ttl=timedelta(hours=2),
        source=SourceTable("other.labels"),
        tags={"source_topic": "x"},
    )
    chained = FeatureView(
        name="ticks_10m",
        entities=("key",),
        features=(Feature("max_var_dx_10m"),),
        ttl=timedelta(0),
        source=SourceTable("t_ticks_10m"),
        stream=replace(
            stream,
            aggregations=(
                Aggregation(
                    "var_dx", AggFunction.MAX, 10 * minute, 10 * minute, "max_var_dx_10m", 3
                ),
            ),
            derived={},
            upstream="ticks_w",
        ),
    )
    service = FeatureService(
        "svc", (FeatureRef("ticks_w", "var_dx"), FeatureRef("labels", "flag")), {"m": "1"}, "s"
    )
    return Definitions("small", (key,), (plain, chained, computed), (service,))


def _through_registry(make_store: Callable[[str], Any], objects: list[Any], project: str) -> Any:
    store = make_store(project)
    register_objects(store, objects)
    return read_registry(store.registry, project)


def test_the_registry_folder_defines_the_stream_views() -> None:
    defs = load_repo()
    assert defs.project == PROJECT
    bars, rolling = defs.view("bars_1m"), defs.view("rolling_1m")
    assert bars.stream is not None and rolling.stream is not None
    assert bars.stream.source == rolling.stream.source  # one stream for the processors
    source = bars.stream.source
    assert (source.name, source.topic, source.timestamp_field) == ("trades", "trades", "event_time")
    assert (source.entity_field, source.id_field) == ("symbol", "trade_id")
    assert source.watermark_delay == timedelta(seconds=5)
    assert source.fields == ("symbol", "price", "size", "event_time", "trade_id")
    assert dict(source.columns) == {
        "notional": "price * size",
        "log_return": "ln(price / prev(price))",
    }
    assert bars.stream.running and not rolling.stream.running
    assert bars.stream.tile == rolling.stream.tile == timedelta(minutes=1)
    assert (bars.source.table, rolling.source.table) == ("bars_1m", "rolling_1m")
    assert rolling.stream.derived["volume_ratio"] == "volume_1m / (volume_20m / 20)"
    by_name = {a.name: a for a in rolling.stream.aggregations}
    assert by_name["realized_vol_15m"] == Aggregation(
        "log_return",
        AggFunction.STD,
        timedelta(minutes=15),
        timedelta(minutes=1),
        "realized_vol_15m",
    )
    assert all(f.description for v in defs.views for f in v.features)
    assert "5 bars" not in " ".join(f.description for f in rolling.features)


def test_feast_apply_and_registry_apply_collect_the_same_objects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from feast.repo_operations import parse_repo

    monkeypatch.chdir(REPO_PATH)  # feast apply imports the files relative to the repo
    monkeypatch.syspath_prepend(str(REPO_PATH))
    names = ("entities", "trades", "services")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # "experimental" stream views
            contents = parse_repo(REPO_PATH)
        feast_defs = from_feast(
            PROJECT,
            contents.entities,
            [*contents.feature_views, *contents.stream_feature_views],
            contents.feature_services,
        )
        repo = read_repo(REPO_PATH)
        assert repo.definitions == feast_defs
        assert {(type(o).__name__, o.name) for o in repo.data_sources} == {
            (type(o).__name__, o.name) for o in contents.data_sources
        }
    finally:
        for name in names:
            sys.modules.pop(name, None)


@pytest.mark.slow
def test_feast_s_own_cli_applies_the_registry_folder(tmp_path: Path) -> None:
    """`feast apply` on a copy of registry/ (SQLite SQL registry) reads back as load_repo."""
    from feast import FeatureStore

    repo = tmp_path / "repo"
    repo.mkdir()
    for file in REPO_PATH.glob("*.py"):
        shutil.copy(file, repo)
    config = {
        "project": PROJECT,
        "provider": "local",
        "entity_key_serialization_version": 3,
        "registry": {
            "registry_type": "sql",
            "path": f"sqlite:///{tmp_path / 'registry.db'}",
            "cache_ttl_seconds": 0,
        },
        "offline_store": {
            "type": "postgres",
            "host": "127.0.0.1",
            "port": 1,
            "database": "x",
            "user": "x",
            "password": "x",
        },
        "online_store": {"type": "redis", "connection_string": "127.0.0.1:1"},
    }
    (repo / "feature_store.yaml").write_text(yaml.safe_dump(config))
    feast = Path(sys.executable).parent / "feast"
    done = subprocess.run(
        [str(feast), "apply"], cwd=repo, capture_output=True, text=True, timeout=240, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    store = FeatureStore(repo_path=str(repo))
    assert read_registry(store.registry, PROJECT) == load_repo()


def test_registry_folder_round_trips_through_the_sql_registry(
    sqlite_store: Callable[[str], Any],
) -> None:
    repo = read_repo()
    assert _through_registry(sqlite_store, repo.objects, PROJECT) == repo.definitions


@pytest.mark.parametrize(
    "defs",
    [
        market_definitions("p1", table_prefix="x_", source_topic="tt", ttl=timedelta(0)),
        market_definitions("p2", partition_interval="day"),
        _small(),
    ],
    ids=["market-prefixed", "market-day", "small"],
)
def test_domain_to_feast_to_registry_to_domain_is_the_identity(
    sqlite_store: Callable[[str], Any], defs: Definitions
) -> None:
    objects = to_feast_objects(defs, kafka_bootstrap="broker:9092")
    assert _through_registry(sqlite_store, objects, defs.project) == defs


def test_computed_columns_come_back_after_the_columns_they_read() -> None:
    defs = _small()
    back = from_feast(defs.project, *_split(to_feast_objects(defs)))
    stream = back.view("ticks_w").stream
    assert stream is not None and list(stream.source.columns) == ["dx", "dx2", "a"]


def _split(objects: list[Any]) -> tuple[list[Any], list[Any], list[Any]]:
    from feast import Entity as FeastEntity
    from feast import FeatureService as FeastService
    from feast import FeatureView as FeastView  # stream views are ones too

    def of(kind: type) -> list[Any]:
        return [o for o in objects if isinstance(o, kind)]

    return of(FeastEntity), of(FeastView), of(FeastService)


def test_apply_replaces_a_plain_view_by_a_stream_view_and_drops_what_is_gone(
    sqlite_store: Callable[[str], Any],
) -> None:
    new = market_definitions("upgrade")
    old_views = tuple(replace(v, stream=None, tags={"kind": "old"}) for v in new.views)
    extra = FeatureService("old_service", (FeatureRef("bars_1m", "open"),))
    old = replace(new, views=old_views, services=(*new.services, extra))
    assert _through_registry(sqlite_store, to_feast_objects(old), "upgrade") == old
    assert _through_registry(sqlite_store, to_feast_objects(new), "upgrade") == new


def test_market_definitions_adapt_the_trade_views_of_the_registry_folder() -> None:
    base = load_repo()
    defs = market_definitions("p", table_prefix="x_", source_topic="tt", ttl=timedelta(0))
    trades = [v for v in base.views if v.stream is not None and v.stream.source.name == "trades"]
    assert market_definitions().views == tuple(trades)
    assert [v.name for v in defs.views] == [
        "bars_1m",
        "ohlcv_1h",
        "ohlcv_1m",
        "ohlcv_5m",
        "rolling_1m",
    ]
    for view in defs.views:
        original = base.view(view.name)
        assert view.source.table == f"x_{original.source.table}"
        assert view.stream is not None and view.stream.source.topic == "tt"
        assert view.ttl == timedelta(0) and view.features == original.features
    assert [e.name for e in defs.entities] == ["symbol"]
    assert {s.name for s in defs.services} == {
        "market_features_v1", "anomaly_features_v1", "direction_features_v1",
    }  # fmt: skip
    assert defs.project == "p"


def test_stream_definitions_rename_each_stream_to_its_topic() -> None:
    base = load_repo()
    defs = stream_definitions(
        {"quotes": "q-topic", "metrics": "m-topic"}, "p", table_prefix="x_", ttl=timedelta(0)
    )
    assert [v.name for v in defs.views] == ["metric_rolling_1m", "quotes_1m"]
    topics = {v.name: v.stream.source.topic for v in defs.views if v.stream is not None}
    assert topics == {"metric_rolling_1m": "m-topic", "quotes_1m": "q-topic"}
    assert all(v.source.table == f"x_{base.view(v.name).source.table}" for v in defs.views)
    assert [e.name for e in defs.entities] == ["metric_entity", "symbol"]
    assert [s.name for s in defs.services] == ["metric_features_v1", "quote_features_v1"]
    everything = stream_definitions({"trades": "trades", "quotes": "quotes", "metrics": "metrics"})
    assert everything == base
    with pytest.raises(ConfigurationError, match="registry/ has no stream 'quote'"):
        stream_definitions({"quote": "q"})


FEAST_CHAINED = """
from datetime import timedelta

from feast import StreamFeatureView
from feast.aggregation import Aggregation
from feast.infra.offline_stores.contrib.postgres_offline_store.postgres_source import (
    PostgreSQLSource,
)

rolling_5m = StreamFeatureView(
    name="rolling_5m",
    source=rolling_1m,
    sink_source=PostgreSQLSource(
        name="rolling_5m", table="rolling_5m", timestamp_field="event_timestamp"
    ),
    entities=[symbol],
    schema=[Field(name="volume_5m_of_bars", dtype=Float64)],
    aggregations=[
        Aggregation(
            column="volume_1m", function="sum", time_window=timedelta(minutes=5),
            name="volume_5m_of_bars",
        )
    ],
    timestamp_field="event_time",
    tiling_hop_size=timedelta(minutes=1),
)
"""
"""Feast's own form of chaining, which its registry does not keep."""

FEAST_UDF = """
from datetime import timedelta

from feast.stream_feature_view import stream_feature_view


@stream_feature_view(
    entities=[symbol],
    ttl=timedelta(hours=1),
    mode="pandas",
    timestamp_field="event_time",
    source=trades_source("lots_1m"),
    schema=[Field(name="symbol", dtype=String), Field(name="lots_5m", dtype=Float64)],
    aggregations=[per_minute("lots_5m", "sum", "size", 5)],
)
def lots_1m(df):
    df["size"] = df["size"] / 100
    return df
"""
"""Feast's own form of a transformation (a udf), which the store would not run."""


def _write_repo(folder: Path, trades: str) -> Path:
    text = (REPO_PATH / "trades.py").read_text()
    folder.mkdir()
    for module in ("entities.py", "streams.py"):  # what trades.py imports
        (folder / module).write_text((REPO_PATH / module).read_text())
    (folder / "trades.py").write_text(trades.format(original=text))
    return folder


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            '{original}\nbars_1m.aggregations[0].function = "mode"\n',
            r"feature view 'bars_1m' aggregation 'open': unsupported aggregation function 'mode'",
        ),
        (
            '{original}\nbars_1m.tags["featurestore.derive.vwap"] = "notional / volume"\n',
            r"feature view 'bars_1m': unknown tag 'featurestore.derive.vwap'",
        ),
        (
            '{original}\nbars_1m.tags["featurestore.rows"] = "always"\n',
            r"feature view 'bars_1m': tag 'featurestore.rows' is 'always'",
        ),
        (
            '{original}\nbars_1m.stream_source.tags.pop("featurestore.entity_field")\n',
            r"feature view 'bars_1m' source 'trades': tag 'featurestore.entity_field'",
        ),
        (
            '{original}\nbars_1m.timestamp_field = "event_timestamp"\n',
            r"feature view 'bars_1m': timestamp_field 'event_timestamp' differs from its source's",
        ),
        (
            "{original}\nbars_1m.tiling_hop_size = None\n",
            r"feature view 'bars_1m': tiling_hop_size",
        ),
        (
            '{original}\nbars_1m.tags["featurestore.features"] = "open,high,open"\n',
            r"feature view 'bars_1m': 'open' listed twice \(in its schema, or its tag"
            r" 'featurestore.features'\)",
        ),
        (
            '{original}\nbars_1m.tags["featurestore.features"] = "open,high"\n',
            r"feature view 'bars_1m': tag 'featurestore.features' lists \['open', 'high'\], but",
        ),
        (
            "{original}\nraise ValueError('broken')\n",
            r"registry file .*trades.py, line \d+: ValueError: broken",
        ),
        (
            '{original}\nrolling_1m.tags["featurestore.last_tiles.sma_20"] = "0"\n',
            r"feature view 'rolling_1m' aggregation 'sma_20': tag 'featurestore.last_tiles.sma_20'"
            r" is '0', not a positive whole number of tiles",
        ),
        (
            '{original}\nrolling_1m.tags["featurestore.last_tiles.sma_20"] = "\u00b2"\n',
            r"feature view 'rolling_1m' aggregation 'sma_20': tag 'featurestore.last_tiles.sma_20'"
            r" is '\u00b2', not a positive whole number of tiles",
        ),
        (
            '{original}\nrolling_1m.tags["featurestore.last_tiles.nope"] = "3"\n',
            r"feature view 'rolling_1m': tag 'featurestore.last_tiles.nope' names no aggregation",
        ),
        (
            "{original}\n" + FEAST_CHAINED,
            r"feature view 'rolling_5m': source is the feature view rolling_1m, which Feast's"
            r" registry does not keep; declare the upstream view's KafkaSource as source and tag"
            r" 'featurestore.source_view'",
        ),
        (
            "{original}\n" + FEAST_UDF,
            r"^feature view 'lots_1m': a udf \(Feast's transformation of the stream's rows\) is"
            r" not run by this store; declare what it computes as computed columns of the source"
            r" \(tag 'featurestore.column.<name>'",
        ),
        (
            '{original}\nrolling_1m.udf = lambda df: df.assign(size=df["size"] * 2)\n',
            r"^feature view 'rolling_1m': a udf",
        ),
        (
            '{original}\nbars_1m.stream_source.field_mapping = {{"px": "price"}}\n',
            r"^feature view 'bars_1m' source 'trades': field_mapping \{'px': 'price'\}"
            r" is not applied: the processors read the Avro fields by name; declare a renamed"
            r" field as a computed column \(tag 'featurestore.column.price' = 'px'\)",
        ),
        (
            "{original}\nfrom feast import FeatureService\nsvc = FeatureService(\n    name='svc',"
            "\n    features=[rolling_1m[['vwap_5m']].with_name('r')],\n)\n",
            r"^feature service 'svc': feature view 'rolling_1m' is renamed 'r' \(with_name\),"
            r" which this store does not serve",
        ),
        (
            "{original}\nfrom feast import FeatureService\nsvc = FeatureService(\n    name='svc',"
            "\n    features=[rolling_1m.with_join_key_map({{'symbol': 'ticker'}})],\n)\n",
            r"^feature service 'svc': feature view 'rolling_1m' maps its join keys"
            r" \{'symbol': 'ticker'\} \(with_join_key_map\), which this store does not serve",
        ),
        (
            "{original}\nfrom feast import FeatureService\nsvc = FeatureService(\n    name='svc',"
            "\n    features=['rolling_1m@v2:vwap_5m'],\n)\n",
            r"^feature service 'svc': 'rolling_1m@v2:vwap_5m' pins a version of a feature view,"
            r" which this store does not keep",
        ),
        (
            "{original}\nfrom feast import FeatureService\nsvc = FeatureService(\n    name='svc',"
            "\n    features=['rolling_2m'],\n)\n",
            r"^feature service 'svc': 'rolling_2m' names no feature view",
        ),
        (
            "{original}\nbars_1m.version = 'v2'\n",
            r"^feature view 'bars_1m': version 'v2': this store keeps one version of a view",
        ),
        ("{original}\nother = bars_1m.__copy__()\nother.name = 'x'\n", None),
        (
            "{original}\nfrom feast import FeatureService\nsvc = FeatureService(\n    name='svc',"
            "\n    features=[rolling_1m[['vwap_5m', 'nope']]],\n)\n",
            r"registry file .*trades.py, line \d+: feature service 'svc' names feature 'nope' of"
            r" feature view 'rolling_1m', which has no such feature \(it has: vwap_5m, ",
        ),
    ],
    ids=[
        "function",
        "tag",
        "rows",
        "entity",
        "time",
        "tile",
        "twice",
        "order",
        "broken",
        "last-0",
        "last-superscript",
        "last-what",
        "feast-chain",
        "feast-udf",
        "udf-set",
        "field-mapping",
        "service-alias",
        "service-key-map",
        "service-version",
        "service-no-view",
        "view-version",
        "copy",
        "service-feature",
    ],
)
def test_the_codec_refuses_what_feast_accepts_but_the_store_cannot_use(
    tmp_path: Path, change: str, message: str | None
) -> None:
    repo = _write_repo(tmp_path / "repo", change)
    if message is None:  # a second view (a copy) is fine, its own name
        assert [v.name for v in load_repo(repo).views] == ["bars_1m", "rolling_1m", "x"]
        return
    with pytest.raises(ConfigurationError, match=message):
        load_repo(repo)


def test_a_view_declared_online_false_is_offline_only_and_kept_so(
    tmp_path: Path, sqlite_store: Callable[[str], Any]
) -> None:
    definitions = load_repo(_write_repo(tmp_path / "repo", "{original}\nbars_1m.online = False\n"))
    assert {v.name: v.online for v in definitions.views} == {"bars_1m": False, "rolling_1m": True}
    store = sqlite_store(definitions.project)
    register_objects(store, to_feast_objects(definitions, kafka_bootstrap="broker:9092"))
    assert read_registry(store.registry, definitions.project) == definitions
    # The online catalog read from Feast's registry refuses it as the one from definitions.
    for catalog in (catalog_from_feast(store), catalog_from_definitions(definitions)):
        assert (set(catalog.views), set(catalog.offline_only)) == ({"rolling_1m"}, {"bars_1m"})
        with pytest.raises(NotFoundError, match=r"feature view bars_1m is offline only"):
            catalog.view("bars_1m")
    before = load_repo(_write_repo(tmp_path / "before", "{original}"))
    (change,) = diff_definitions(before, definitions).changes
    assert change.name == "bars_1m"
    assert [f.describe() for f in change.fields] == ["online yes -> no (offline only)"]
    listed = [line for line in describe(definitions) if line.startswith("  bars_1m ")]
    assert listed and listed[0].endswith("offline only (online=False)")


def test_a_service_s_text_references_are_its_features_after_its_views(tmp_path: Path) -> None:
    """Feast resolves ``"view:feature"`` and ``"view"`` entries at apply, after the views."""
    service = (
        "{original}\nfrom feast import FeatureService\nsvc = FeatureService(\n    name='svc',"
        "\n    features=['rolling_1m:vwap_5m', bars_1m[['close']], 'bars_1m'],\n)\n"
    )
    definitions = load_repo(_write_repo(tmp_path / "repo", service))
    (svc,) = [s for s in definitions.services if s.name == "svc"]
    bars = [f.name for f in definitions.view("bars_1m").features]
    assert [str(r) for r in svc.features] == [
        "bars_1m:close",
        "rolling_1m:vwap_5m",
        *(f"bars_1m:{name}" for name in bars),
    ]


def test_every_view_the_codec_refuses_is_named_in_one_error(tmp_path: Path) -> None:
    """Mistakes in two views are two lines of one run, not two runs of plan (a view's checks
    stop at its first)."""
    repo = _write_repo(
        tmp_path / "repo",
        '{original}\nbars_1m.aggregations[0].function = "mode"\n'
        'rolling_1m.tags["featurestore.rows"] = "always"\n',
    )
    with pytest.raises(ConfigurationError) as refused:
        load_repo(repo)
    lines = str(refused.value).splitlines()
    assert lines[0] == "2 problems:"
    assert lines[1].startswith(
        "  1. feature view 'bars_1m' aggregation 'open': unsupported aggregation function"
    )
    assert lines[2].startswith("  2. feature view 'rolling_1m': tag 'featurestore.rows' is")


def test_two_views_of_one_name_are_refused_naming_their_files(tmp_path: Path) -> None:
    repo = _write_repo(tmp_path / "repo", "{original}")
    (repo / "more.py").write_text(
        "from trades import bars_1m\nagain = bars_1m.__copy__()\nagain.description = 'x'\n"
    )
    with pytest.raises(ConfigurationError) as refused:
        load_repo(repo)
    assert str(refused.value) == (
        f"two different feature views are called 'bars_1m': one bound in {repo / 'more.py'},"
        f" the other in {repo / 'more.py'}, {repo / 'trades.py'}"
    )


def test_registry_list_shows_how_a_stream_view_is_computed() -> None:
    text = "\n".join(describe(market_definitions()))
    assert "stream: topic trades (source trades, entity symbol, time event_time" in text
    assert "tile=0:01:00  rows=running (as of every event)" in text
    assert "rows=window_end" in text
    assert "column log_return = ln(price / prev(price))" in text
    assert "realized_vol_5m = std(log_return) window 0:05:00 slide 0:01:00" in text
    assert "volume_ratio = volume_1m / (volume_20m / 20)  (derived)" in text


@pytest.mark.parametrize(
    ("text", "days"), [("30d", 30), ("12h", 0.5), ("90m", 90 / 1440), (" 2D ", 2)]
)
def test_a_retention_is_a_whole_number_of_days_hours_or_minutes(text: str, days: float) -> None:
    from featurestore.definitions.feast_codec import parse_retention

    assert parse_retention(text, "t") == timedelta(days=days)


@pytest.mark.parametrize(
    "text", ["", "30", "d", "0d", "-1d", "1.5h", "2w", "forever", "\u00b2d", "\uff13d"]
)
def test_a_malformed_retention_is_refused_naming_the_table_and_value(text: str) -> None:
    from featurestore.definitions.feast_codec import parse_retention

    with pytest.raises(
        ConfigurationError, match=rf"offline table of 'v': tag 'retention' is {text!r}"
    ):
        parse_retention(text, "offline table of 'v'")

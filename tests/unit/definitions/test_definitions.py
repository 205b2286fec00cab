from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from featurestore.config import load_settings
from featurestore.config import settings_env
from featurestore.definitions import FeatureRef
from featurestore.definitions import market_definitions
from featurestore.definitions.model import FeatureService
from featurestore.definitions.repo_config import repo_config_dict
from featurestore.errors import NotFoundError
from featurestore.errors import ValidationError

REPO = Path(__file__).resolve().parents[3]


def test_catalog_has_the_agreed_names() -> None:
    defs = market_definitions()
    assert defs.project == "featurestore"
    assert [e.join_key for e in defs.entities] == ["symbol"]
    bars, rolling = defs.view("bars_1m"), defs.view("rolling_1m")
    assert bars.feature_names == (
        "open",
        "high",
        "low",
        "close",
        "volume",
        "trade_count",
        "avg_trade_size",
        "vwap",
        "notional",
    )
    assert rolling.feature_names == (
        "vwap_5m",
        "vwap_15m",
        "realized_vol_5m",
        "realized_vol_15m",
        "price_momentum_1m",
        "price_momentum_5m",
        "volume_5m",
        "volume_ratio",
        "sma_5",
        "sma_20",
        "trade_count_1m",
        "avg_trade_size_1m",
        "vwap_1m",
        "notional_1m",
        "notional_5m",
        "notional_15m",
        "volume_15m",
        "open_1m",
        "close_1m",
        "open_5m",
        "close_5m",
        "volume_1m",
        "volume_20m",
    )
    ints = {f.name for v in (bars, rolling) for f in v.features if f.value_type.value == "Int64"}
    assert ints == {"trade_count", "trade_count_1m"}
    assert {f.value_type.value for v in (bars, rolling) for f in v.features} == {"Float64", "Int64"}
    assert bars.ttl == rolling.ttl == timedelta(hours=1)
    assert bars.source_topic == "trades" and bars.source.table == "bars_1m"
    assert rolling.source.table == "rolling_1m"
    assert {bars.source.partition_interval, rolling.source.partition_interval} == {"month"}
    assert {s.name for s in defs.services} == {
        "market_features_v1",
        "anomaly_features_v1",
        "direction_features_v1",
    }
    assert len(defs.service("market_features_v1").features) == 19
    assert defs.service("anomaly_features_v1").features[:2] == (
        FeatureRef("rolling_1m", "volume_ratio"),
        FeatureRef("rolling_1m", "realized_vol_5m"),
    )
    for service in defs.services:  # every reference resolves
        defs.resolve(service=service.name)


def test_warm_up_is_the_longest_window_a_service_reads_chains_included() -> None:
    defs = market_definitions()
    # rolling_1m's 20-minute volume and price mean; bars_1m's 1-minute windows are shorter
    assert defs.warm_up("market_features_v1") == timedelta(minutes=20)
    assert defs.warm_up() == timedelta(minutes=20)  # the hourly rollups: read by no service
    hourly = FeatureService("hourly", (FeatureRef("ohlcv_1h", "close"),))
    with_hourly = dataclasses.replace(defs, services=(*defs.services, hourly))
    # 60 minutes of 5-minute bars of 1-minute bars
    assert with_hourly.warm_up("hourly") == timedelta(minutes=60 + 5 + 1)
    assert with_hourly.warm_up() == timedelta(minutes=66)
    with pytest.raises(NotFoundError, match="unknown feature service 'nope'"):
        defs.warm_up("nope")


def test_resolve_and_lookups() -> None:
    defs = market_definitions()
    refs = defs.resolve(["rolling_1m:sma_5", " bars_1m:close"])
    assert refs == (FeatureRef("rolling_1m", "sma_5"), FeatureRef("bars_1m", "close"))
    # As Feast refuses it, and as GetOnlineFeatures does: the answer has one column a name.
    with pytest.raises(ValidationError) as info:
        defs.resolve(["bars_1m:close", "rolling_1m:sma_5", FeatureRef("bars_1m", "close")])
    assert str(info.value) == "features[2]: 'bars_1m:close' is named twice (first at [0])"
    assert info.value.field == "features[2]"
    with pytest.raises(NotFoundError, match="unknown feature view 'nope'"):
        defs.resolve(["nope:close"])
    with pytest.raises(NotFoundError, match="no feature 'nope'"):
        defs.resolve(["bars_1m:nope"])
    with pytest.raises(NotFoundError, match="unknown feature service"):
        defs.resolve(service="nope")
    with pytest.raises(ValidationError) as info:
        defs.resolve(["close"])
    assert info.value.field == "features"
    with pytest.raises(ValidationError):
        defs.resolve()
    with pytest.raises(ValidationError):
        defs.resolve(["bars_1m:close"], service="market_features_v1")
    with pytest.raises(ValidationError, match="no features"):
        defs.resolve([])


def test_feature_store_yaml_matches_the_settings() -> None:
    settings = load_settings(
        {"FEATURESTORE_POSTGRES__HOST": "db.example", "FEATURESTORE_REDIS__PORT": "7000"}
    )
    text = (REPO / "registry" / "feature_store.yaml").read_text()
    # Feast expands ${VAR} with os.path.expandvars; do the same from the settings' variables.
    for key, value in settings_env(settings).items():
        text = text.replace("${" + key + "}", value)
    from_yaml = yaml.safe_load(text)
    assert "${" not in json.dumps(from_yaml)
    assert from_yaml == repo_config_dict(settings, "featurestore")


def test_one_feature_ref_and_one_value_type_for_the_whole_store() -> None:
    """The online store's FeatureRef and ValueType are the definitions' (issue 19, item 1)."""
    from featurestore import online
    from featurestore.definitions import ValueType

    assert online.FeatureRef is FeatureRef and online.ValueType is ValueType
    # Feast's ValueType numbers, as the online layout stores them, and Feast's type names.
    assert [t.feast_number for t in ValueType] == [5, 4, 2, 7, 1, 3, 6, 8]
    assert ValueType(5) is ValueType.FLOAT64 and ValueType("Float64") is ValueType.FLOAT64
    assert [t for t in ValueType if t.has_offline_column] == [
        ValueType.FLOAT64, ValueType.INT64, ValueType.STRING, ValueType.BOOL,
    ]  # fmt: skip


def test_feature_ref_parse_names_the_field() -> None:
    import pytest

    from featurestore.errors import ValidationError

    assert FeatureRef.parse("bars_1m:close") == FeatureRef("bars_1m", "close")
    assert str(FeatureRef("bars_1m", "close")) == "bars_1m:close"
    for bad in ("close", ":close", "bars_1m:", "a:b:c"):
        with pytest.raises(ValidationError, match=r"^inline_features: .* 'view:feature'") as info:
            FeatureRef.parse(bad, field_name="inline_features")
        assert info.value.field == "inline_features"


def test_a_feature_refs_column_name_is_the_one_exports_write_and_predict_reads() -> None:
    ref = FeatureRef("rolling_1m", "vwap_5m")
    assert ref.column == "rolling_1m__vwap_5m"
    assert FeatureRef.of_column(ref.column) == ref
    # The view is before the first separator: a feature may contain one, a view may not.
    assert FeatureRef.of_column("m__cpu__p99") == FeatureRef("m", "cpu__p99")
    for bare in ("close", "__close", "bars_1m__", "bars_1m:close"):
        assert FeatureRef.of_column(bare) is None

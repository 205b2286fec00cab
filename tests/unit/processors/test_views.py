"""The views the processors materialize come from the definitions, checked."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from featurestore.definitions import Definitions, Feature, market_definitions
from featurestore.errors import ConfigurationError
from processors.options import ProcessorOptions
from processors.views import MaterializedViews


def test_views_are_found_by_kind_and_topic() -> None:
    defs = market_definitions("p", table_prefix="x_", source_topic="tt", ttl=timedelta(0))
    views = MaterializedViews.resolve(defs, "tt")
    assert (views.bars.name, views.rolling.name, views.join_key) == (
        "bars_1m",
        "rolling_1m",
        "symbol",
    )
    catalog = views.online_catalog()
    assert catalog.project == "p"
    assert catalog.view("bars_1m").ttl is None  # 0 = never expires
    assert catalog.view("bars_1m").feature("trade_count").dtype.name == "INT64"


def test_a_view_of_another_topic_or_an_unknown_feature_is_refused() -> None:
    defs = market_definitions("p", source_topic="other")
    with pytest.raises(ConfigurationError, match="kind 'ohlcv' for topic 'tt'"):
        MaterializedViews.resolve(defs, "tt")
    bars = defs.view("bars_1m")
    odd = replace(bars, features=(*bars.features, Feature("spread")))
    defs = Definitions(defs.project, defs.entities, (odd, defs.view("rolling_1m")), ())
    with pytest.raises(ConfigurationError, match="spread"):
        MaterializedViews.resolve(defs, "other")


def test_options_are_checked() -> None:
    with pytest.raises(ConfigurationError):
        ProcessorOptions(name="../x")
    with pytest.raises(ConfigurationError):
        ProcessorOptions(lateness_s=-1)
    assert ProcessorOptions(lateness_s=2.5).lateness_us == 2_500_000

"""The views the processors materialize come from the definitions, checked."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from featurestore.definitions import Definitions, Feature, market_definitions
from featurestore.errors import ConfigurationError
from processors.options import ProcessorOptions
from processors.views import MaterializedViews


def test_the_stream_views_of_a_topic_are_found_and_compiled() -> None:
    defs = market_definitions("p", table_prefix="x_", source_topic="tt", ttl=timedelta(0))
    views = MaterializedViews.resolve(defs, "tt")
    assert [v.name for v in views.views] == [
        "bars_1m",
        "ohlcv_1h",
        "ohlcv_1m",
        "ohlcv_5m",
        "rolling_1m",
    ]
    assert views.join_key == "symbol"
    assert views.plan.view("bars_1m").running and not views.plan.view("rolling_1m").running
    catalog = views.online_catalog()
    assert catalog.project == "p"
    assert catalog.view("bars_1m").ttl is None  # 0 = never expires
    assert catalog.view("bars_1m").feature("trade_count").dtype.name == "INT64"


def test_a_topic_without_views_or_a_view_it_cannot_compute_is_refused() -> None:
    defs = market_definitions("p", source_topic="other")
    with pytest.raises(ConfigurationError, match="no stream feature view reads topic 'tt'"):
        MaterializedViews.resolve(defs, "tt")
    bars = defs.view("bars_1m")
    odd = replace(bars, features=(*bars.features, Feature("spread")))
    defs = Definitions(defs.project, defs.entities, (odd, defs.view("rolling_1m")), ())
    with pytest.raises(ConfigurationError, match=r"'bars_1m'.*not computed: \['spread'\]"):
        MaterializedViews.resolve(defs, "other")


def test_options_are_checked() -> None:
    with pytest.raises(ConfigurationError):
        ProcessorOptions(name="../x")
    with pytest.raises(ConfigurationError):
        ProcessorOptions(trigger_ms=-1)

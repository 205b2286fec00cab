"""The views the processors materialize come from the definitions, checked."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from featurestore.config import load_settings
from featurestore.definitions import Definitions
from featurestore.definitions import Entity
from featurestore.definitions import Feature
from featurestore.definitions import market_definitions
from featurestore.definitions import validate_definitions
from featurestore.definitions.expressions import MAX_NODES
from featurestore.errors import ConfigurationError
from processors.options import ProcessorOptions
from processors.views import MaterializedViews
from processors.wiring import ProcessorWiring


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


def test_the_views_of_a_topic_are_keyed_by_one_entity_named_in_the_refusal() -> None:
    defs = market_definitions("p", source_topic="tt")
    other = replace(defs.view("rolling_1m"), entities=("ticker",))
    entities = (*defs.entities, Entity("ticker", "ticker"))
    defs = Definitions(defs.project, entities, (defs.view("bars_1m"), other), ())
    with pytest.raises(
        ConfigurationError,
        match=r"feature view 'rolling_1m' \(topic 'tt'\): keyed by entity 'ticker', but the"
        r" topic's views are keyed by 'symbol' \(as 'bars_1m' is\)",
    ):
        MaterializedViews.resolve(defs, "tt")


def test_the_largest_computed_column_compiles_hashes_and_evaluates() -> None:
    """The source plan is a cache key (the decoder's): an expression at the size limit hashes."""
    defs = market_definitions("p", source_topic="tt")
    terms = " + ".join(["price"] * (MAX_NODES // 2 - 1) + ["prev(price)"])
    views = []
    for view in defs.views:
        assert view.stream is not None
        source = view.stream.source
        columns = {**source.columns, "many": terms}
        stream = replace(view.stream, source=replace(source, columns=columns))
        views.append(replace(view, stream=stream))
    defs = replace(defs, views=tuple(views))
    validate_definitions(defs)
    plan = MaterializedViews.resolve(defs, "tt").plan
    assert hash(plan.source) == hash(plan.source)
    many = dict(plan.source.columns)["many"]
    price = np.array([1.0, 2.0])
    assert many.evaluate({"price": price}, {"price": np.array([np.nan, 1.0])}).tolist()[1] == 199


def test_options_are_checked() -> None:
    with pytest.raises(ConfigurationError):
        ProcessorOptions(name="../x")
    with pytest.raises(ConfigurationError):
        ProcessorOptions(trigger_ms=-1)


def test_hooks_need_a_view_of_the_topic() -> None:
    views = MaterializedViews.resolve(market_definitions("p", source_topic="tt"), "tt")
    views.check_hooks([], None)
    views.check_hooks([print], "rolling_1m")
    with pytest.raises(ConfigurationError, match="hooks need hook_view"):
        views.check_hooks([print], None)
    with pytest.raises(ConfigurationError, match="no stream view 'nope'"):
        views.check_hooks([print], "nope")


def test_each_application_of_a_split_topic_has_its_own_status_file(tmp_path: Path) -> None:
    settings = load_settings({"FEATURESTORE_DATA_DIR": str(tmp_path)})
    home = tmp_path.resolve() / "processors" / "f"
    assert ProcessorOptions(name="f").status_path(settings) == home / "status.json"
    split = ProcessorOptions(name="f", partitions=(2, 0))
    assert split.status_path(settings) == home / "status-f-p0-2.json"


def test_the_wiring_resolves_the_views_of_the_options_topic_and_checks_its_hooks(
    tmp_path: Path,
) -> None:
    # The registry's port is closed: definitions given are used as they are, never read again.
    settings = load_settings(
        {"FEATURESTORE_DATA_DIR": str(tmp_path), "FEATURESTORE_POSTGRES__PORT": "1"}
    )
    defs = market_definitions("p", source_topic="tt")
    options = ProcessorOptions(name="f", topic="tt")
    views = ProcessorWiring(defs).views(settings, options)
    assert views.topic == "tt" and views.definitions is defs
    assert ProcessorWiring(defs, hook_view="rolling_1m").rows_view is None  # no hooks
    hooked = ProcessorWiring(defs, [print], "rolling_1m")
    assert hooked.rows_view == "rolling_1m"
    assert hooked.views(settings, options).view("rolling_1m").name == "rolling_1m"
    with pytest.raises(ConfigurationError, match="hooks need hook_view"):
        ProcessorWiring(defs, [print]).views(settings, options)
    with pytest.raises(ConfigurationError, match="no stream feature view reads topic 'other'"):
        ProcessorWiring(defs).views(settings, ProcessorOptions(name="f", topic="other"))


def _with_columns(defs: Definitions, **columns: str) -> Definitions:
    """Every view of ``defs`` whose stream has a source, with ``columns`` set on it."""
    views = []
    for view in defs.views:
        if view.stream is not None:
            source = view.stream.source
            source = replace(source, columns={**source.columns, **columns})
            view = replace(view, stream=replace(view.stream, source=source))
        views.append(view)
    return replace(defs, views=tuple(views))


def test_a_column_only_another_view_reads_changes_neither_fingerprint_nor_stored_state() -> None:
    from processors.step import PartitionState

    defs = market_definitions("p", source_topic="tt")
    before = MaterializedViews.resolve(defs, "tt")
    added = _with_columns(defs, odd_lots="when(size < 100, size)")
    validate_definitions(added)
    after = MaterializedViews.resolve(added, "tt")
    for name in before.plans:
        assert after.fingerprint(name) == before.fingerprint(name), name
        assert after.former_fingerprint(name) != before.former_fingerprint(name), name
    notional = MaterializedViews.resolve(_with_columns(defs, notional="price * size * 2"), "tt")
    assert notional.fingerprint("bars_1m") != before.fingerprint("bars_1m")
    assert notional.fingerprint("ohlcv_5m") != before.fingerprint(
        "ohlcv_5m"
    )  # its upstream reads it
    # A state stored the way an earlier release hashed continues, and takes today's fingerprint.
    earlier = PartitionState(7, fingerprint=before.former_fingerprint("bars_1m")).to_bytes()
    state = PartitionState.from_bytes(
        7, earlier, fingerprint=before.fingerprint("bars_1m"),
        former_fingerprint=before.former_fingerprint("bars_1m"), view="bars_1m",
    )  # fmt: skip
    assert state.fingerprint == before.fingerprint("bars_1m")
    with pytest.raises(ConfigurationError, match="feature view 'bars_1m' changed since its rows"):
        PartitionState.from_bytes(
            7, earlier, fingerprint=notional.fingerprint("bars_1m"),
            former_fingerprint=notional.former_fingerprint("bars_1m"), view="bars_1m",
        )  # fmt: skip

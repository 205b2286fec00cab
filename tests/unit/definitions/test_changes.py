"""diff_definitions: what applying definitions changes, as `registry plan` and `apply` list it."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from featurestore.definitions import AggFunction
from featurestore.definitions import Aggregation
from featurestore.definitions import Definitions
from featurestore.definitions import Entity
from featurestore.definitions import Feature
from featurestore.definitions import FeatureRef
from featurestore.definitions import FeatureService
from featurestore.definitions import FeatureView
from featurestore.definitions import load_repo
from featurestore.definitions import market_definitions
from featurestore.definitions.changes import Action
from featurestore.definitions.changes import Change
from featurestore.definitions.changes import FieldChange
from featurestore.definitions.changes import changed_topics
from featurestore.definitions.changes import diff_definitions
from featurestore.definitions.validate import check_changes
from featurestore.errors import ConfigurationError

DEFS = market_definitions("p")


def _with_view(defs: Definitions, view: FeatureView) -> Definitions:
    views = [v for v in defs.views if v.name != view.name]
    return replace(defs, views=tuple(sorted([*views, view], key=lambda v: v.name)))


def _without_view(defs: Definitions, name: str) -> Definitions:
    return replace(
        defs,
        views=tuple(v for v in defs.views if v.name != name),
        services=tuple(s for s in defs.services if all(r.view != name for r in s.features)),
    )


def _batch(name: str, table: str, **changes: object) -> FeatureView:
    view = FeatureView(
        name=name,
        entities=("symbol",),
        features=(Feature("score"),),
        ttl=timedelta(hours=1),
        source=replace(DEFS.view("rolling_1m").source, table=table),
    )
    return replace(view, **changes)  # type: ignore[arg-type]


def test_the_same_definitions_change_nothing() -> None:
    changes = diff_definitions(DEFS, DEFS)
    assert changes.changes == ()
    assert changes.lines() == ["no changes to Feast project 'p'"]
    assert changes.to_json() == {
        "project": "p",
        "changed": False,
        "counts": {"add": 0, "change": 0, "remove": 0},
        "refused": [],
        "changes": [],
    }


def test_nothing_registered_adds_everything_in_kind_then_name_order() -> None:
    changes = diff_definitions(None, DEFS)
    assert [(c.kind, c.name, c.action) for c in changes.changes] == [
        ("entity", "symbol", Action.ADD),
        *[("feature view", v.name, Action.ADD) for v in sorted(DEFS.views, key=lambda v: v.name)],
        *[("feature service", s, Action.ADD) for s in sorted(s.name for s in DEFS.services)],
    ]
    lines = changes.lines()
    assert lines[0] == "Feast project 'p': 9 to add, 0 to change, 0 to remove"
    assert lines[1:3] == ["entities:", "  + entity symbol (join key symbol, String)"]
    assert (
        "  + feature view rolling_1m (offline table rolling_1m: to be created, backfilled from"
        " the log by the processors)"
    ) in lines
    assert lines.index("feature views:") < lines.index("feature services:")
    assert changes.refused == ()


def test_a_ttl_change_names_the_field_old_and_new() -> None:
    view = DEFS.view("rolling_1m")
    after = _with_view(DEFS, replace(view, ttl=timedelta(hours=2)))
    changes = diff_definitions(DEFS, after)
    assert changes.changes == (
        Change(
            "feature view",
            "rolling_1m",
            Action.CHANGE,
            (FieldChange("ttl", "1:00:00", "2:00:00"),),
        ),
    )
    assert changes.lines() == [
        "Feast project 'p': 0 to add, 1 to change, 0 to remove",
        "feature views:",
        "  ~ feature view rolling_1m: ttl 1:00:00 -> 2:00:00",
    ]


@pytest.mark.parametrize(
    ("change", "line"),
    [
        ({"description": "new"}, "-> 'new'"),
        ({"tags": {"team": "quant"}}, "tags none -> team=quant"),
        ({"entities": ("symbol", "venue")}, "entities symbol -> symbol, venue"),
    ],
    ids=["description", "tags", "entities"],
)
def test_free_changes_of_a_stream_view_are_listed_and_not_refused(
    change: dict[str, object], line: str
) -> None:
    after = _with_view(DEFS, replace(DEFS.view("rolling_1m"), **change))  # type: ignore[arg-type]
    changes = diff_definitions(DEFS, after)
    (found,) = changes.changes
    assert found.refused is None
    assert any(line in text for text in found.lines()), found.lines()


def test_a_retention_and_a_moved_table_are_listed_with_the_new_table() -> None:
    view = DEFS.view("ohlcv_1h")
    source = replace(view.source, table="ohlcv_1h_b", retention=timedelta(days=30))
    changes = diff_definitions(DEFS, _with_view(DEFS, replace(view, source=source)))
    (found,) = changes.changes
    assert [(f.field, f.old, f.new) for f in found.fields] == [
        ("offline table", "ohlcv_1h", "ohlcv_1h_b"),
        ("retention", "365 days, 0:00:00", "30 days, 0:00:00"),
    ]
    assert found.lines()[-1] == (
        "~ feature view ohlcv_1h: offline table ohlcv_1h_b: to be created, backfilled from the"
        " log by the processors"
    )


def test_a_removed_stream_view_is_no_longer_written_and_keeps_its_rows() -> None:
    changes = diff_definitions(DEFS, _without_view(DEFS, "ohlcv_1h"))
    assert [c.lines() for c in changes.changes] == [
        ["- feature view ohlcv_1h (no longer written; its table and online rows are kept)"]
    ]


def test_a_batch_view_added_changed_and_removed() -> None:
    before = _with_view(DEFS, _batch("scores", "scores"))
    added = diff_definitions(DEFS, before)
    assert added.changes[0].lines() == [
        "+ feature view scores (offline table scores: to be created, written by something else"
        " (not a stream view))"
    ]
    wider = _batch("scores", "scores", features=(Feature("score"), Feature("rank")))
    (changed,) = diff_definitions(before, _with_view(DEFS, wider)).changes
    assert changed.lines() == ["~ feature view scores: feature rank (none) -> Float64"]
    assert changed.refused is None  # check_changes looks at stream views only
    (removed,) = diff_definitions(before, DEFS).changes
    assert removed.lines() == ["- feature view scores (its table and online rows are kept)"]


def test_a_stream_view_becoming_a_batch_view_shows_its_kind_and_lost_computation() -> None:
    view = DEFS.view("ohlcv_1h")
    (found,) = diff_definitions(DEFS, _with_view(DEFS, replace(view, stream=None))).changes
    assert found.fields[0] == FieldChange("kind", "stream", "batch")
    assert FieldChange("tile", "0:01:00", None) in found.fields
    assert found.refused is None  # as apply: check_changes skips a view no longer streamed


def test_a_feature_added_to_a_stream_view_is_refused_with_applys_message() -> None:
    view = DEFS.view("ohlcv_1h")
    assert view.stream is not None
    agg = Aggregation("volume", AggFunction.MAX, timedelta(hours=1), timedelta(hours=1), "vmax")
    wider = replace(
        view,
        features=(*view.features, Feature("vmax")),
        stream=replace(view.stream, aggregations=(*view.stream.aggregations, agg)),
    )
    after = _with_view(DEFS, wider)
    with pytest.raises(ConfigurationError) as applying:
        check_changes(DEFS, after)
    changes = diff_definitions(DEFS, after)
    (found,) = changes.changes
    assert found.refused == str(applying.value)
    assert changes.refused == (found,)
    assert [f.field for f in found.fields] == ["feature vmax", "aggregation vmax"]
    assert found.fields[-1].new == "max(volume) window 1:00:00 slide 1:00:00"
    assert found.lines()[-1] == f"! feature view ohlcv_1h: refused: {applying.value}"
    assert changes.summary().endswith("; 1 refused")
    assert changes.to_json()["refused"] == [str(applying.value)]


def test_each_refused_view_carries_its_own_message() -> None:
    after = DEFS
    for name in ("ohlcv_1h", "ohlcv_5m"):
        view = DEFS.view(name)
        assert view.stream is not None
        after = _with_view(
            after, replace(view, stream=replace(view.stream, tile=view.stream.tile * 2))
        )
    refused = diff_definitions(DEFS, after).refused
    assert [c.name for c in refused] == ["ohlcv_1h", "ohlcv_5m"]
    assert all(f"feature view {c.name!r}: tile changes" in (c.refused or "") for c in refused)


def test_entities_and_services_added_changed_and_removed() -> None:
    venue = Entity("venue", "venue", description="an exchange")
    service = DEFS.services[0]
    fewer = replace(service, features=service.features[:1], description="smaller")
    extra = FeatureService("extra", (FeatureRef("rolling_1m", "vwap_5m"),))
    after = replace(
        DEFS,
        entities=(replace(DEFS.entities[0], description="a ticker"), venue),
        services=(fewer, extra),
    )
    lines = diff_definitions(DEFS, after).lines()
    assert lines[0] == "Feast project 'p': 2 to add, 2 to change, 2 to remove"
    assert lines[1:4] == [
        "entities:",
        "  ~ entity symbol: description \"a traded instrument's ticker\" -> 'a ticker'",
        "  + entity venue (join key venue, String)",
    ]
    assert lines[5:] == [
        f"  ~ feature service {service.name}: features"
        f" {', '.join(map(str, service.features))} -> {service.features[0]}",
        f"  ~ feature service {service.name}: description {service.description!r} -> 'smaller'",
        "  - feature service direction_features_v1",
        "  + feature service extra (rolling_1m:vwap_5m)",
        "  - feature service market_features_v1",
    ]


def test_existing_tables_say_what_apply_creates() -> None:
    tables = {v.source.table for v in DEFS.views} - {"ohlcv_5m"}
    after = _with_view(DEFS, _batch("scores", "rolling_1m"))
    changes = diff_definitions(DEFS, after, existing_tables=tables)
    assert [line for c in changes.changes for line in c.lines()] == [
        "+ feature view scores (offline table rolling_1m: exists, kept as it is, written by"
        " something else (not a stream view))",
        "+ offline table ohlcv_5m (missing; created for feature view ohlcv_5m)",
    ]
    assert diff_definitions(DEFS, DEFS, existing_tables=tables).lines()[-2:] == [
        "offline tables:",
        "  + offline table ohlcv_5m (missing; created for feature view ohlcv_5m)",
    ]


def test_the_order_of_the_definitions_does_not_change_the_plan() -> None:
    after = _with_view(_without_view(DEFS, "ohlcv_1h"), _batch("scores", "scores"))
    shuffled = replace(
        after,
        views=tuple(reversed(after.views)),
        services=tuple(reversed(after.services)),
    )
    before_shuffled = replace(DEFS, views=tuple(reversed(DEFS.views)))
    assert diff_definitions(before_shuffled, shuffled) == diff_definitions(DEFS, after)


def test_the_json_is_one_object_of_the_same_changes() -> None:
    view = DEFS.view("rolling_1m")
    after = _with_view(_without_view(DEFS, "bars_1m"), replace(view, ttl=timedelta(hours=2)))
    changes = diff_definitions(DEFS, after)
    data = json.loads(changes.to_json_text())
    assert data["project"] == "p" and data["changed"] is True
    assert data["counts"] == {"add": 0, "change": 1, "remove": 2}
    assert data["refused"] == []
    assert data["changes"] == [
        {
            "kind": "feature view",
            "name": "bars_1m",
            "action": "remove",
            "fields": [],
            "note": "no longer written; its table and online rows are kept",
            "refused": None,
        },
        {
            "kind": "feature view",
            "name": "rolling_1m",
            "action": "change",
            "fields": [{"field": "ttl", "old": "1:00:00", "new": "2:00:00"}],
            "note": "",
            "refused": None,
        },
        {
            "kind": "feature service",
            "name": "market_features_v1",
            "action": "remove",
            "fields": [],
            "note": "",
            "refused": None,
        },
    ]


def test_applied_summary_speaks_of_what_was_done() -> None:
    after = _without_view(DEFS, "bars_1m")
    assert diff_definitions(DEFS, after).summary(applied=True) == (
        "Feast project 'p': 0 added, 0 changed, 2 removed"
    )


def test_the_topics_whose_views_change_are_those_whose_processors_restart() -> None:
    """`registry apply` restarts the processors of these topics only (repo: trades, quotes and
    metrics views); a change of services alone restarts none, an entity's every one."""
    before = load_repo()
    topic = {v.name: v.stream.source.topic for v in before.views if v.stream is not None}
    assert len(set(topic.values())) == 3

    def topics(after: Definitions) -> frozenset[str] | None:
        return changed_topics(before, after, diff_definitions(before, after))

    quotes = before.view("quotes_1m")
    changed = _with_view(before, replace(quotes, ttl=timedelta(hours=2)))
    assert topics(changed) == frozenset([topic["quotes_1m"]])
    removed = _without_view(before, "metric_rolling_1m")
    assert topics(removed) == frozenset([topic["metric_rolling_1m"]])
    added = _with_view(before, replace(before.view("rolling_1m"), name="rolling_1m_v2"))
    assert topics(added) == frozenset([topic["rolling_1m"]])
    assert topics(replace(before, services=before.services[1:])) == frozenset()
    assert topics(before) == frozenset()
    entities = tuple(replace(e, description="changed") for e in before.entities)
    assert topics(replace(before, entities=entities)) is None
    first = changed_topics(None, before, diff_definitions(None, before))
    assert first == frozenset(topic.values())


def test_a_column_only_another_view_reads_is_listed_as_such_and_not_refused() -> None:
    def with_column(view: FeatureView) -> FeatureView:
        assert view.stream is not None
        source = view.stream.source
        source = replace(source, columns={**source.columns, "odd_lots": "when(size < 100, size)"})
        return replace(view, stream=replace(view.stream, source=source))

    after = _with_view(DEFS, with_column(DEFS.view("bars_1m")))
    (found,) = diff_definitions(DEFS, after).changes
    assert found.refused is None
    assert found.fields == (
        FieldChange("column odd_lots (not read by this view)", None, "'when(size < 100, size)'"),
    )
    read = _with_view(DEFS, with_column(DEFS.view("bars_1m")))
    notional = read.view("bars_1m")
    assert notional.stream is not None
    changed = replace(
        notional.stream.source, columns={**notional.stream.source.columns, "notional": "price"}
    )
    refused = _with_view(DEFS, replace(notional, stream=replace(notional.stream, source=changed)))
    (found,) = diff_definitions(DEFS, refused).changes
    assert found.refused is not None and "column notional changes" in found.refused


def test_a_field_change_views_share_is_one_line_naming_them() -> None:
    """A column added to the trades source changes all five trades views: listed once."""

    def with_columns(view: FeatureView, columns: dict[str, str]) -> FeatureView:
        assert view.stream is not None
        source = view.stream.source
        source = replace(source, columns={**source.columns, **columns})
        return replace(view, stream=replace(view.stream, source=source))

    after = DEFS
    for view in DEFS.views:
        after = _with_view(after, with_columns(view, {"odd_lots": "when(size < 100, size)"}))
    after = _with_view(after, replace(after.view("rolling_1m"), ttl=timedelta(hours=2)))
    changes = diff_definitions(DEFS, after)
    assert len(changes.changes) == 5  # each view still changes, in the JSON too
    names = "bars_1m, ohlcv_1h, ohlcv_1m, ohlcv_5m, rolling_1m"
    assert changes.lines() == [
        "Feast project 'p': 0 to add, 5 to change, 0 to remove",
        "feature views:",
        f"  ~ feature views {names}: column odd_lots (not read by these views) (none) ->"
        " 'when(size < 100, size)'",
        "  ~ feature view rolling_1m: ttl 1:00:00 -> 2:00:00",
    ]
    # Shared by two of them only: listed where the first of the two is.
    ttl = _with_view(DEFS, replace(DEFS.view("ohlcv_1m"), description="bars"))
    for name in ("rolling_1m", "bars_1m"):
        ttl = _with_view(ttl, replace(DEFS.view(name), ttl=timedelta(hours=3)))
    assert diff_definitions(DEFS, ttl).lines()[1:] == [
        "feature views:",
        "  ~ feature views bars_1m, rolling_1m: ttl 1:00:00 -> 3:00:00",
        f"  ~ feature view ohlcv_1m: description {DEFS.view('ohlcv_1m').description!r} -> 'bars'",
    ]

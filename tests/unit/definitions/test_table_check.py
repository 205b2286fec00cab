"""check_tables: a view whose offline table exists with other columns is refused, by plan and apply.

A table is never altered: a feature added, removed or retyped, a join key changed, or a removed
view added again over the table it left is applied as a new view with a table of its own.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from featurestore.definitions import Definitions
from featurestore.definitions import Feature
from featurestore.definitions import FeatureView
from featurestore.definitions import ValueType
from featurestore.definitions import market_definitions
from featurestore.definitions.changes import Action
from featurestore.definitions.changes import diff_definitions
from featurestore.definitions.validate import check_tables
from featurestore.definitions.validate import offline_columns
from featurestore.errors import ConfigurationError

DEFS = market_definitions("p")
_FIRST = (Feature("pe"), Feature("eps"))


def _defs(features: tuple[Feature, ...] = _FIRST, join_key: str = "symbol") -> Definitions:
    view = FeatureView(
        name="fundamentals",
        entities=("symbol",),
        features=features,
        ttl=timedelta(days=1),
        source=replace(DEFS.view("rolling_1m").source, table="fundamentals"),
    )
    entity = replace(DEFS.entity("symbol"), join_key=join_key)
    return replace(DEFS, entities=(entity,), views=(view,), services=())


def _tables(defs: Definitions) -> dict[str, dict[str, str]]:
    """The columns apply creates for each view, as PostgreSQL's format_type reads them back."""
    return {
        v.source.table: offline_columns(v, [defs.entity(e).join_key for e in v.entities])
        for v in defs.views
    }


def _refusal(after: Definitions, tables: dict[str, dict[str, str]]) -> str:
    with pytest.raises(ConfigurationError) as refused:
        check_tables(after, tables)
    return str(refused.value)


def test_tables_as_apply_made_them_are_accepted() -> None:
    check_tables(DEFS, _tables(DEFS))
    check_tables(_defs(), _tables(_defs()))
    check_tables(_defs(), {})  # no table yet: apply creates it
    assert list(offline_columns(_defs().views[0], ["symbol"]).items()) == [
        ("symbol", "text"),
        ("event_timestamp", "timestamp with time zone"),
        ("created_timestamp", "timestamp with time zone"),
        ("pe", "double precision"),
        ("eps", "double precision"),
        ("source_topic", "text"),
        ("source_partition", "integer"),
        ("source_offset_start", "bigint"),
        ("source_offset_end", "bigint"),
    ]


@pytest.mark.parametrize(
    ("after", "difference"),
    [
        (_defs((*_FIRST, Feature("mc"))), "feature mc (Float64) has no column"),
        (
            _defs(_FIRST[:1]),
            "column eps (double precision) is not declared by the view"
            " (a feature or join key removed)",
        ),
        (
            _defs((_FIRST[0], Feature("eps", ValueType.INT64))),
            "feature eps (Int64) needs bigint, but the column is double precision",
        ),
        (
            _defs(join_key="ticker"),
            "join key ticker has no column; column symbol (text) is not declared by the view"
            " (a feature or join key removed)",
        ),
    ],
    ids=["feature added", "feature removed", "feature retyped", "join key changed"],
)
def test_a_batch_view_whose_table_has_other_columns_is_refused(
    after: Definitions, difference: str
) -> None:
    assert _refusal(after, _tables(_defs())) == (
        "feature view 'fundamentals': its offline table 'fundamentals' already exists with"
        f" other columns: {difference}. The table is never altered, so that the rows already"
        " written keep their meaning; apply the change as a new view with an offline table of"
        " its own (for example fundamentals_v2, table fundamentals_v2) instead"
    )


def test_the_plan_marks_refused_what_apply_refuses_with_its_message() -> None:
    tables = _tables(_defs())
    after = _defs((*_FIRST, Feature("mc")))
    (change,) = diff_definitions(_defs(), after, tables).changes
    assert (change.action, change.refused) == (Action.CHANGE, _refusal(after, tables))
    assert change.lines()[-1] == f"! feature view fundamentals: refused: {change.refused}"
    # Without the tables' columns (a plan of definitions alone) nothing is known to refuse.
    assert diff_definitions(_defs(), after).refused == ()
    assert diff_definitions(_defs(), after, set(tables)).refused == ()


def test_a_removed_view_added_again_over_its_old_table_is_refused() -> None:
    tables = _tables(_defs())
    removed = replace(_defs(), views=())
    again = _defs((Feature("sector", ValueType.STRING),))
    (change,) = diff_definitions(removed, again, tables).changes
    assert change.action is Action.ADD
    assert change.refused == _refusal(again, tables)
    assert "feature sector (String) has no column" in change.refused
    # The same definition added again is accepted: its table is the one it left.
    (same,) = diff_definitions(removed, _defs(), tables).changes
    assert (same.action, same.refused) == (Action.ADD, None)


def test_a_stream_view_whose_entity_changes_join_key_is_refused() -> None:
    view = DEFS.view("rolling_1m")
    entity = replace(DEFS.entity(view.entities[0]), join_key="ticker")
    after = replace(DEFS, entities=(entity, *DEFS.entities[1:]))
    message = _refusal(after, _tables(DEFS))
    assert message.startswith(f"feature view {DEFS.views[0].name!r}: its offline table")
    assert "join key ticker has no column" in message
    refused = diff_definitions(DEFS, after, _tables(DEFS)).refused
    assert {c.name for c in refused} == {v.name for v in DEFS.views if "symbol" in v.entities}
    (listed,) = [c for c in refused if c.name == "rolling_1m"]
    assert listed.lines() == [
        "~ feature view rolling_1m: offline table rolling_1m: its columns differ from the view's",
        f"! feature view rolling_1m: refused: {listed.refused}",
    ]

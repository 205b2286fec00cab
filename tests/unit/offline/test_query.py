from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from featurestore.definitions import market_definitions
from featurestore.definitions.model import Feature
from featurestore.definitions.model import ValueType
from featurestore.offline._query import LabelJoin
from featurestore.offline._query import ViewJoin
from featurestore.offline._query import binary_query
from featurestore.offline._query import join_query

BARS = market_definitions().view("bars_1m")


def _join(unique: bool = False) -> ViewJoin:
    return ViewJoin(BARS, "symbol", BARS.features[:2], ("open", "high"), unique=unique)


def _labels(unique: bool = False) -> LabelJoin:
    """Labels of a 5-minute horizon: entry within 1 minute, exit no staler than 2."""
    return LabelJoin(
        BARS,
        "symbol",
        BARS.feature("close"),
        horizon=timedelta(minutes=5),
        max_wait=timedelta(minutes=1),
        max_staleness=timedelta(minutes=2),
        unique=unique,
    )


def test_join_query_bounds_by_ttl_and_breaks_ties_by_created() -> None:
    text = join_query([_join()]).as_string(None)
    assert "LEFT JOIN LATERAL" in text
    assert '"event_timestamp" <= e.ts' in text
    assert "e.ts - 3600.0 * interval '1 second'" in text
    assert 'ORDER BY "f"."event_timestamp" DESC, "f"."created_timestamp" DESC LIMIT 1' in text


def test_unique_tables_order_by_event_time_alone() -> None:
    text = join_query([_join(unique=True)]).as_string(None)
    assert 'ORDER BY "f"."event_timestamp" DESC LIMIT 1' in text
    assert "created_timestamp" not in text


def test_label_probes_read_only_bars_strictly_after_t_and_up_to_the_horizon() -> None:
    text = join_query([_join()], _labels(unique=True)).as_string(None)
    entry, exit_ = text.split("LEFT JOIN LATERAL")[2:]
    for probe in (entry, exit_):
        assert 'b."event_timestamp" > e.ts AND' in probe
    assert "b.\"event_timestamp\" <= e.ts + '0:01:00'::interval" in entry
    assert 'ORDER BY "b"."event_timestamp" ASC LIMIT 1' in entry
    assert "b.\"event_timestamp\" <= e.ts + '0:05:00'::interval" in exit_
    assert "b.\"event_timestamp\" >= e.ts + '0:03:00'::interval" in exit_
    assert 'ORDER BY "b"."event_timestamp" DESC LIMIT 1' in exit_


def test_the_exit_price_waits_for_a_bar_of_its_key_at_or_past_the_horizon() -> None:
    """One query per chunk: the horizon test reads the latest bar of each key, price or none."""
    text = join_query([_join()], _labels()).as_string(None)
    assert (
        "CASE WHEN l_seen.latest >= e.ts + '0:05:00'::interval THEN l_exit.price END"
        ' AS "_label_exit_price"'
    ) in text
    latest = text.split(" l_seen ON l_seen.key = e.key")[0].rsplit(" LEFT JOIN (", 1)[1]
    assert latest.startswith('SELECT k.key, (SELECT max(seen."event_timestamp")')
    assert 'WHERE seen."symbol" = k.key) AS latest' in latest
    assert 'FROM (SELECT DISTINCT key FROM "_pit_entities") k)' in latest
    assert "close" not in latest  # an empty bar (no price yet) is the market seen too


def test_binary_query_sends_nulls_as_a_mask_and_falls_back_for_text() -> None:
    many = tuple(Feature(f"f{i}", ValueType.FLOAT64) for i in range(70))
    view = replace(BARS, features=many)
    query = binary_query([ViewJoin(view, "symbol", many, tuple(f.name for f in many))])
    assert query is not None
    names = [c.name for c in query.columns]
    assert names[0] == "ord" and names[-2:] == ["_null_mask_0", "_null_mask_1"]
    assert query.masks[61] == ("f61", "_null_mask_0", 61)
    assert query.masks[62] == ("f62", "_null_mask_1", 0)
    text = query.query.as_string(None)
    assert 'coalesce(j."f0", 0::float8) AS "f0"' in text
    with_text = (Feature("venue", ValueType.STRING),)
    assert binary_query([ViewJoin(view, "symbol", with_text, ("venue",))]) is None

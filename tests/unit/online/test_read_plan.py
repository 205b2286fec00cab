"""The read plan: one HMGET per entity key, statuses from the replies."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest

from featurestore.errors import NotFoundError
from featurestore.errors import ValidationError
from featurestore.online import EntityKey
from featurestore.online import FeatureRef
from featurestore.online import FeatureStatus
from featurestore.online import ValueType
from featurestore.online.layout import encode_timestamp
from featurestore.online.layout import encode_value
from featurestore.online.layout import feature_field
from featurestore.online.reading import ReadPlan
from featurestore.online.redis import view_key
from featurestore.online.testing import market_catalog

NOW = datetime(2024, 3, 1, 15, 0, tzinfo=UTC)
REFS = [
    FeatureRef("bars_1m", "close"),
    FeatureRef("rolling_1m", "sma_5"),
    FeatureRef("bars_1m", "trade_count"),
]


def _plan(entities: list[EntityKey], refs: list[FeatureRef] = REFS) -> ReadPlan:
    return ReadPlan.build(market_catalog(), entities, refs, view_key)


def test_one_command_per_entity_with_every_view_field() -> None:
    plan = _plan([EntityKey.of(symbol="A"), EntityKey.of(symbol="B")])
    assert len(plan.commands) == 2
    fields = plan.commands[0][1]
    assert fields == [
        b"_ts:bars_1m",
        feature_field("bars_1m", "close"),
        feature_field("bars_1m", "trade_count"),
        b"_ts:rolling_1m",
        feature_field("rolling_1m", "sma_5"),
    ]


def test_decode_statuses() -> None:
    plan = _plan([EntityKey.of(symbol="A"), EntityKey.of(symbol="B")])
    fresh, stale = NOW - timedelta(minutes=1), NOW - timedelta(hours=2)
    replies: list[list[bytes | None]] = [
        [
            encode_timestamp(fresh),
            encode_value(10.5, ValueType.FLOAT64),
            None,
            encode_timestamp(stale),
            encode_value(9.0, ValueType.FLOAT64),
        ],
        [None, None, None, None, None],
    ]
    result = plan.decode(replies, NOW)
    close, sma, count = result.columns
    assert close[0].value == 10.5
    assert close[0].status is FeatureStatus.PRESENT
    assert close[0].event_time == fresh
    assert count[0].status is FeatureStatus.NULL_VALUE
    assert sma[0].status is FeatureStatus.OUTSIDE_MAX_AGE
    assert sma[0].value == 9.0
    assert {v.status for v in (close[1], sma[1], count[1])} == {FeatureStatus.NOT_FOUND}
    assert result.to_dicts()[0] == {
        "bars_1m:close": 10.5,
        "rolling_1m:sma_5": 9.0,
        "bars_1m:trade_count": None,
    }


def test_duplicate_refs_and_entities_share_fields() -> None:
    ref = FeatureRef("bars_1m", "close")
    plan = _plan([EntityKey.of(symbol="A")] * 2, [ref, ref])
    assert len(plan.commands) == 1
    assert len(plan.commands[0][1]) == 2


def test_unknown_view_and_feature_are_named() -> None:
    with pytest.raises(NotFoundError, match="nope"):
        _plan([EntityKey.of(symbol="A")], [FeatureRef("nope", "close")])
    with pytest.raises(NotFoundError, match="bars_1m:nope"):
        _plan([EntityKey.of(symbol="A")], [FeatureRef("bars_1m", "nope")])


def test_entity_without_the_views_join_key_is_invalid() -> None:
    with pytest.raises(ValidationError) as info:
        _plan([EntityKey.of(account="A")])
    assert info.value.field == "entities"


@pytest.mark.parametrize("text", ["close", ":close", "bars_1m:", "a:b:c"])
def test_bad_references(text: str) -> None:
    with pytest.raises(ValidationError) as info:
        FeatureRef.parse(text)
    assert info.value.field == "features"

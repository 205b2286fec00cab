from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest

from featurestore.ingest import RecordRejectedError, SourceRecord, validate_trade
from tests.unit.ingest.rejections import assert_rejected, changed_record

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
GOOD: dict[str, Any] = {
    "symbol": "aig",
    "price": 48.5,
    "size": 100,
    "event_time": T0,
    "exchange": "P",
    "trade_id": "x:1",
}


def record(**changes: Any) -> SourceRecord:
    return changed_record("x.csv", 7, GOOD, changes)


def test_a_good_record_becomes_a_trade() -> None:
    trade = validate_trade(record(symbol=" brk.b "))
    assert trade.symbol == "BRK.B"
    assert trade.source == "x.csv"
    assert trade.event_time.tzinfo is UTC


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"price": ...}, "missing_field", "price"),
        ({"symbol": ...}, "missing_field", "symbol"),
        ({"event_time": None}, "missing_field", "event_time"),
        ({"price": "abc"}, "wrong_type", "price"),
        ({"price": True}, "wrong_type", "price"),
        ({"size": 1.5}, "wrong_type", "size"),
        ({"event_time": "yesterday"}, "wrong_type", "event_time"),
        ({"symbol": 42}, "wrong_type", "symbol"),
        ({"price": math.nan}, "not_finite", "price"),
        ({"price": math.inf}, "not_finite", "price"),
        ({"price": 0.0}, "non_positive_price", "price"),
        ({"price": -1.0}, "non_positive_price", "price"),
        ({"size": -5}, "negative_size", "size"),
        ({"symbol": "1ABC"}, "bad_symbol", "symbol"),
        ({"symbol": "A" * 17}, "bad_symbol", "symbol"),
        ({"symbol": "AB CD"}, "bad_symbol", "symbol"),
        ({"event_time": datetime(2024, 1, 2, 14, 30)}, "naive_time", "event_time"),
        ({"conditions": [1, 2]}, "wrong_type", "conditions"),
    ],
)
def test_each_rule_has_its_reason(changes: dict[str, Any], code: str, field: str) -> None:
    assert_rejected(validate_trade, record(**changes), code, field)


def test_a_source_rejection_wins() -> None:
    rejected = SourceRecord("f", 1, GOOD, b"raw", "suspicious: flagged by the vendor")
    with pytest.raises(RecordRejectedError) as caught:
        validate_trade(rejected)
    assert caught.value.code == "suspicious"
    assert caught.value.reason == "suspicious: flagged by the vendor"


def test_zero_size_is_allowed() -> None:
    assert validate_trade(record(size=0)).size == 0

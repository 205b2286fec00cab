from __future__ import annotations

import math
from datetime import UTC
from datetime import date
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from featurestore.events.registry import InMemorySchemaStore
from featurestore.ingest import DEAD_LETTER_REASON
from featurestore.ingest import RecordRejectedError
from featurestore.ingest import RecordRouter
from featurestore.ingest import SourceRecord
from featurestore.ingest import validate_trade
from tests.unit.ingest.rejections import assert_rejected
from tests.unit.ingest.rejections import changed_record

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


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"price": -1.0, "size": "abc"}, "wrong_type", "size"),
        ({"price": -1.0, "event_time": "garbage"}, "wrong_type", "event_time"),
        ({"symbol": "\u0131bm", "price": "abc"}, "wrong_type", "price"),
        ({"price": 0.0, "symbol": "1ABC"}, "bad_symbol", "symbol"),
        ({"price": -1.0, "size": 2**63}, "out_of_range", "size"),
        ({"price": -1.0, "event_time": datetime(2024, 1, 2)}, "non_positive_price", "price"),
    ],
)
def test_type_errors_come_before_the_rules_as_documented(
    changes: dict[str, Any], code: str, field: str
) -> None:
    assert_rejected(validate_trade, record(**changes), code, field)


@pytest.mark.parametrize(
    "symbol",
    # dotless i, the ligature fi, sharp s, the digraph dz, full-width IBM
    ["\u0131bm", "\ufb01x", "stra\u00dfe", "\u01c6", "\uff29\uff22\uff2d"],
)
def test_a_symbol_is_matched_as_given_not_after_unicode_case_mapping(symbol: str) -> None:
    with pytest.raises(RecordRejectedError) as caught:
        validate_trade(record(symbol=symbol))
    assert caught.value.code == "bad_symbol"
    assert repr(symbol.strip()) in caught.value.reason


def test_an_ascii_symbol_is_still_upper_cased() -> None:
    assert validate_trade(record(symbol="brk-b")).symbol == "BRK-B"


@pytest.mark.parametrize(
    ("changes", "field", "shown"),
    [
        ({"price": 10**400}, "price", "100000000000...(401 characters)"),
        ({"price": Decimal("1e400")}, "price", "1E+400"),
        ({"price": Decimal("1e-400")}, "price", "1E-400"),
        ({"size": 2**64}, "size", "18446744073709551616"),
        ({"size": Decimal("1e30")}, "size", "1E+30"),
    ],
)
def test_numbers_beyond_their_type_are_out_of_range_as_given(
    changes: dict[str, Any], field: str, shown: str
) -> None:
    with pytest.raises(RecordRejectedError) as caught:
        validate_trade(record(**changes))
    assert (caught.value.code, caught.value.field) == ("out_of_range", field)
    assert caught.value.reason.startswith(f"out_of_range: {field} is {shown}, ")


def test_the_largest_size_is_kept() -> None:
    assert validate_trade(record(size=2**63 - 1)).size == 2**63 - 1


def test_exact_decimals_are_prices_and_sizes() -> None:
    trade = validate_trade(record(price=Decimal("190.50"), size=Decimal("100")))
    assert (trade.price, trade.size) == (190.5, 100)
    assert isinstance(trade.size, int)
    assert_rejected(validate_trade, record(size=Decimal("1.5")), "wrong_type", "size")
    assert_rejected(validate_trade, record(price=Decimal("NaN")), "not_finite", "price")
    assert_rejected(validate_trade, record(price=Decimal("sNaN")), "not_finite", "price")


def test_a_date_is_not_an_event_time_and_the_reason_says_what_is() -> None:
    with pytest.raises(RecordRejectedError) as caught:
        validate_trade(record(event_time=date(2024, 1, 2)))
    assert caught.value.reason == (
        "wrong_type: event_time must be a timestamp with a time zone, got the date 2024-01-02"
    )


def test_the_router_dead_letters_numbers_beyond_range_instead_of_raising() -> None:
    router = RecordRouter({"trade": "trades"}, "dead", InMemorySchemaStore())
    for changes, reason in [
        ({"price": 10**400}, b"out_of_range: price is "),
        ({"size": 2**64}, b"out_of_range: size is 18446744073709551616, above the largest"),
    ]:
        out = router.route(record(**changes))
        assert out.topic == "dead"
        assert dict(out.headers)[DEAD_LETTER_REASON].startswith(reason)

from __future__ import annotations

import math
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from decimal import Decimal
from typing import Any

import pytest

from featurestore.ingest import RecordRejectedError
from featurestore.ingest import SourceRecord
from featurestore.ingest import validate_metric
from featurestore.ingest import validate_quote
from tests.unit.ingest.rejections import assert_rejected
from tests.unit.ingest.rejections import changed_record

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
QUOTE: dict[str, Any] = {
    "symbol": "ibm",
    "event_time": T0,
    "bid_price": 180.0,
    "bid_size": 100,
    "ask_price": 180.05,
    "ask_size": 300,
    "quote_id": "q.csv:2",
}
METRIC: dict[str, Any] = {
    "entity": " host-1 ",
    "event_time": T0,
    "value": -3.5,
    "metric_id": "m.csv:2",
}


def quote(**changes: Any) -> SourceRecord:
    return changed_record("q.csv", 2, QUOTE, changes, kind="quote")


def metric(**changes: Any) -> SourceRecord:
    return changed_record("m.csv", 2, METRIC, changes, kind="metric")


def test_a_good_record_becomes_a_quote() -> None:
    q = validate_quote(quote(exchange="N", event_time=T0.astimezone(timezone(timedelta(hours=-5)))))
    assert (q.symbol, q.bid_price, q.ask_size, q.exchange, q.source) == (
        "IBM",
        180.0,
        300,
        "N",
        "q.csv",
    )
    assert q.event_time == T0 and q.event_time.tzinfo is UTC
    assert validate_quote(quote(exchange="")).exchange is None
    assert validate_quote(quote()).conditions == ()


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"bid_price": ...}, "missing_field", "bid_price"),
        ({"ask_size": None}, "missing_field", "ask_size"),
        ({"quote_id": ""}, "missing_field", "quote_id"),
        ({"bid_price": "abc"}, "wrong_type", "bid_price"),
        ({"ask_size": 1.5}, "wrong_type", "ask_size"),
        ({"bid_size": True}, "wrong_type", "bid_size"),
        ({"exchange": 7}, "wrong_type", "exchange"),
        ({"event_time": "noon"}, "wrong_type", "event_time"),
        ({"symbol": "1BM"}, "bad_symbol", "symbol"),
        ({"bid_price": math.nan}, "not_finite", "bid_price"),
        ({"ask_price": math.inf}, "not_finite", "ask_price"),
        ({"bid_price": 0.0}, "non_positive_price", "bid_price"),
        ({"ask_price": -1.0}, "non_positive_price", "ask_price"),
        ({"bid_size": -1}, "negative_size", "bid_size"),
        ({"ask_size": -100}, "negative_size", "ask_size"),
        ({"bid_price": 180.10}, "crossed", "bid_price"),
        ({"event_time": datetime(2024, 1, 2, 14, 30)}, "naive_time", "event_time"),
        ({"ask_size": 2**63}, "out_of_range", "ask_size"),
        ({"bid_price": 10**400}, "out_of_range", "bid_price"),
        # The documented order: types first, not_finite before non_positive_price.
        ({"bid_price": 0.0, "ask_price": math.nan}, "not_finite", "ask_price"),
        ({"bid_price": -1.0, "ask_size": "abc"}, "wrong_type", "ask_size"),
        ({"bid_price": 0.0, "bid_size": 2**64}, "out_of_range", "bid_size"),
    ],
)
def test_each_quote_rule_has_its_reason(changes: dict[str, Any], code: str, field: str) -> None:
    assert_rejected(validate_quote, quote(**changes), code, field)


def test_a_good_record_becomes_a_metric() -> None:
    m = validate_metric(metric(name="cpu_load", tags={"region": "eu"}))
    assert (m.entity, m.value, m.name, dict(m.tags), m.metric_id, m.source) == (
        "host-1",
        -3.5,
        "cpu_load",
        {"region": "eu"},
        "m.csv:2",
        "m.csv",
    )
    plain = validate_metric(metric(value=7))
    assert (plain.name, dict(plain.tags), plain.value) == ("value", {}, 7.0)
    assert isinstance(plain.value, float)
    assert validate_metric(metric(value=Decimal("0.25"))).value == 0.25


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"entity": ...}, "missing_field", "entity"),
        ({"value": None}, "missing_field", "value"),
        ({"metric_id": ""}, "missing_field", "metric_id"),
        ({"entity": 42}, "wrong_type", "entity"),
        ({"value": "high"}, "wrong_type", "value"),
        ({"value": False}, "wrong_type", "value"),
        ({"tags": {"a": 1}}, "wrong_type", "tags"),
        ({"tags": ["a"]}, "wrong_type", "tags"),
        ({"name": 3}, "wrong_type", "name"),
        ({"entity": "   "}, "bad_entity", "entity"),
        ({"entity": "x" * 257}, "bad_entity", "entity"),
        ({"value": math.nan}, "not_finite", "value"),
        ({"value": -math.inf}, "not_finite", "value"),
        ({"event_time": datetime(2024, 1, 2)}, "naive_time", "event_time"),
        ({"name": " "}, "bad_name", "name"),
        ({"value": 10**400}, "out_of_range", "value"),
        ({"value": -(10**400)}, "out_of_range", "value"),
        ({"entity": " ", "value": "high"}, "wrong_type", "value"),
    ],
)
def test_each_metric_rule_has_its_reason(changes: dict[str, Any], code: str, field: str) -> None:
    assert_rejected(validate_metric, metric(**changes), code, field)


def test_a_source_rejection_wins_for_every_kind() -> None:
    for validate, good in ((validate_quote, QUOTE), (validate_metric, METRIC)):
        with pytest.raises(RecordRejectedError) as caught:
            validate(SourceRecord("f", 1, good, b"raw", "one_sided: no bid quoted yet"))
        assert caught.value.reason == "one_sided: no bid quoted yet"

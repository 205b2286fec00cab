"""Mapping the vendor's WebSocket and REST records to events, and their deterministic ids."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

import pytest

from featurestore.events.model import Quote
from featurestore.events.model import Trade
from featurestore.ingest.validate import RecordRejectedError
from featurestore.ingest.validate import validate_quote
from featurestore.ingest.validate import validate_trade
from featurestore.ingest.vendor import quote_id
from featurestore.ingest.vendor import rest_quote
from featurestore.ingest.vendor import rest_trade
from featurestore.ingest.vendor import trade_id
from featurestore.ingest.vendor import ws_record

# 2024-03-01 14:30:00.123456789 UTC = 09:30 in New York
NS = 1_709_303_400_123_456_789
MS = NS // 1_000_000

WS_TRADE = {
    "ev": "T", "sym": "AAPL", "i": "52983525029461", "x": 4, "p": 179.66, "s": 100,
    "c": [12, 37], "t": MS, "q": 1063, "z": 3, "trfi": 202,
}  # fmt: skip
REST_TRADE = {
    "id": "52983525029461", "exchange": 4, "price": 179.66, "size": 100, "conditions": [12, 37],
    "sip_timestamp": NS, "participant_timestamp": NS - 500, "sequence_number": 1063, "tape": 3,
    "trf_id": 202,
}  # fmt: skip


def test_a_websocket_trade_becomes_a_trade() -> None:
    record = ws_record(WS_TRADE, 7)
    assert record is not None and record.kind == "trade" and record.reject is None
    trade = validate_trade(record)
    assert trade == Trade(
        symbol="AAPL",
        price=179.66,
        size=100,
        event_time=datetime(2024, 3, 1, 14, 30, 0, 123000, tzinfo=UTC),
        exchange="4",
        trade_id="polygon:AAPL:20240301:4:202:52983525029461",
        conditions=("12", "37"),
        currency="USD",
        source="polygon-ws",
    )
    assert record.line == 7 and b'"sym":"AAPL"' in record.raw_bytes()


def test_the_same_trade_from_rest_has_the_same_id_and_a_finer_time() -> None:
    ws = validate_trade(ws_record(WS_TRADE, 1))  # type: ignore[arg-type]
    rest = validate_trade(rest_trade("aapl", REST_TRADE, 1))
    assert rest.trade_id == ws.trade_id
    assert rest.event_time == datetime(2024, 3, 1, 14, 30, 0, 123456, tzinfo=UTC)
    assert (rest.symbol, rest.price, rest.size, rest.exchange, rest.conditions) == (
        ws.symbol, ws.price, ws.size, ws.exchange, ws.conditions,
    )  # fmt: skip
    assert rest.source == "polygon-rest"


def test_trade_ids_differ_by_exchange_trf_and_day() -> None:
    t = datetime(2024, 3, 1, 14, 30, tzinfo=UTC)
    base = trade_id("AAPL", t, 4, None, "1")
    assert base == "polygon:AAPL:20240301:4:-:1"
    assert trade_id("AAPL", t, 11, None, "1") != base
    assert trade_id("AAPL", t, 4, 202, "1") != base
    # 23:30 New York on Mar 1 is already Mar 2 in UTC: the day is New York's.
    late = datetime(2024, 3, 2, 4, 30, tzinfo=UTC)
    assert trade_id("AAPL", late, 4, None, "1") == base
    assert trade_id("AAPL", datetime(2024, 3, 4, 14, 30, tzinfo=UTC), 4, None, "1") != base


def test_quotes_map_both_sides_and_take_their_id_from_the_sequence_number() -> None:
    ws = {
        "ev": "Q", "sym": "MSFT", "bx": 11, "bp": 410.1, "bs": 3, "ax": 12, "ap": 410.12,
        "as": 5, "c": [1], "t": MS, "q": 99, "z": 3,
    }  # fmt: skip
    rest = {
        "bid_exchange": 11, "bid_price": 410.1, "bid_size": 3, "ask_exchange": 12,
        "ask_price": 410.12, "ask_size": 5, "conditions": [1], "sip_timestamp": NS,
        "sequence_number": 99,
    }  # fmt: skip
    a = validate_quote(ws_record(ws, 1))  # type: ignore[arg-type]
    b = validate_quote(rest_quote("MSFT", rest, 1))
    assert isinstance(a, Quote)
    assert a.quote_id == b.quote_id == quote_id("MSFT", a.event_time, 99)
    assert a.quote_id == "polygon:MSFT:20240301:q99"
    assert (a.bid_price, a.bid_size, a.ask_price, a.ask_size) == (410.1, 3, 410.12, 5)
    assert a.exchange == b.exchange == "11/12"


def test_status_and_aggregate_events_are_not_records() -> None:
    assert ws_record({"ev": "status", "status": "auth_success"}, 1) is None
    assert ws_record({"ev": "AM", "sym": "AAPL"}, 1) is None


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ({**WS_TRADE, "t": "soon"}, "unparsable"),
        ({**WS_TRADE, "i": None}, "unparsable"),
        ({**WS_TRADE, "sym": ""}, "unparsable"),
        ({**WS_TRADE, "p": -1.0}, "non_positive_price"),
        ({**WS_TRADE, "s": 1.5}, "wrong_type"),
        ({**WS_TRADE, "c": "12"}, "unparsable"),
    ],
)
def test_bad_vendor_records_are_rejected_with_a_reason(
    message: dict[str, object], code: str
) -> None:
    record = ws_record(message, 3)
    assert record is not None
    with pytest.raises(RecordRejectedError) as caught:
        validate_trade(record)
    assert caught.value.code == code
    assert record.raw_bytes()  # the dead letter keeps the vendor's JSON


def test_a_rest_result_without_a_timestamp_is_rejected() -> None:
    record = rest_trade("AAPL", {**REST_TRADE, "sip_timestamp": None}, 1)
    assert record.reject is not None and record.reject.startswith("unparsable")

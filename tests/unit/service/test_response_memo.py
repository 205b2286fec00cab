"""The response memo answers only while its rows are the row cache's very objects and fresh."""

from __future__ import annotations

from typing import Any

from featurestore.service.response_memo import TTL_MARGIN_S
from featurestore.service.response_memo import ResponseMemo


def _memo_of(table: dict[bytes, Any], valid_until: float = 100.0) -> ResponseMemo:
    memo = ResponseMemo(1 << 20)
    memo.put(b"req", table, (b"a", b"b"), [table[b"a"], table[b"b"]], b"response", valid_until)
    return memo


def test_answers_while_every_row_is_the_same_object() -> None:
    table: dict[bytes, Any] = {b"a": [b"1"], b"b": [None]}
    memo = _memo_of(table)
    assert memo.get(b"req", now=50.0) == b"response"
    assert memo.get(b"other", now=50.0) is None


def test_an_equal_but_new_row_misses() -> None:
    table: dict[bytes, Any] = {b"a": [b"1"], b"b": [None]}
    memo = _memo_of(table)
    table[b"b"] = [None]  # what a re-read after an invalidation stores: equal, not the same
    assert memo.get(b"req", now=50.0) is None


def test_a_dropped_row_misses() -> None:
    table: dict[bytes, Any] = {b"a": [b"1"], b"b": [None]}
    memo = _memo_of(table)
    del table[b"a"]
    assert memo.get(b"req", now=50.0) is None


def test_no_answer_from_a_margin_before_the_ttl_crossing() -> None:
    table: dict[bytes, Any] = {b"a": [b"1"], b"b": [None]}
    memo = _memo_of(table, valid_until=100.0)
    assert memo.get(b"req", now=100.0 - 2 * TTL_MARGIN_S) == b"response"
    assert memo.get(b"req", now=100.0 - TTL_MARGIN_S) is None
    assert memo.get(b"req", now=100.0) is None


def test_bounded_by_bytes_oldest_dropped_first() -> None:
    table: dict[bytes, Any] = {b"a": [b"1"]}
    memo = ResponseMemo(max_bytes=30)
    for name in (b"r1", b"r2", b"r3"):
        memo.put(name, table, (b"a",), [table[b"a"]], b"x" * 10, 100.0)  # 12 bytes each
    assert len(memo) == 2
    assert memo.get(b"r1", 0.0) is None and memo.get(b"r3", 0.0) == b"x" * 10
    memo.put(b"big", table, (b"a",), [table[b"a"]], b"x" * 40, 100.0)  # larger than the bound
    assert memo.get(b"big", 0.0) is None and len(memo) == 2
    memo.put(b"r3", table, (b"a",), [table[b"a"]], b"y" * 10, 100.0)  # replaced, not doubled
    assert memo.get(b"r3", 0.0) == b"y" * 10 and memo.get(b"r2", 0.0) == b"x" * 10

"""The read path's row cache: kept by field list and key, bounded, emptied by invalidations."""

from __future__ import annotations

import hiredis

from featurestore.online.row_cache import RowCache


def test_rows_are_kept_per_field_list_and_forgotten_per_key() -> None:
    cache = RowCache(10)
    closes, volumes = cache.table(b"close"), cache.table(b"volume")
    cache.store(closes, [b"a", b"b"], [[b"1"], [None]])
    cache.store(volumes, [b"a"], [[b"9"]])
    assert closes == {b"a": [b"1"], b"b": [None]} and len(cache) == 3
    cache.invalidate([b"a", b"unknown"])
    assert closes == {b"b": [None]} and volumes == {} and len(cache) == 1
    cache.invalidate(None)
    assert closes == {} and len(cache) == 0
    assert cache.table(b"close") is closes


def test_error_replies_are_not_kept() -> None:
    cache = RowCache(10)
    table = cache.table(b"f")
    cache.store(table, [b"a", b"b"], [hiredis.ReplyError("WRONGTYPE"), [b"2"]])
    assert table == {b"b": [b"2"]}


def test_nothing_new_past_the_bound_but_known_rows_are_replaced() -> None:
    cache = RowCache(2)
    table = cache.table(b"f")
    cache.store(table, [b"a", b"b", b"c"], [[b"1"], [b"2"], [b"3"]])
    assert table == {b"a": [b"1"], b"b": [b"2"]}
    cache.store(table, [b"a", b"c"], [[b"10"], [b"3"]])
    assert table == {b"a": [b"10"], b"b": [b"2"]} and len(cache) == 2
    cache.invalidate([b"b"])
    cache.store(table, [b"c"], [[b"3"]])
    assert table == {b"a": [b"10"], b"c": [b"3"]}

"""The read path's prebuilt HMGET batches and the cluster's slot map, against Redis' own rules."""

from __future__ import annotations

from typing import Any

import hiredis
import pytest

from featurestore.online.cluster import _slot_map
from featurestore.online.pipelined import encode_command
from featurestore.online.rows import RowBatch


def test_a_batch_is_one_hmget_per_key_with_the_keys_slots() -> None:
    keys = [b"a", b"{user1000}.following", b"\x01\x00\x00\x00"]
    batch = RowBatch.of([b"_ts:bars_1m", b"\x12\x34"], keys)
    expected = [encode_command("HMGET", key, b"_ts:bars_1m", b"\x12\x34") for key in keys]
    assert batch.command == b"".join(expected)
    assert batch.payload([2, 0]) == expected[2] + expected[0]
    # Slots as Redis computes them (CLUSTER KEYSLOT): a hash tag counts alone.
    assert batch.slots == (15495, 3443, 14004)
    assert RowBatch.of([b"f"], [b"user1000"]).slots == (3443,)
    reader = hiredis.Reader()
    reader.feed(batch.command)
    assert reader.gets() == [b"HMGET", b"a", b"_ts:bars_1m", b"\x12\x34"]


def test_the_slot_map_names_each_slot_master() -> None:
    reply = [
        [0, 5460, [b"127.0.0.1", 7000, b"id1"], [b"127.0.0.1", 7003, b"id4"]],
        [5461, 10922, [b"", 7001, b"id2"]],  # a node that does not know its address
        [10923, 16383, [b"10.0.0.3", 7002, b"id3"]],
    ]
    slots = _slot_map(reply, "192.168.1.9")
    assert slots is not None
    assert slots[0] == slots[5460] == ("127.0.0.1", 7000)
    assert slots[5461] == ("192.168.1.9", 7001)
    assert slots[16383] == ("10.0.0.3", 7002)


@pytest.mark.parametrize(
    "reply",
    [
        [[0, 5460, [b"h", 1]], [5462, 16383, [b"h", 2]]],  # slot 5461 has no master
        [[0, 16382, [b"h", 1]]],  # nor has the last
        [],
    ],
)
def test_a_slot_map_with_an_unserved_slot_is_refused(reply: list[Any]) -> None:
    assert _slot_map(reply, "h") is None

"""Where a resume token starts each partition, against the partition's low and high watermarks."""

from __future__ import annotations

import grpc
import pytest

from featurestore.service.topic_stream import PositionOutOfRangeError
from featurestore.service.topic_stream import _resumed_offsets

MARKS = {0: (8, 10), 1: (0, 4)}
"""Partition 0: retention deleted offsets 0-7; 10 is its end. Partition 1: offsets 0-3."""


def test_offsets_between_the_start_and_the_end_resume_there() -> None:
    assert _resumed_offsets("t", {0: 8, 1: 4}, MARKS) == {0: 8, 1: 4}
    assert _resumed_offsets("t", {0: 10, 1: 0}, MARKS) == {0: 10, 1: 0}


def test_partitions_added_since_the_token_start_at_their_beginning() -> None:
    assert _resumed_offsets("t", {1: 2}, MARKS) == {0: 8, 1: 2}


@pytest.mark.parametrize(
    ("known", "words"),
    [
        ({0: 3, 1: 4}, ["expired", "partition 0", "starts at offset 8", "the 5 records"]),
        ({0: 11, 1: 4}, ["partition 0", "ends at offset 10", "offset 11", "recreated"]),
        ({0: 9, 1: 4, 7: 1}, ["partition 7", "has only partitions 0-1", "recreated"]),
    ],
)
def test_positions_the_topic_does_not_hold_are_out_of_range(
    known: dict[int, int], words: list[str]
) -> None:
    with pytest.raises(PositionOutOfRangeError) as raised:
        _resumed_offsets("trades", known, MARKS)
    assert PositionOutOfRangeError.grpc_code is grpc.StatusCode.OUT_OF_RANGE
    assert not raised.value.retryable
    message = str(raised.value)
    assert message.startswith("resume_token: ") and "'trades'" in message
    for word in words:
        assert word in message

"""The hand-written protobuf framing (featurestore_client.wire) against the protobuf library."""

from __future__ import annotations

import pytest
from featurestore_client.wire import FieldPrefixes
from featurestore_client.wire import field
from featurestore_client.wire import varint

from featurestore._proto.v1 import types_pb2


@pytest.mark.parametrize("n", [0, 1, 127, 128, 300, 16_383, 16_384, 2**32, 2**63, 2**64 - 1])
def test_varint_is_the_libraries(n: int) -> None:
    signed = n - 2**64 if n >= 2**63 else n  # int64 is written as its two's complement
    assert b"\x20" + varint(n) == types_pb2.Value(int64_value=signed).SerializeToString()


@pytest.mark.parametrize("text", ["", "IBM", "x" * 127, "y" * 128, "é" * 5_000])
def test_a_field_parses_as_the_message_it_frames(text: str) -> None:
    framed = field(0x12, text.encode())  # Value.string_value (2)
    assert types_pb2.Value.FromString(framed).string_value == text
    assert framed == types_pb2.Value(string_value=text).SerializeToString()


def test_prefixes_are_computed_once_per_length_and_equal_a_fields() -> None:
    prefixes = FieldPrefixes(0x12)
    payload = b"z" * 200
    first = prefixes[len(payload)]
    assert prefixes[len(payload)] is first
    assert first + payload == field(0x12, payload)

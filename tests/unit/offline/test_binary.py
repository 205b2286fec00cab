from __future__ import annotations

import struct

import numpy as np
import pyarrow as pa
import pytest

from featurestore.offline._binary import FixedColumn, decode_fixed, encode_entities

HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
TRAILER = b"\xff\xff"
PG_EPOCH_US = 946_684_800_000_000


def _parse_entities(data: bytes) -> list[tuple[int, str, int]]:
    """A plain-Python reader of PostgreSQL's binary COPY format (the reference)."""
    assert data.startswith(HEADER) and data.endswith(TRAILER)
    pos, rows = len(HEADER), []
    while pos < len(data) - 2:
        (fields,) = struct.unpack_from(">h", data, pos)
        assert fields == 3
        pos += 2
        values = []
        for _ in range(fields):
            (length,) = struct.unpack_from(">i", data, pos)
            values.append(data[pos + 4 : pos + 4 + length])
            pos += 4 + length
        rows.append(
            (
                struct.unpack(">q", values[0])[0],
                values[1].decode(),
                struct.unpack(">q", values[2])[0] + PG_EPOCH_US,
            )
        )
    return rows


def test_entities_round_trip_with_any_keys_and_sliced_arrays() -> None:
    keys = pa.array(["", "AAPL", "Ä€", "x" * 300, "IBM"]).slice(1)
    micros = np.array([0, -5, 1_704_067_200_123_456, 7], dtype=np.int64)
    ts = pa.array(micros, pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    data = encode_entities(np.array([3, 1, 2, 0], dtype=np.int64), keys, ts)
    assert _parse_entities(data) == [
        (3, "AAPL", 0),
        (1, "Ä€", -5),
        (2, "x" * 300, 1_704_067_200_123_456),
        (0, "IBM", 7),
    ]
    assert _parse_entities(encode_entities(np.array([], np.int64), keys[:0], ts[:0])) == []


def _fixed_stream(rows: list[tuple[int, float, bool]]) -> bytes:
    body = b"".join(struct.pack(">hiqidi?", 3, 8, o, 8, f, 1, b) for o, f, b in rows)
    return HEADER + body + TRAILER


def test_fixed_width_rows_decode_in_place() -> None:
    columns = [FixedColumn("o", "int8"), FixedColumn("f", "float8"), FixedColumn("b", "bool")]
    out = decode_fixed(_fixed_stream([(5, 1.5, True), (-1, float("nan"), False)]), columns)
    assert out["o"].tolist() == [5, -1]
    assert out["f"][0] == 1.5 and np.isnan(out["f"][1])
    assert out["b"].tolist() == [True, False]
    assert decode_fixed(_fixed_stream([]), columns)["o"].size == 0


def test_unexpected_streams_are_refused() -> None:
    columns = [FixedColumn("o", "int8"), FixedColumn("f", "float8"), FixedColumn("b", "bool")]
    good = _fixed_stream([(5, 1.5, True)])
    with pytest.raises(ValueError, match="not a binary COPY"):
        decode_fixed(b"5,1.5,t\n", columns)
    with pytest.raises(ValueError, match="trailer"):
        decode_fixed(good[:-2] + b"\x00\x00", columns)
    null_float = HEADER + struct.pack(">hiqi?", 3, 8, 5, -1, True)[:-1] + b"\x00" * 9 + TRAILER
    with pytest.raises(ValueError):
        decode_fixed(null_float, columns)
    with pytest.raises(ValueError, match="no fixed-width"):
        FixedColumn("t", "text")

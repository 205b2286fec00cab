from __future__ import annotations

import struct

import numpy as np
import pyarrow as pa
import pytest

from featurestore.offline._binary import FixedColumn
from featurestore.offline._binary import decode_arrays
from featurestore.offline._binary import encode_entities

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


_OIDS = {"q": 20, "d": 701, "?": 16}


def _array(kind: str, values: list[object], *, null: bool = False) -> bytes:
    """PostgreSQL's binary array format (``array_send``) of one dimension, by hand."""
    if not values:
        return struct.pack(">iii", 0, 0, _OIDS[kind])
    width = struct.calcsize(">" + kind)
    head = struct.pack(">iiiii", 1, int(null), _OIDS[kind], len(values), 1)
    return head + b"".join(struct.pack(f">i{kind}", width, v) for v in values)


COLUMNS = [FixedColumn("o", "int8"), FixedColumn("f", "float8"), FixedColumn("b", "bool")]


def test_fixed_width_arrays_decode_in_place() -> None:
    fields = [_array("q", [5, -1]), _array("d", [1.5, float("nan")]), _array("?", [True, False])]
    out = decode_arrays(fields, COLUMNS)
    assert out["o"].tolist() == [5, -1] and out["o"].dtype == np.int64
    assert out["f"][0] == 1.5 and np.isnan(out["f"][1])
    assert out["b"].tolist() == [True, False]
    empty = decode_arrays([_array("q", []), _array("d", []), _array("?", [])], COLUMNS)
    assert all(values.size == 0 for values in empty.values())
    assert decode_arrays([None, None, None], COLUMNS)["o"].size == 0  # no rows: null aggregates


def test_unexpected_arrays_are_refused() -> None:
    good = [_array("q", [5]), _array("d", [1.5]), _array("?", [True])]
    with pytest.raises(ValueError, match="not a binary array"):
        decode_arrays([b"{5}", *good[1:]], COLUMNS)
    with pytest.raises(ValueError, match="oid 701, not int8"):
        decode_arrays([good[1], *good[1:]], COLUMNS)
    with pytest.raises(ValueError, match="a null element"):
        decode_arrays([_array("q", [5], null=True), *good[1:]], COLUMNS)
    with pytest.raises(ValueError, match="not 8 bytes wide"):
        decode_arrays([good[0][:-1], *good[1:]], COLUMNS)
    with pytest.raises(ValueError, match="not of one length"):
        decode_arrays([_array("q", [5, 6]), *good[1:]], COLUMNS)
    with pytest.raises(ValueError, match="2 arrays for 3 columns"):
        decode_arrays(good[:2], COLUMNS)
    with pytest.raises(ValueError, match="no fixed-width"):
        FixedColumn("t", "text")

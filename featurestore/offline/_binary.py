"""PostgreSQL's binary ``COPY`` format, encoded and decoded with numpy (no per-row Python).

Two shapes only, the ones the point-in-time join moves:

* in: entity rows ``(ord bigint, key text, ts timestamptz)``, the key of variable length;
* out: rows of fixed-width, never-null columns (``bigint``, ``double precision``, ``boolean``),
  which numpy reads in place as one structured array. Nulls are sent as a bit mask column (see
  :mod:`featurestore.offline._query`), so every row has the same layout.

Binary rather than CSV because PostgreSQL neither prints nor parses timestamps and floats as
text: a float8 or timestamptz travels as its 8 bytes, big-endian.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["FixedColumn", "decode_fixed", "encode_entities"]

_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_HEADER = _SIGNATURE + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
_TRAILER = (-1).to_bytes(2, "big", signed=True)
_PG_EPOCH_US = 946_684_800_000_000
"""2000-01-01T00:00Z in microseconds since the Unix epoch: PostgreSQL's zero timestamp."""

_PREFIX = np.dtype([("n", ">i2"), ("ord_len", ">i4"), ("ord", ">i8"), ("key_len", ">i4")])
_SUFFIX = np.dtype([("ts_len", ">i4"), ("ts", ">i8")])

_WIDTHS = {"int8": (">i8", 8), "float8": (">f8", 8), "bool": ("?", 1)}


def encode_entities(ord_: np.ndarray, key: pa.Array, ts: pa.Array) -> bytes:
    """The binary COPY stream of ``(ord, key, ts)`` rows; ``key`` strings, ``ts`` UTC µs.

    Each row is ``int16 3 | int32 8, int64 ord | int32 len, key bytes | int32 8, int64 ts``: the
    fixed prefix and suffix are written for all rows at once through strided views, and the key
    bytes are scattered to their places with one fancy-indexed copy.
    """
    n = len(ord_)
    key = key.cast(pa.string())
    if key.null_count or ts.null_count:
        raise ValueError("entity keys and timestamps must not be null")
    lengths = pc.binary_length(key).to_numpy(zero_copy_only=False).astype(np.int64)
    offsets_buffer, data_buffer = key.buffers()[1], key.buffers()[2]
    offsets = np.frombuffer(offsets_buffer, dtype=np.int32)[key.offset : key.offset + n + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else None

    row_sizes = _PREFIX.itemsize + lengths + _SUFFIX.itemsize
    starts = len(_HEADER) + np.cumsum(row_sizes) - row_sizes
    total = len(_HEADER) + int(row_sizes.sum()) + len(_TRAILER)
    out = np.empty(total, dtype=np.uint8)
    out[: len(_HEADER)] = np.frombuffer(_HEADER, dtype=np.uint8)
    out[-len(_TRAILER) :] = np.frombuffer(_TRAILER, dtype=np.uint8)

    prefix = np.empty(n, dtype=_PREFIX)
    prefix["n"], prefix["ord_len"], prefix["ord"], prefix["key_len"] = 3, 8, ord_, lengths
    _scatter(out, starts, prefix.view(np.uint8).reshape(n, _PREFIX.itemsize))

    key_bytes = int(lengths.sum())
    if key_bytes:
        assert data is not None
        shift = np.repeat(starts + _PREFIX.itemsize - offsets[:-1], lengths)
        out[np.arange(offsets[0], offsets[0] + key_bytes) + shift] = data[
            offsets[0] : offsets[0] + key_bytes
        ]

    suffix = np.empty(n, dtype=_SUFFIX)
    micros = ts.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy()
    suffix["ts_len"], suffix["ts"] = 8, micros - _PG_EPOCH_US
    _scatter(
        out, starts + _PREFIX.itemsize + lengths, suffix.view(np.uint8).reshape(n, _SUFFIX.itemsize)
    )
    return out.tobytes()


def _scatter(out: np.ndarray, starts: np.ndarray, rows: np.ndarray) -> None:
    """Copy row ``i`` of the ``(n, width)`` byte matrix ``rows`` to ``out[starts[i]:]``."""
    width = rows.shape[1]
    out[starts[:, None] + np.arange(width)] = rows


class FixedColumn:
    """A column of a fixed-width result row: its name and PostgreSQL type."""

    __slots__ = ("name", "pg_type")

    def __init__(self, name: str, pg_type: str) -> None:
        if pg_type not in _WIDTHS:
            raise ValueError(f"no fixed-width binary decoding for {pg_type}")
        self.name = name
        self.pg_type = pg_type


def _row_dtype(columns: Sequence[FixedColumn]) -> np.dtype:
    fields: list[tuple[str, str]] = [("_n", ">i2")]
    for i, column in enumerate(columns):
        fields += [(f"_len{i}", ">i4"), (f"c{i}", _WIDTHS[column.pg_type][0])]
    return np.dtype(fields)


def decode_fixed(data: bytes | memoryview, columns: Sequence[FixedColumn]) -> dict[str, np.ndarray]:
    """Parse a binary COPY stream whose rows are ``columns``, all fixed-width and non-null.

    Returns native-endian arrays by column name. Raises ``ValueError`` when the stream is not
    what was asked for (a null or a column of another width would show as a wrong length).
    """
    view = memoryview(data)
    if bytes(view[: len(_SIGNATURE)]) != _SIGNATURE:
        raise ValueError("not a binary COPY stream")
    extension = int.from_bytes(view[15:19], "big")
    body = view[19 + extension : len(view) - len(_TRAILER)]
    if bytes(view[len(view) - len(_TRAILER) :]) != _TRAILER:
        raise ValueError("binary COPY stream without its trailer")
    dtype = _row_dtype(columns)
    if len(body) % dtype.itemsize:
        raise ValueError("binary COPY rows are not of the expected width (a null, or a type?)")
    rows = np.frombuffer(body, dtype=dtype)
    if rows.size and (
        np.any(rows["_n"] != len(columns))
        or any(np.any(rows[f"_len{i}"] != _WIDTHS[c.pg_type][1]) for i, c in enumerate(columns))
    ):
        raise ValueError("binary COPY rows do not have the expected columns")
    return {
        c.name: rows[f"c{i}"].astype(rows[f"c{i}"].dtype.newbyteorder("="))
        for i, c in enumerate(columns)
    }

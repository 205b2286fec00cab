"""PostgreSQL's binary formats, encoded and decoded with numpy (no per-row Python).

Two shapes only, the ones the point-in-time join moves:

* in: entity rows ``(ord bigint, key text, ts timestamptz)``, the key of variable length, as a
  binary ``COPY`` stream;
* out: columns of fixed-width, never-null values (``bigint``, ``double precision``,
  ``boolean``, ``timestamptz`` as microseconds since 1970), each sent as one array in
  PostgreSQL's binary array format (``array_send``), which
  numpy reads in place as a strided view. Nulls are sent as a bit mask column (see
  :mod:`featurestore.offline._query`), so every element has the same layout.

Arrays rather than ``COPY ... TO STDOUT`` on the way out because libpq hands a ``COPY`` stream
over one row per call: reading 250,000 rows cost ~0.2 s of Python (one generator step per row,
holding the GIL the other connections' chunks need), where a chunk's dozen arrays come in one
result row. Binary rather than CSV because PostgreSQL neither prints nor parses timestamps and
floats as text: a float8 or timestamptz travels as its 8 bytes, big-endian.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["FixedColumn", "array_field", "decode_arrays", "encode_entities"]

_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_HEADER = _SIGNATURE + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
_TRAILER = (-1).to_bytes(2, "big", signed=True)
_PG_EPOCH_US = 946_684_800_000_000
"""2000-01-01T00:00Z in microseconds since the Unix epoch: PostgreSQL's zero timestamp."""

_PREFIX = np.dtype([("n", ">i2"), ("ord_len", ">i4"), ("ord", ">i8"), ("key_len", ">i4")])
_SUFFIX = np.dtype([("ts_len", ">i4"), ("ts", ">i8")])

_WIDTHS = {"int8": (">i8", 8), "float8": (">f8", 8), "bool": ("?", 1), "timestamptz": (">i8", 8)}
_ELEMENT_OIDS = {"int8": 20, "float8": 701, "bool": 16, "timestamptz": 1184}
"""The ``pg_type`` oid an array of each kind names as its element type."""
_ARRAY_HEADER = np.dtype([("ndim", ">i4"), ("has_null", ">i4"), ("oid", ">i4")])
_DIMENSION = np.dtype([("size", ">i4"), ("lower", ">i4")])


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


def array_field(field: object) -> bytes | None:
    """A result field that should hold an ``array_send`` (bytes, or None for no rows)."""
    if field is None or isinstance(field, bytes):
        return field
    raise ValueError(f"an array field of type {type(field).__name__}, not bytes")


def decode_arrays(
    fields: Sequence[bytes | None], columns: Sequence[FixedColumn]
) -> dict[str, np.ndarray]:
    """Parse ``array_send`` results, one per column of ``columns``, all fixed-width and non-null.

    A field is None where the aggregate saw no rows. Returns native-endian arrays of equal length
    by column name. Raises ``ValueError`` when a field is not what was asked for (another element
    type, a null element, two dimensions, columns of different lengths).
    """
    if len(fields) != len(columns):
        raise ValueError(f"{len(fields)} arrays for {len(columns)} columns")
    out: dict[str, np.ndarray] = {}
    for field, column in zip(fields, columns, strict=True):
        out[column.name] = _decode_array(field, column)
    if len({len(values) for values in out.values()}) > 1:
        raise ValueError("the arrays are not of one length")
    return out


def _decode_array(field: bytes | None, column: FixedColumn) -> np.ndarray:
    kind, width = _WIDTHS[column.pg_type]
    native = np.dtype(kind).newbyteorder("=")
    if field is None:
        return np.empty(0, native)
    if len(field) < _ARRAY_HEADER.itemsize:
        raise ValueError(f"{column.name}: not a binary array")
    header = np.frombuffer(field, _ARRAY_HEADER, count=1)[0]
    if header["oid"] != _ELEMENT_OIDS[column.pg_type]:
        raise ValueError(
            f"{column.name}: an array of type oid {header['oid']}, not {column.pg_type}"
        )
    if header["has_null"]:
        raise ValueError(f"{column.name}: a null element")
    if header["ndim"] == 0:
        return np.empty(0, native)
    if header["ndim"] != 1:
        raise ValueError(f"{column.name}: an array of {header['ndim']} dimensions")
    start = _ARRAY_HEADER.itemsize + _DIMENSION.itemsize
    size = int(np.frombuffer(field, _DIMENSION, count=1, offset=_ARRAY_HEADER.itemsize)[0]["size"])
    element = np.dtype([("len", ">i4"), ("value", kind)])
    if len(field) != start + size * element.itemsize:
        raise ValueError(f"{column.name}: elements not {width} bytes wide")
    elements = np.frombuffer(field, element, offset=start)
    if np.any(elements["len"] != width):
        raise ValueError(f"{column.name}: elements not {width} bytes wide")
    values = elements["value"].astype(native)
    if column.pg_type == "timestamptz":
        values += _PG_EPOCH_US  # microseconds since 2000 -> since 1970
    return values

"""GetOnlineFeaturesResponse bytes to NumPy columns, without a Python object per value.

Two fast paths. The native decoder (``_native_columns.c``, built with the SDK where a C compiler
is present) walks the bytes once, as protobuf's parsers do, and writes each column into buffers
that become the arrays without a copy: ~40 µs for 100 entities x 10 features here. Where it is
not built, the NumPy path below reads the same layout in a few NumPy passes per column, ~3x
slower warm and more right after a call, when the core's caches are cold: each of its NumPy calls
has a fixed cost of microseconds. Both leave to protobuf what they do not read.

The wire layout (``feature_service.proto``, ``types.proto``)::

    GetOnlineFeaturesResponse  1 feature_names (string)*    2 columns (FeatureColumn)*
    FeatureColumn              1 values (Value)*    2 statuses (packed varints)
                               3 event_timestamps (Timestamp)*
    Value                      one of: 1 bytes, 2 string, 3 int32, 4 int64, 5 double, 6 float,
                               7 bool, 8 unix_timestamp; empty when unset
    Timestamp                  1 seconds (varint)    2 nanos (varint); empty at the epoch

The server writes a column's fields in that order with the statuses packed, as protobuf's own
serializers do. On that layout the NumPy path takes a few passes, and their number, not the
number of values, is what costs: a column's records (tag, one-byte length, payload) are checked
with one strided comparison of the bytes when all have one length (every double) and located by
one walk over their length bytes otherwise (a missing value among doubles; timestamps whose nanos
differ in width); doubles and floats are strided views of the bytes; the statuses are the packed
bytes themselves; varints (integers, bools) are gathered into a rows x width matrix whose
continuation bits are checked and whose 7-bit groups are weighted and summed. The columns of one
view carry the same event-time bytes; the distinct ones of a response are decoded together, in
one pass over a rows x 12 matrix of their payloads (5-byte seconds, 1970 to 3058, and nanos).

The checks make this a parse, not a guess: every record's tag and length, every payload consumed
exactly. Whatever else is valid protobuf (strings or bytes, kinds that differ between rows,
unpacked statuses, fields out of order, a time before 1978) is parsed by protobuf instead, value
by value: the same arrays, slower. tests/unit/service/test_sdk_columns.py compares each fast
path with protobuf on random responses, and the two with each other on damaged bytes.
"""

from __future__ import annotations

from collections.abc import Sized
from typing import Any

import grpc
import numpy as np
from google.protobuf.message import DecodeError
from numpy.typing import NDArray

from featurestore_client._errors import FeatureStoreClientError
from featurestore_client._proto.v1 import types_pb2
from featurestore_client._types import FeatureColumn

try:
    from featurestore_client import _native_columns
except ImportError:  # built without a C compiler: the NumPy path
    _native_columns = None  # type: ignore[assignment]

__all__ = ["decode_columns"]

Ints = NDArray[np.intp]

_NAMES, _COLUMNS = 0x0A, 0x12  # GetOnlineFeaturesResponse fields 1 and 2 (length-delimited)
_VALUE, _STATUSES, _STAMP = 0x0A, 0x12, 0x1A  # FeatureColumn fields 1, 2 and 3
_SECONDS, _NANOS = 0x08, 0x10  # Timestamp fields 1 and 2 (varints)
_DOUBLE = 0x29
_FIXED: dict[tuple[int, int], np.dtype[Any]] = {
    (_DOUBLE, 9): np.dtype("<f8"),
    (0x35, 5): np.dtype("<f4"),
}
"""Value.double_value and float_value by tag and payload size: little-endian fixed widths."""
_NATIVE: dict[str, np.dtype[Any]] = {"d": np.dtype(np.float64), "f": np.dtype(np.float32)}
"""The same, in this machine's byte order."""
_VARINT_KINDS: dict[int, Any] = {0x18: np.int32, 0x20: np.int64, 0x38: np.bool_, 0x40: np.int64}
"""Value's varint kinds by tag: int32, int64, bool and unix_timestamp (seconds)."""
_DTYPES: dict[str, Any] = {
    "double_value": np.float64,
    "float_value": np.float32,
    "int64_value": np.int64,
    "int32_value": np.int32,
    "bool_value": np.bool_,
    "unix_timestamp_value": np.int64,
}
_PRESENT, _NOT_FOUND, _MAX_STATUS = 1, 3, 4
_STATUS_CODES = bytes(c if 0 < c <= _MAX_STATUS else _NOT_FOUND for c in range(256))
"""A translation table of status numbers: unknown ones (0, or newer than this SDK) NOT_FOUND."""
_NAT = np.iinfo(np.int64).min
_NATIVE_KINDS: dict[int, np.dtype[Any]] = {
    1: np.dtype(np.float64),
    2: np.dtype(np.float32),
    3: np.dtype(np.int32),
    4: np.dtype(np.int64),
    5: np.dtype(np.bool_),
    6: np.dtype(np.int64),
}
"""The native decoder's kinds (``enum kind``): double, float, int32, int64, bool, Unix time."""
_MICROS, _BOOL, _UINT8 = np.dtype("datetime64[us]"), np.dtype(np.bool_), np.dtype(np.uint8)
_COLS = np.arange(12)


class _IrregularError(Exception):
    """Not the layout the fast path reads: protobuf parses the column instead."""


def _malformed(why: str) -> FeatureStoreClientError:
    return FeatureStoreClientError(
        grpc.StatusCode.INTERNAL, f"malformed GetOnlineFeaturesResponse: {why}"
    )


def _one_name_per_column(names: Sized, columns: Sized) -> None:
    if len(names) != len(columns):
        raise _malformed(f"{len(names)} feature names for {len(columns)} columns")


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """The varint at ``pos`` and the position after it (IndexError past the end)."""
    result = shift = 0
    while shift < 70:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
    raise _malformed("a varint longer than 10 bytes")


def decode_columns(
    data: bytes, rows: int, *, fast_only: bool = False, native: bool = True
) -> list[FeatureColumn]:
    """The columns of a serialized GetOnlineFeaturesResponse to a request of ``rows`` entities.

    ``fast_only`` raises where the fast path (native, else NumPy) does not apply instead of
    parsing with protobuf (the tests check that the server's answers never need protobuf's
    path). ``native=False`` takes the NumPy path where the native decoder is built.

    Raises:
        FeatureStoreClientError: INTERNAL: the bytes are not such a response, or a column has
            not one value, status and event time per entity row.
    """
    if native and _native_columns is not None:
        return _decode_natively(data, rows, fast_only)
    names: list[str] = []
    bodies: list[tuple[int, int]] = []
    pos, end = 0, len(data)
    try:
        while pos < end:
            key = data[pos]
            pos += 1
            if key >= 0x80:
                key, pos = _varint(data, pos - 1)
            wire = key & 7
            if wire == 2:
                size = data[pos]
                pos += 1
                if size >= 0x80:
                    size, pos = _varint(data, pos - 1)
                if key == _NAMES:
                    names.append(data[pos : pos + size].decode())
                elif key == _COLUMNS:
                    bodies.append((pos, pos + size))
                pos += size
            elif wire == 0:
                _, pos = _varint(data, pos)
            elif wire in (1, 5):
                pos += 8 if wire == 1 else 4
            else:
                raise _malformed(f"wire type {wire} at byte {pos}")
    except (IndexError, UnicodeDecodeError) as exc:
        raise _malformed(str(exc)) from None
    if pos != end:
        raise _malformed("the last field runs past the end")
    _one_name_per_column(names, bodies)
    return _Response(data, rows, fast_only).columns(names, bodies)


def _decode_natively(data: bytes, rows: int, fast_only: bool) -> list[FeatureColumn]:
    """:func:`decode_columns` by the native decoder, one pass in C (``_native_columns.c``)."""
    assert _native_columns is not None
    try:
        names, parts = _native_columns.decode(data, rows)
    except ValueError as exc:
        raise _malformed(str(exc)) from None
    _one_name_per_column(names, parts)
    columns = []
    arrays: dict[tuple[int, np.dtype[Any]], NDArray[Any]] = {}

    def array(buffer: bytes, dtype: np.dtype[Any]) -> NDArray[Any]:
        """One array per buffer: the decoder gives equal buffers as one object (a view's times)."""
        made = arrays.get((id(buffer), dtype))
        if made is None:
            made = arrays[id(buffer), dtype] = np.frombuffer(buffer, dtype)
        return made

    for name, part in zip(names, parts, strict=True):
        match part:
            case (start, stop):  # not numbers of one kind, or not one of each per row
                if fast_only:
                    raise _IrregularError(f"column {name} is not in the native path's layout")
                columns.append(_by_protobuf(name, data[start:stop], rows))
            case (kind, values, is_set, statuses, micros):
                columns.append(
                    FeatureColumn(
                        name,
                        np.frombuffer(values, _NATIVE_KINDS[kind]),
                        array(is_set, _BOOL),
                        array(statuses, _UINT8),
                        array(micros, _MICROS),
                    )
                )
    return columns


class _Response:
    """One response's bytes, and what its columns share.

    The columns of one view carry the same event-time bytes (decoded once, together with the
    other views'), and the columns where every value is set share one mask.
    """

    def __init__(self, data: bytes, rows: int, fast_only: bool = False) -> None:
        self.fast_only = fast_only
        self.data = data
        self.array = np.frombuffer(data, np.uint8)
        self.rows = rows
        self.all_set = _frozen(np.ones(rows, np.bool_))
        self.repeats: dict[int, bytes] = {}
        self.layouts: dict[int, tuple[Ints, Ints, int]] = {}
        self.present: tuple[Ints, NDArray[np.bool_], Ints, int | None] | None = None
        """Per tag, the last irregular run of records found: payload starts and end relative to
        its first record, and sizes (the columns of one view miss the same entities)."""
        self.value_tags, self.nines, self.double_tags, self.all_present = (
            bytes((byte,)) * rows for byte in (_VALUE, 9, _DOUBLE, _PRESENT)
        )

    def columns(self, names: list[str], bodies: list[tuple[int, int]]) -> list[FeatureColumn]:
        """The columns of these names whose FeatureColumn messages are ``data[start:stop]``."""
        decoded: list[FeatureColumn | tuple[str, NDArray[Any], NDArray[np.bool_], Any, bytes]]
        decoded = []
        stamps: dict[bytes, tuple[Ints, Ints]] = {}
        for name, (start, stop) in zip(names, bodies, strict=True):
            try:
                decoded.append((name, *self._column(start, stop, stamps)))
            except (_IrregularError, IndexError):
                if self.fast_only:
                    why = f"column {name} is not in the NumPy path's layout"
                    raise _IrregularError(why) from None
                decoded.append(_by_protobuf(name, self.data[start:stop], self.rows))
        times = self._times(stamps)
        return [
            part if isinstance(part, FeatureColumn) else FeatureColumn(*part[:4], times[part[4]])
            for part in decoded
        ]

    def _column(
        self, start: int, stop: int, stamps: dict[bytes, tuple[Ints, Ints]]
    ) -> tuple[NDArray[Any], NDArray[np.bool_], NDArray[np.uint8], bytes]:
        """One column's values, whether each is set, statuses, and its event times' bytes.

        The event times are located in ``stamps`` (under their bytes), to be decoded later.
        """
        data, rows = self.data, self.rows
        if rows == 0:
            raise _IrregularError
        end = start + 11 * rows
        if (
            end < stop
            and data[start + 2 : end : 11] == self.double_tags
            and data[start:end:11] == self.value_tags
            and data[start + 1 : end : 11] == self.nines
        ):  # every value a double (the common column): a strided view of the bytes, copied
            view: NDArray[Any] = np.ndarray((rows,), _FIXED[_DOUBLE, 9], data, start + 3, (11,))
            values, is_set, pos = view.astype(np.float64), self.all_set, end
            values.flags.writeable = False
        else:
            starts, sizes, pos = self._records(start, stop, _VALUE, remember=True)
            values, is_set = self._values(starts, sizes)
        if data[pos] != _STATUSES:
            raise _IrregularError
        size = data[pos + 1]
        pos += 2
        if size >= 0x80:
            size, pos = _varint(data, pos - 1)
        codes = data[pos : pos + size]
        pos += size
        if size != rows or pos > stop or not codes.isascii():
            raise _IrregularError  # unpacked, a status of two bytes, or not one per row
        if codes != self.all_present:
            codes = codes.translate(_STATUS_CODES)  # unknown numbers read as NOT_FOUND
        key = data[pos:stop]
        if key not in stamps:
            stamp_starts, stamp_sizes, end = self._records(pos, stop, _STAMP)
            if end != stop:
                raise _IrregularError
            stamps[key] = (_array(stamp_starts), np.full(rows, stamp_sizes))
        return values, is_set, np.frombuffer(codes, np.uint8), key

    def _repeat(self, byte: int) -> bytes:
        """``byte`` once per row."""
        repeated = self.repeats.get(byte)
        if repeated is None:
            repeated = self.repeats[byte] = bytes((byte,)) * self.rows
        return repeated

    def _records(
        self, pos: int, stop: int, tag: int, *, remember: bool = False
    ) -> tuple[Ints | range, Ints | int, int]:
        """Where the payloads of ``rows`` fields ``tag`` from ``pos`` start, their sizes, the end.

        All of one size (one strided comparison): a range of starts and that size. Else the layout
        found last (``remember``: the Values of a view's columns, which miss the same entities),
        checked at every head; or the heads found by their bytes (:meth:`_heads`), or one walk
        over the length bytes where a payload byte looks like a head. A payload of 128 bytes or
        more is irregular.
        """
        data, rows, array = self.data, self.rows, self.array
        size = data[pos + 1]
        if data[pos] != tag or size >= 0x80:
            raise _IrregularError
        step = size + 2
        end = pos + rows * step
        if (
            end <= stop
            and data[pos:end:step] == self._repeat(tag)
            and data[pos + 1 : end : step] == self._repeat(size)
        ):
            return range(pos + 2, end + 2, step), size, end
        known = self.layouts.get(tag) if remember else None
        if known is not None:
            found_again = _same_layout(array, pos, stop, tag, known)
            if found_again is not None:
                return found_again
        found_by_bytes = self._heads(pos, stop, tag)
        if found_by_bytes is None:
            found_by_bytes = self._walk(pos, stop, tag)
        if remember:
            starts, sizes, end = found_by_bytes
            self.layouts[tag] = (starts - pos, sizes, end - pos)
        return found_by_bytes

    def _walk(self, pos: int, stop: int, tag: int) -> tuple[Ints, Ints, int]:
        """:meth:`_records` one length byte at a time (a payload byte looks like a head)."""
        data, array = self.data, self.array
        found = [pos]
        append = found.append
        for _ in range(self.rows - 1):
            pos += data[pos + 1] + 2
            append(pos)
        heads = np.array(found, dtype=np.intp)
        end = pos + data[pos + 1] + 2
        sizes = array[heads + 1].astype(np.intp)
        if end > stop or (array[heads] != tag).any() or (sizes >= 0x80).any():
            raise _IrregularError
        return heads + 2, sizes, end

    def _heads(self, pos: int, stop: int, tag: int) -> tuple[Ints, Ints, int] | None:
        """:meth:`_records` in a few NumPy passes, when the heads can be told by their bytes.

        A head is ``tag`` followed by a length of 0 or by the byte the first non-empty record
        has after its length (a Value's kind, a Timestamp's seconds tag). The first ``rows``
        such places must chain, each record ending where the next begins; None where they do not
        (a payload byte that looks like a head): walk instead.
        """
        data, rows = self.data, self.rows
        first = pos
        while data[first + 1] == 0 and first + 2 < stop:  # empty records: find the kind byte
            first += 2
        second = data[first + 2]
        span = stop - pos
        near = self.array[pos : stop + 2]
        if len(near) < span + 2:
            near = np.concatenate((near, np.zeros(span + 2 - len(near), np.uint8)))
        looks = (near[:span] == tag) & ((near[1 : span + 1] == 0) | (near[2:] == second))
        heads = np.flatnonzero(looks)[:rows]
        if len(heads) < rows or heads[0] != 0:
            return None
        sizes = near[heads + 1].astype(np.intp)
        ends = heads + sizes + 2
        if (ends[:-1] != heads[1:]).any() or sizes.max() >= 0x80 or ends[-1] > span:
            return None
        return heads + (pos + 2), sizes, pos + int(ends[-1])

    def _values(
        self, starts: Ints | range, sizes: Ints | int
    ) -> tuple[NDArray[Any], NDArray[np.bool_]]:
        """The Values whose payloads are at ``starts``: all of one kind, or not set."""
        data, rows, array = self.data, self.rows, self.array
        set_size: int | None
        if isinstance(sizes, int):
            if sizes == 0:
                return _frozen(np.full(rows, np.nan)), _frozen(np.zeros(rows, np.bool_))
            first, step = starts[0], sizes + 2
            tag = data[first]
            if data[first : first + rows * step : step] != self._repeat(tag):
                raise _IrregularError  # kinds that differ between rows
            if (tag, sizes) in _FIXED:  # a strided view of the bytes, copied
                dtype = _FIXED[tag, sizes]
                view: NDArray[Any] = np.ndarray((rows,), dtype, data, first + 1, (step,))
                return _frozen(view.astype(_NATIVE[dtype.char])), self.all_set
            is_set, set_starts, set_size = self.all_set, _array(starts), sizes
        else:
            is_set, present, set_size = self._present(sizes)
            set_starts = _array(starts)[present]
            if not len(set_starts):
                return _frozen(np.full(rows, np.nan)), is_set
            tags = array[set_starts]
            tag = int(tags[0])
            if (tags != tag).any():
                raise _IrregularError  # kinds that differ between rows
        fixed = _FIXED.get((tag, set_size)) if set_size is not None else None
        if fixed is not None:
            raw = array[set_starts[:, None] + _COLS[1 : fixed.itemsize + 1]]  # rows x width
            values: NDArray[Any] = np.full(rows, np.nan, _NATIVE[fixed.char])
            values[is_set] = raw.view(fixed)[:, 0]
            return _frozen(values), is_set
        set_sizes = np.full(len(set_starts), sizes) if isinstance(sizes, int) else sizes[is_set]
        kind = _VARINT_KINDS.get(tag)
        if kind is None:
            raise _IrregularError  # strings and bytes: a Python object each, which protobuf makes
        numbers = _varints(array, set_starts, set_sizes)
        values = np.zeros(rows, kind)
        values[is_set] = numbers != 0 if kind is np.bool_ else numbers.astype(kind)
        return _frozen(values), is_set

    def _present(self, sizes: Ints) -> tuple[NDArray[np.bool_], Ints, int | None]:
        """Which Values of these sizes are set, their rows, and their one size (None: several).

        Kept for the next column: the columns of one view miss the same entities, and their
        records are found with the very same sizes array (:meth:`_records`).
        """
        if self.present is None or self.present[0] is not sizes:
            is_set = _frozen(sizes > 0)
            present = np.flatnonzero(is_set)
            set_sizes = sizes[present]
            one = (
                int(set_sizes[0]) if len(set_sizes) and (set_sizes == set_sizes[0]).all() else None
            )
            self.present = (sizes, is_set, present, one)
        return self.present[1:]

    def _times(self, stamps: dict[bytes, tuple[Ints, Ints]]) -> dict[bytes, NDArray[Any]]:
        """The event times of each distinct stamps region, all decoded in one pass if they can."""
        if not stamps:
            return {}
        try:
            micros = _timestamps(
                self.array,
                np.concatenate([starts for starts, _ in stamps.values()]),
                np.concatenate([sizes for _, sizes in stamps.values()]),
            )
            regions = micros.reshape(len(stamps), self.rows).view("datetime64[us]")
            return {key: _frozen(times) for key, times in zip(stamps, regions, strict=True)}
        except _IrregularError:
            if self.fast_only:
                raise
            return {key: _times_by_protobuf(key, self.rows) for key in stamps}


def _same_layout(
    array: NDArray[np.uint8], pos: int, stop: int, tag: int, known: tuple[Ints, Ints, int]
) -> tuple[Ints, Ints, int] | None:
    """The records from ``pos`` if they are laid out as ``known`` (relative starts, sizes, end).

    Each head is two bytes before its payload and the next follows the payload, so a tag and a
    length byte found at every known head, with the run inside ``stop``, is the whole parse.
    """
    relative, sizes, span = known
    if pos + span > stop:
        return None
    heads = relative + (pos - 2)
    if (array[heads] != tag).any() or (array[heads + 1] != sizes).any():
        return None
    return heads + 2, sizes, pos + span


def _array(starts: Ints | range) -> Ints:
    if isinstance(starts, np.ndarray):
        return starts
    return np.arange(starts.start, starts.stop, starts.step)


def _frozen(array: NDArray[Any]) -> NDArray[Any]:
    """``array``, read-only (a result is frozen, and columns share arrays)."""
    array.flags.writeable = False
    return array


def _varint_bytes(first: int, width: int) -> list[tuple[int, int, int]]:
    """(byte, mask, pattern) of a varint of ``width`` bytes from byte ``first``."""
    return [(first + i, 0x80, 0x80 if i < width - 1 else 0x00) for i in range(width)]


def _tables(
    layouts: dict[int, list[tuple[int, int, int]]],
) -> tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.uint8]]:
    """Per payload size (< 128): a mask and pattern for its first 12 bytes, and its varint bits.

    The varint bits are 0x7F on the bytes of its varints.
    ``layouts`` gives each valid size's (byte, mask, pattern) triples: a tag (0xFF, the tag) or a
    varint byte (0x80, 0x80 when another follows, 0x00 for its last). A size it does not give
    matches no bytes; size 0 (an empty message) matches any.
    """
    mask = np.zeros((128, 12), np.uint8)
    pattern = np.zeros((128, 12), np.uint8)
    bits = np.zeros((128, 12), np.uint8)
    pattern[1:, 0] = 1  # under a mask of 0: never matches
    for size, fields in layouts.items():
        pattern[size, 0] = 0
        for byte, byte_mask, byte_pattern in fields:
            mask[size, byte], pattern[size, byte] = byte_mask, byte_pattern
            if byte_mask == 0x80:
                bits[size, byte] = 0x7F
    return mask, pattern, bits


_STAMP_TABLES = _tables(
    {
        size: [
            (0, 0xFF, _SECONDS),
            *_varint_bytes(1, 5),
            *([(6, 0xFF, _NANOS), *_varint_bytes(7, size - 7)] if size > 6 else []),
        ]
        for size in (6, 8, 9, 10, 11, 12)
    }
)
"""Timestamps: seconds in 5 bytes (1978 to 3058), then nanos in 1 to 5 bytes, or none."""
_STAMP_WEIGHTS = np.zeros((12, 2))
_STAMP_WEIGHTS[1:6, 0] = _STAMP_WEIGHTS[7:12, 1] = 128.0 ** np.arange(5)
"""Seconds and nanos from a Timestamp's varint bits (exact in float64: below 2**35)."""
_VARINT_TABLES = _tables({1 + width: _varint_bytes(1, width) for width in range(1, 11)})
"""A Value of a varint kind: its tag (checked apart), then a varint of 1 to 10 bytes."""
_VARINT_WEIGHTS = np.zeros(12, np.uint64)
_VARINT_WEIGHTS[1:11] = [128**k for k in range(10)]
"""The weight of each 7-bit group of a varint (wrapping modulo 2**64, as int64 does)."""


def _matching(
    array: NDArray[np.uint8], starts: Ints, sizes: Ints, tables: tuple[NDArray[np.uint8], ...]
) -> NDArray[np.uint8]:
    """The varint bits of the payloads at ``starts``, each checked against its size's layout."""
    mask, pattern, bits = tables
    payload = array.take(starts[:, None] + _COLS, mode="clip")  # rows x 12
    if ((payload & mask[sizes]) != pattern[sizes]).any():
        raise _IrregularError
    groups: NDArray[np.uint8] = payload & bits[sizes]
    return groups


def _varints(array: NDArray[np.uint8], starts: Ints, sizes: Ints) -> NDArray[np.int64]:
    """The varints of the Values (tag, varint) of ``sizes`` bytes at ``starts``."""
    groups = _matching(array, starts, sizes, _VARINT_TABLES)
    numbers: NDArray[np.uint64] = groups.astype(np.uint64) @ _VARINT_WEIGHTS
    return numbers.view(np.int64)


def _timestamps(array: NDArray[np.uint8], starts: Ints, sizes: Ints) -> NDArray[np.int64]:
    """The Timestamps whose payloads are at ``starts``: microseconds, NaT's value where empty."""
    seconds_nanos = (_matching(array, starts, sizes, _STAMP_TABLES) @ _STAMP_WEIGHTS).astype(
        np.int64
    )
    # nanos is an int32 field: protobuf keeps a varint's low 32 bits, signed (as the C path does)
    nanos = (seconds_nanos[:, 1] & 0xFFFFFFFF).astype(np.uint32).view(np.int32)
    micros = seconds_nanos[:, 0] * 1_000_000 + nanos.astype(np.int64) // 1000
    micros[sizes == 0] = _NAT
    return micros


def _micros(stamps: Any, name: str) -> NDArray[Any]:
    """Timestamps as datetime64[us] (NaT where unset, as at the epoch), value by value."""
    micros = [
        t.seconds * 1_000_000 + t.nanos // 1000 if t.seconds or t.nanos else _NAT for t in stamps
    ]
    try:
        return _frozen(np.array(micros, np.int64).view("datetime64[us]"))
    except OverflowError:
        raise _malformed(f"{name}: an event time out of range") from None


def _times_by_protobuf(region: bytes, rows: int) -> NDArray[Any]:
    """The event times of a region of ``event_timestamps`` fields, parsed by protobuf."""
    try:
        stamps = types_pb2.FeatureColumn.FromString(region).event_timestamps
    except DecodeError as exc:
        raise _malformed(f"event times: {exc}") from None
    if len(stamps) != rows:
        raise _malformed(f"{len(stamps)} event times for {rows} entity rows")
    return _micros(stamps, "event times")


def _by_protobuf(name: str, body: bytes, rows: int) -> FeatureColumn:
    """A column parsed by protobuf, value by value (any valid encoding)."""
    try:
        column = types_pb2.FeatureColumn.FromString(body)
    except DecodeError as exc:
        raise _malformed(f"column {name}: {exc}") from None
    counts = (len(column.values), len(column.statuses), len(column.event_timestamps))
    if counts != (rows, rows, rows):
        raise _malformed(
            f"column {name} has {counts[0]} values, {counts[1]} statuses and {counts[2]} event "
            f"times for {rows} entity rows"
        )
    kinds = [value.WhichOneof("kind") for value in column.values]
    present = {kind for kind in kinds if kind is not None}
    dtype: Any = object
    if not present:
        dtype = np.float64
    elif len(present) == 1:
        dtype = _DTYPES.get(next(iter(present)), object)
    fill = np.nan if dtype in (np.float64, np.float32) else None if dtype is object else 0
    values = np.empty(rows, dtype)
    values[:] = [
        fill if k is None else getattr(v, k) for v, k in zip(column.values, kinds, strict=True)
    ]
    statuses = np.array(
        [s if 0 < s <= _MAX_STATUS else _NOT_FOUND for s in column.statuses], np.uint8
    )
    is_set = np.array([k is not None for k in kinds], np.bool_)
    return FeatureColumn(
        name,
        _frozen(values),
        _frozen(is_set),
        _frozen(statuses),
        _micros(column.event_timestamps, f"column {name}"),
    )

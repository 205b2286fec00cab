"""The SDK's column decoding of GetOnlineFeaturesResponse bytes, against protobuf's own parse.

Responses are built and serialized by protobuf; each decoded value, status and event time must
be what protobuf reads from the same bytes. The layout the server writes (doubles, integers,
missing entities, event times of millisecond or whole-second precision) must take the fast path
(the native decoder, and the NumPy one where it is not built), not the value-by-value one. Both
fast paths are tested.
"""

from __future__ import annotations

import importlib.util
import struct
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import grpc
import numpy as np
import pytest
from featurestore_client import FeatureStatus
from featurestore_client import FeatureStoreClientError
from featurestore_client._columns import _IrregularError
from featurestore_client._columns import _timestamps
from featurestore_client._columns import decode_columns
from featurestore_client._proto.v1 import feature_service_pb2
from featurestore_client._proto.v1 import types_pb2
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
STATUSES = {
    1: FeatureStatus.PRESENT,
    2: FeatureStatus.NULL_VALUE,
    3: FeatureStatus.NOT_FOUND,
    4: FeatureStatus.OUTSIDE_MAX_AGE,
}
SCALARS: dict[str, st.SearchStrategy[Any]] = {
    "double_value": st.floats(allow_nan=False),
    "float_value": st.floats(width=32, allow_nan=False),
    "int64_value": st.integers(-(2**63), 2**63 - 1),
    "int32_value": st.integers(-(2**31), 2**31 - 1),
    "bool_value": st.booleans(),
    "unix_timestamp_value": st.integers(-(2**63), 2**63 - 1),
    "string_value": st.text(max_size=4),
    "bytes_value": st.binary(max_size=4),
}
DTYPES = {
    "double_value": np.float64,
    "float_value": np.float32,
    "int64_value": np.int64,
    "int32_value": np.int32,
    "bool_value": np.bool_,
    "unix_timestamp_value": np.int64,
}
NOW_S = 1_764_000_000
Stamp = tuple[int, int] | None


def stamps(rows: int) -> st.SearchStrategy[list[Stamp]]:
    """Event times: unset, recent (whole seconds, milliseconds, nanoseconds) or any valid one."""
    recent = st.tuples(
        st.integers(NOW_S - 10**6, NOW_S),
        st.one_of(st.just(0), st.integers(0, 999).map(lambda ms: ms * 10**6)),
    )
    anywhere = st.tuples(st.integers(-62_135_596_800, 253_402_300_799), st.integers(0, 10**9 - 1))
    # Mostly recent, so that most responses take the NumPy path; now and then any valid time.
    stamp = st.integers(0, 19).flatmap(
        lambda k: st.none() if k < 3 else anywhere if k == 19 else recent
    )
    return st.lists(stamp, min_size=rows, max_size=rows)


@st.composite
def responses(draw: st.DrawFn) -> tuple[bytes, int, list[dict[str, Any]]]:
    """A serialized response and, per column, what protobuf's message says each row holds."""
    rows = draw(st.integers(1, 12))
    views = draw(st.lists(stamps(rows), min_size=1, max_size=2))
    message = feature_service_pb2.GetOnlineFeaturesResponse()
    expected = []
    for j in range(draw(st.integers(1, 4))):
        kinds = draw(st.lists(st.sampled_from(sorted(SCALARS)), min_size=1, max_size=2))
        values = draw(
            st.lists(
                st.one_of(st.none(), st.sampled_from(kinds).flatmap(_kind_and_scalar)),
                min_size=rows,
                max_size=rows,
            )
        )
        # Mostly known statuses; now and then one this SDK does not know, or of two bytes.
        some_code = st.sampled_from([1] * 8 + [2, 3, 4, 0, 5, 200])
        codes = draw(st.lists(some_code, min_size=rows, max_size=rows))
        times = draw(st.one_of(st.sampled_from(views), stamps(rows)))
        message.feature_names.append(f"view:f{j}")
        column = message.columns.add()
        for value, code, stamp in zip(values, codes, times, strict=True):
            wire = column.values.add()
            if value is not None:
                setattr(wire, *value)
            column.statuses.append(code)  # type: ignore[arg-type]  # open enum: any number
            when = column.event_timestamps.add()
            if stamp is not None:
                when.seconds, when.nanos = stamp
        expected.append({"values": values, "codes": codes, "times": times})
    return message.SerializeToString(), rows, expected


def _kind_and_scalar(kind: str) -> st.SearchStrategy[tuple[str, Any]]:
    return SCALARS[kind].map(lambda scalar: (kind, scalar))


def _read_back(kind: str, scalar: Any) -> Any:
    """The scalar as protobuf reads it back (a float is rounded to 32 bits)."""
    if kind == "float_value":
        return float(np.float32(scalar))
    return scalar


def _event_time(stamp: Stamp) -> datetime | None:
    if stamp is None or stamp == (0, 0):
        return None
    seconds, nanos = stamp
    return EPOCH + timedelta(seconds=seconds, microseconds=nanos // 1000)


@pytest.mark.parametrize("native", [True, False], ids=["native", "numpy"])
@settings(max_examples=60, deadline=None)
@given(case=responses())
def test_every_value_status_and_time_is_protobufs(
    case: tuple[bytes, int, list[dict[str, Any]]],
    native: bool,
) -> None:
    data, rows, expected = case
    columns = decode_columns(data, rows, native=native)
    assert [c.name for c in columns] == [f"view:f{j}" for j in range(len(expected))]
    for column, want in zip(columns, expected, strict=True):
        kinds = {value[0] for value in want["values"] if value is not None}
        dtype = DTYPES.get(next(iter(kinds)), object) if len(kinds) == 1 else object
        assert column.values.dtype == (np.float64 if not kinds else dtype)
        for i in range(rows):
            value = want["values"][i]
            got = column.at(i)
            assert got.value == (None if value is None else _read_back(*value))
            assert got.status is STATUSES.get(want["codes"][i], FeatureStatus.NOT_FOUND)
            assert got.event_time == _event_time(want["times"][i])
        assert list(column.is_set) == [v is not None for v in want["values"]]
        assert column.statuses.tolist() == [c if 0 < c <= 4 else 3 for c in want["codes"]]
        assert not column.values.flags.writeable and not column.event_times.flags.writeable


def _server_like(rows: int, *, missing: set[int], nanos_ms: bool) -> bytes:
    """What the server sends: doubles and an integer, the rows of two views, some not found."""
    message = feature_service_pb2.GetOnlineFeaturesResponse()
    for name in ("bars:close", "bars:volume", "bars:trades", "rolling:vwap"):
        message.feature_names.append(name)
        column = message.columns.add()
        for i in range(rows):
            value, stamp = column.values.add(), column.event_timestamps.add()
            if i in missing:
                column.statuses.append(types_pb2.FEATURE_STATUS_NOT_FOUND)
                continue
            if name == "bars:trades":
                value.int64_value = i * 37
            else:
                value.double_value = i / 3
            column.statuses.append(types_pb2.FEATURE_STATUS_PRESENT)
            stamp.seconds = NOW_S - i - (5 if name.startswith("rolling") else 0)
            stamp.nanos = (i * 7 % 1000) * 10**6 if nanos_ms else 0
    return message.SerializeToString()


@pytest.mark.parametrize("native", [True, False], ids=["native", "numpy"])
def test_fast_only_refuses_what_needs_protobuf(native: bool) -> None:
    column = types_pb2.FeatureColumn(statuses=[types_pb2.FEATURE_STATUS_PRESENT])
    column.values.add(string_value="IBM")
    column.event_timestamps.add()
    with pytest.raises(_IrregularError, match="column v:f"):
        decode_columns(_one_column(column), 1, fast_only=True, native=native)
    assert decode_columns(_one_column(column), 1, native=native)[0].at(0).value == "IBM"


@pytest.mark.parametrize("native", [True, False], ids=["native", "numpy"])
@pytest.mark.parametrize("missing", [set(), {0, 7}])
@pytest.mark.parametrize("nanos_ms", [False, True])
def test_the_servers_layout_takes_the_fast_path(
    missing: set[int], nanos_ms: bool, native: bool
) -> None:
    rows = 100
    data = _server_like(rows, missing=missing, nanos_ms=nanos_ms)
    decoded = decode_columns(data, rows, fast_only=True, native=native)  # raises where it is not
    assert decoded[0].event_times is decoded[1].event_times  # one view: decoded once
    assert decoded[2].values.dtype == np.int64
    assert decoded[2].values[5] == 185 and decoded[0].values[3] == 1.0
    set_rows = [bool(decoded[0].is_set[i]) for i in (0, 1, 7)]
    assert set_rows == [0 not in missing, True, 7 not in missing]


@pytest.mark.parametrize("native", [True, False], ids=["native", "numpy"])
def test_a_column_missing_other_entities_is_not_read_with_the_layout_found_before(
    native: bool,
) -> None:
    """The layout found for one column's Values is tried on the next, refused where it differs."""
    message = feature_service_pb2.GetOnlineFeaturesResponse()
    layouts = {"a": {1}, "b": {1}, "c": {2}, "d": {1, 2}, "e": set(), "f": {3}}
    for name, missing in layouts.items():
        message.feature_names.append(f"v:{name}")
        wire = message.columns.add()
        for i in range(5):
            value = wire.values.add()
            if i not in missing:
                value.double_value = i + ord(name) / 1000
            wire.statuses.append(types_pb2.FEATURE_STATUS_PRESENT)
            wire.event_timestamps.add(seconds=NOW_S, nanos=i * 10**6)
    decoded = decode_columns(message.SerializeToString(), 5, fast_only=True, native=native)
    for column, (name, missing) in zip(decoded, layouts.items(), strict=True):
        assert [bool(s) for s in column.is_set] == [i not in missing for i in range(5)], name
        present = [i for i in range(5) if i not in missing]
        assert column.values[present].tolist() == [i + ord(name) / 1000 for i in present], name


@pytest.mark.parametrize("native", [True, False], ids=["native", "numpy"])
def test_a_payload_byte_that_looks_like_a_head_is_walked_past(native: bool) -> None:
    """A double whose bytes read 0a 00 (an empty Value's head), among missing values."""
    (tricky,) = struct.unpack("<d", b"\x0a\x00" + b"\x01" * 6)
    column = types_pb2.FeatureColumn()
    for i, value in enumerate([tricky, None, tricky, 2.5, None]):
        wire = column.values.add()
        if value is not None:
            wire.double_value = value
        column.statuses.append(types_pb2.FEATURE_STATUS_PRESENT)
        column.event_timestamps.add(seconds=NOW_S, nanos=i * 10**6 * (i % 2))
    (decoded,) = decode_columns(_one_column(column), 5, fast_only=True, native=native)
    assert decoded.values[[0, 2, 3]].tolist() == [tricky, tricky, 2.5]
    assert [bool(s) for s in decoded.is_set] == [True, False, True, True, False]


@pytest.mark.parametrize("native", [True, False], ids=["native", "numpy"])
def test_a_time_before_1978_is_not_the_numpy_paths(native: bool) -> None:
    stamp = types_pb2.FeatureColumn()
    stamp.event_timestamps.add(seconds=86_400)
    region = stamp.SerializeToString()
    with pytest.raises(_IrregularError):
        _timestamps(np.frombuffer(region, np.uint8), np.array([2]), np.array([region[1]]))
    message = types_pb2.FeatureColumn(statuses=[types_pb2.FEATURE_STATUS_PRESENT])
    message.values.add(double_value=1.5)
    message.event_timestamps.add(seconds=86_400)
    assert decode_columns(_one_column(message), 1, native=native)[0].at(
        0
    ).event_time == EPOCH + timedelta(days=1)


@pytest.mark.parametrize("native", [True, False], ids=["native", "numpy"])
def test_a_nanos_varint_past_32_bits_is_read_as_protobuf_reads_it(native: bool) -> None:
    """int32 ``nanos`` keeps the varint's low 32 bits, signed: both fast paths as protobuf.

    The varint c0 ba a2 80 08 is 2,148,048,192; as an int32 it is -2,146,919,104 (a byte of a
    valid time changed in transit, found by the damaged-bytes test).
    """
    message = types_pb2.FeatureColumn()
    for i in range(4):
        message.values.add(double_value=float(i))
        message.statuses.append(types_pb2.FEATURE_STATUS_PRESENT)
        message.event_timestamps.add(seconds=NOW_S, nanos=269_000_000)
    data = _one_column(message)
    valid = message.event_timestamps[0].SerializeToString()  # ... 10 c0 ba a2 80 01
    damaged = valid[:-1] + b"\x08"  # the nanos varint's last byte, 0x01 -> 0x08
    data = data[::-1].replace(valid[::-1], damaged[::-1], 1)[::-1]  # the last row's time
    parsed = feature_service_pb2.GetOnlineFeaturesResponse.FromString(data)
    nanos = parsed.columns[0].event_timestamps[3].nanos
    assert nanos == 2_148_048_192 - 2**32
    (decoded,) = decode_columns(data, 4, native=native)
    assert decoded.event_times.astype(np.int64).tolist()[3] == NOW_S * 10**6 + nanos // 1000


def _one_column(column: types_pb2.FeatureColumn, name: str = "v:f") -> bytes:
    message = feature_service_pb2.GetOnlineFeaturesResponse(feature_names=[name])
    message.columns.append(column)
    return message.SerializeToString()


@pytest.mark.parametrize("native", [True, False], ids=["native", "numpy"])
@pytest.mark.parametrize(
    ("data", "rows", "says"),
    [
        (b"\x0a\x05abc", 1, "malformed GetOnlineFeaturesResponse"),
        (b"\x0f", 1, "wire type 7"),
        (_server_like(3, missing=set(), nanos_ms=False)[:-3], 3, "malformed"),
        (_server_like(3, missing=set(), nanos_ms=False), 4, "3 values, 3 statuses and 3 event"),
        (feature_service_pb2.GetOnlineFeaturesResponse(feature_names=["a"]).SerializeToString(), 1,
         "1 feature names for 0 columns"),
    ],
)  # fmt: skip
def test_bytes_that_are_not_a_response_raise_internal(
    data: bytes, rows: int, says: str, native: bool
) -> None:
    with pytest.raises(FeatureStoreClientError) as caught:
        decode_columns(data, rows, native=native)
    assert caught.value.code is grpc.StatusCode.INTERNAL
    assert says in caught.value.details


def test_the_native_decoder_is_built() -> None:
    """``make setup`` builds it (a C compiler is one of its packages): the SDK's speed is its."""
    assert importlib.util.find_spec("featurestore_client._native_columns") is not None


def _outcome(data: bytes, rows: int, native: bool) -> object:
    """What decoding gives: every column's arrays as lists, or that the bytes were refused."""
    try:
        columns = decode_columns(data, rows, native=native)
    except FeatureStoreClientError as error:
        return error.code
    return [
        (
            c.name,
            str(c.values.dtype),
            [None if v != v else v for v in c.values.tolist()],  # NaN compares unequal
            c.is_set.tolist(),
            c.statuses.tolist(),
            c.event_times.astype(np.int64).tolist(),
        )
        for c in columns
    ]


@settings(max_examples=300, deadline=None)
@given(responses(), st.data())
def test_damaged_bytes_decode_alike_on_both_paths(
    case: tuple[bytes, int, list[dict[str, Any]]], data: st.DataObject
) -> None:
    """Bytes changed, cut or added: the native decoder answers as the NumPy path and protobuf do."""
    raw, rows, _ = case
    damaged = bytearray(raw)
    for _ in range(data.draw(st.integers(0, 2))):
        at = data.draw(st.integers(0, len(damaged) - 1))
        damaged[at] = data.draw(st.integers(0, 255))
    if data.draw(st.integers(0, 2)) == 0:
        cut = data.draw(st.integers(0, len(damaged)))
        damaged = damaged[:cut] + data.draw(st.binary(max_size=3))
    rows += data.draw(st.sampled_from([0, 0, 0, -1, 1]))
    native = _outcome(bytes(damaged), rows, True)
    assert native == _outcome(bytes(damaged), rows, False)

"""The C-level column framing of the raw GetOnlineFeatures path against value-by-value framing."""

from __future__ import annotations

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from featurestore._proto.v1 import types_pb2
from featurestore.errors import FeatureStoreError
from featurestore.online import ValueType
from featurestore.online.layout import encode_value
from featurestore.service.raw_features import _present_values
from featurestore.service.raw_features import _view_rows
from featurestore.service.raw_features import _view_rows_by_stamp

NULL = b"\x98\x01\x00"  # feast.types.Value(null_val=NULL)


def _framed(raws: list[bytes]) -> bytes:
    out = b""
    for raw in raws:
        out += types_pb2.FeatureColumn(values=[types_pb2.Value.FromString(raw)]).SerializeToString()
    return out


@pytest.mark.parametrize(
    "raws",
    [
        [encode_value(float(i), ValueType.FLOAT64) for i in range(50)],  # one length
        [encode_value(i * 1000, ValueType.INT64) for i in range(50)],  # varints of many lengths
        [encode_value("x" * (i * 7), ValueType.STRING) for i in range(1, 40)],  # past 127 bytes
        [encode_value(1.5, ValueType.FLOAT64)],
    ],
)
def test_present_columns_are_framed_like_the_protobuf_library(raws: list[bytes]) -> None:
    assert _present_values(raws) == _framed(raws)


@pytest.mark.parametrize(
    "raws",
    [
        [encode_value(1.0, ValueType.FLOAT64), None],
        [encode_value(1.0, ValueType.FLOAT64), b""],
        [encode_value(1.0, ValueType.FLOAT64), NULL],
        [NULL, NULL],  # nulls of one length
        [encode_value(1, ValueType.INT64), encode_value(10**9, ValueType.INT64), NULL],
    ],
)
def test_absent_or_null_values_leave_the_column_to_the_value_by_value_path(
    raws: list[bytes | None],
) -> None:
    assert _present_values(raws) is None


def _stamp(seconds: int) -> bytes:
    return bytes(Timestamp(seconds=seconds, nanos=5).SerializeToString())


def test_view_rows_statuses_and_times() -> None:
    now = 10_000.0
    fresh, old = _stamp(9_990), _stamp(9_000)
    states, encoded, fresh_until = _view_rows([fresh, None, old, fresh], ttl=60.0, now=now)
    assert list(states) == [
        types_pb2.FEATURE_STATUS_PRESENT,
        types_pb2.FEATURE_STATUS_NOT_FOUND,
        types_pb2.FEATURE_STATUS_OUTSIDE_MAX_AGE,
        types_pb2.FEATURE_STATUS_PRESENT,
    ]
    column = types_pb2.FeatureColumn.FromString(encoded)
    assert [s.seconds for s in column.event_timestamps] == [9_990, 0, 9_000, 9_990]
    assert fresh_until == 9_000 + 5e-9 + 60.0  # the oldest row's crossing, here in the past


def test_view_rows_fresh_until_of_fresh_rows_and_without_ttl() -> None:
    stamps = [_stamp(9_990), _stamp(9_970), None]
    assert _view_rows(stamps, ttl=60.0, now=10_000.0).fresh_until == 9_970 + 5e-9 + 60.0
    assert _view_rows(stamps, ttl=None, now=10_000.0).fresh_until == float("inf")
    assert _view_rows([None], ttl=60.0, now=10_000.0).fresh_until == float("inf")


def test_view_rows_of_one_shared_time() -> None:
    stamp = _stamp(9_000)
    states, encoded, _ = _view_rows([stamp] * 3, ttl=None, now=10_000.0)
    assert states == bytes([types_pb2.FEATURE_STATUS_PRESENT]) * 3
    assert encoded == _view_rows([stamp, stamp, stamp, None], ttl=None, now=0.0)[1][:-2]


def _nanos_stamp(seconds: int, nanos: int) -> bytes:
    return bytes(Timestamp(seconds=seconds, nanos=nanos).SerializeToString())


@pytest.mark.parametrize(
    ("stamps", "ttl"),
    [
        ([_nanos_stamp(9_990 - i, i * 1_000) for i in range(50)], 60.0),  # distinct, all fresh
        ([_nanos_stamp(9_990 - i, 0) for i in range(50)], 60.0),  # nanos 0: shorter bytes
        ([_nanos_stamp(9_950, 7)] * 20, 60.0),  # one shared time
        ([_nanos_stamp(9_990 - i, 1) for i in range(20)] + [_nanos_stamp(9_939, 1)], 60.0),  # stale
        ([_nanos_stamp(9_940 + i, 0) for i in range(20)], 60.0),  # one exactly at the TTL
        ([_nanos_stamp(9_990 - i, 1) for i in range(20)] + [None], 60.0),  # an absent row
        ([_nanos_stamp(9_990, 1), _nanos_stamp(9_939, 1)], 60.0),  # few times
        ([_nanos_stamp(9_990 - i, i) for i in range(10)], None),  # no TTL
        ([None, _nanos_stamp(1, 1)], None),
    ],
)
def test_view_rows_fast_path_agrees_with_the_per_stamp_path(
    stamps: list[bytes | None], ttl: float | None
) -> None:
    expected = _view_rows_by_stamp(stamps, set(stamps), ttl, now=10_000.0)
    assert _view_rows(stamps, ttl, now=10_000.0) == expected  # timestamps parsed here
    assert _view_rows(stamps, ttl, now=10_000.0) == expected  # and from the parsed cache


@pytest.mark.parametrize(
    ("reply", "error", "status"),
    [
        (
            "LOADING Redis is loading the dataset in memory",
            "BackendUnavailableError",
            "UNAVAILABLE",
        ),
        ("CLUSTERDOWN The cluster is down", "BackendUnavailableError", "UNAVAILABLE"),
        (
            "WRONGTYPE Operation against a key holding the wrong kind",
            "FeatureStoreError",
            "INTERNAL",
        ),
    ],
)
def test_an_error_reply_is_unavailable_while_redis_is_loading_or_failing_over(
    reply: str, error: str, status: str
) -> None:
    import hiredis

    from featurestore.service.raw_features import _columns

    with pytest.raises(FeatureStoreError) as caught:
        _columns([[b"1", None], hiredis.ReplyError(reply)])
    assert type(caught.value).__name__ == error
    assert caught.value.grpc_code.name == status
    assert str(caught.value).endswith(reply) and "ReplyError" not in str(caught.value)

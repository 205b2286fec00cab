"""Feast's Redis layout, byte for byte, without importing Feast.

One Redis hash per entity and project::

    key    = serialize_entity_key(entity, version 3) + project (UTF-8)
    field  = murmur3_32("view:feature"), 4 little-endian bytes  ->  feast.types.Value bytes
    field  = "_ts:view"                                         ->  google.protobuf.Timestamp

Every view of the same entity shares the hash. Feast's own ``get_online_features`` reads what is
written here; the unit tests compare these functions with Feast's.

Values are the API's own ``featurestore.v1.Value``, whose scalar fields have the numbers of
``feast.types.Value``'s (``types.proto``): the bytes are the same, Feast's explicit null
(``null_val``, a field ``Value`` lacks) parses as unset, and Feast is not imported.
"""

from __future__ import annotations

import struct
from datetime import UTC
from datetime import datetime
from functools import lru_cache

import mmh3
import numpy as np
import pyarrow as pa
from google.protobuf.timestamp_pb2 import Timestamp

from featurestore._proto.v1.types_pb2 import Value
from featurestore.errors import ValidationError
from featurestore.online.base import EntityKey
from featurestore.online.base import EntityValue
from featurestore.online.base import FeatureScalar
from featurestore.online.base import ValueType

__all__ = [
    "decode_timestamp",
    "decode_value",
    "encode_timestamp",
    "encode_value",
    "encode_values",
    "feature_field",
    "redis_key",
    "serialize_entity_key",
    "timestamp_field",
    "timestamp_nanos",
]

_STRING = struct.pack("<I", ValueType.STRING.feast_number)
_INT64 = struct.pack("<I", ValueType.INT64.feast_number)
_ONEOF_FIELD = {
    ValueType.BYTES: "bytes_value",
    ValueType.STRING: "string_value",
    ValueType.INT32: "int32_value",
    ValueType.INT64: "int64_value",
    ValueType.FLOAT64: "double_value",
    ValueType.FLOAT32: "float_value",
    ValueType.BOOL: "bool_value",
    ValueType.UNIX_TIMESTAMP: "unix_timestamp_value",
}


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _entity_value(value: EntityValue) -> tuple[bytes, bytes]:
    """The type tag and bytes of one join key's value; ValidationError naming a bad one."""
    if isinstance(value, str):
        try:
            return _STRING, value.encode()
        except UnicodeEncodeError as exc:  # a lone surrogate: no UTF-8 (nor Feast key) exists
            raise ValidationError(
                f"entity value {value!r} is not valid Unicode text", field="entities"
            ) from exc
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(
            f"entity value {value!r}: entity values are strings or integers", field="entities"
        )
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise ValidationError(
            f"entity value {value} is outside the 64-bit integer range", field="entities"
        )
    return _INT64, struct.pack("<q", value)


def serialize_entity_key(key: EntityKey) -> bytes:
    """Feast's ``serialize_entity_key`` (version 3): join keys sorted by name, lengths prefixed."""
    pairs = (
        sorted(zip(key.join_keys, key.values, strict=True))
        if len(key.join_keys) > 1
        else [(key.join_keys[0], key.values[0])]
    )
    out = [struct.pack("<I", len(pairs))]
    for name, _ in pairs:
        encoded = name.encode()
        out += (_STRING, struct.pack("<I", len(encoded)), encoded)
    for _, value in pairs:
        type_tag, raw = _entity_value(value)
        out += (type_tag, struct.pack("<I", len(raw)), raw)
    return b"".join(out)


def redis_key(key: EntityKey, project: str) -> bytes:
    """The Redis key of an entity's hash."""
    return serialize_entity_key(key) + project.encode()


@lru_cache(maxsize=4096)
def feature_field(view: str, feature: str) -> bytes:
    """The hash field of a feature: murmur3_32 of ``view:feature``, little-endian."""
    return struct.pack("<I", mmh3.hash(f"{view}:{feature}", signed=False))


@lru_cache(maxsize=1024)
def timestamp_field(view: str) -> bytes:
    """The hash field holding the event time of the view's row."""
    return f"_ts:{view}".encode()


def encode_value(value: FeatureScalar, dtype: ValueType) -> bytes:
    """Serialize a value as ``feast.types.Value`` bytes; ``None`` is an empty (null) Value."""
    if value is None:
        return b""
    message = Value()
    try:
        setattr(message, _ONEOF_FIELD[dtype], value)
        return message.SerializeToString()
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{value!r} is not a valid {dtype.name} value") from exc


_DOUBLE_TAG = (Value.DESCRIPTOR.fields_by_name["double_value"].number << 3) | 1
"""The tag byte of a ``double_value`` (wire type 1: eight little-endian bytes follow)."""
_DOUBLE = np.dtype([("tag", "u1"), ("value", "<f8")])


def encode_values(values: pa.Array | pa.ChunkedArray, dtype: ValueType) -> list[bytes]:
    """:func:`encode_value` of each element of a column, the same bytes.

    A float64 column of DOUBLE values (most features) is encoded without a message per value:
    the tag byte then the double's eight bytes, which is all ``SerializeToString`` writes for
    a ``Value`` whose one field is set; nulls are empty. Other columns go value by value.
    """
    if dtype is ValueType.FLOAT64 and pa.types.is_float64(values.type):
        n = len(values)
        packed = np.empty(n, dtype=_DOUBLE)
        packed["tag"] = _DOUBLE_TAG
        packed["value"] = values.to_numpy(zero_copy_only=False)
        raw = packed.tobytes()
        out = [raw[i : i + 9] for i in range(0, 9 * n, 9)]
        if values.null_count:
            for i in np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False)):
                out[i] = b""
        return out
    return [encode_value(value, dtype) for value in values.to_pylist()]


def decode_value(raw: bytes) -> FeatureScalar:
    """Parse ``feast.types.Value`` bytes; an empty or null Value is ``None``."""
    if not raw:
        return None
    message = Value.FromString(raw)
    kind = message.WhichOneof("kind")
    if kind is None:  # also Feast's null_val (19), a field Value does not have
        return None
    value: FeatureScalar = getattr(message, kind)
    return value


def encode_timestamp(when: datetime) -> bytes:
    """Serialize a timezone-aware time as ``google.protobuf.Timestamp`` bytes."""
    if when.tzinfo is None:
        raise ValidationError("event times must be timezone-aware", field="event_time")
    stamp = Timestamp()
    stamp.FromDatetime(when.astimezone(UTC))
    return stamp.SerializeToString()


def decode_timestamp(raw: bytes) -> datetime:
    """Parse ``google.protobuf.Timestamp`` bytes into an aware UTC datetime."""
    stamp = Timestamp.FromString(raw)
    return stamp.ToDatetime(tzinfo=UTC)


def timestamp_nanos(when: datetime) -> tuple[int, int]:
    """Seconds and nanoseconds since the epoch, as a Timestamp holds them."""
    stamp = Timestamp()
    stamp.FromDatetime(when.astimezone(UTC))
    return stamp.seconds, stamp.nanos

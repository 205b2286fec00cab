"""Our Redis layout equals Feast's own serialization, byte for byte."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

import pytest
from feast.infra.key_encoding_utils import serialize_entity_key as feast_serialize_entity_key
from feast.infra.online_stores.helpers import _mmh3
from feast.infra.online_stores.helpers import _redis_key
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Null
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from google.protobuf.timestamp_pb2 import Timestamp

from featurestore._proto.v1.types_pb2 import Value
from featurestore.errors import ValidationError
from featurestore.online import EntityKey
from featurestore.online import ValueType
from featurestore.online.layout import decode_timestamp
from featurestore.online.layout import decode_value
from featurestore.online.layout import encode_timestamp
from featurestore.online.layout import encode_value
from featurestore.online.layout import feature_field
from featurestore.online.layout import redis_key
from featurestore.online.layout import serialize_entity_key
from featurestore.online.layout import timestamp_field


def _feast_key(**keys: str | int) -> EntityKeyProto:
    values = [
        ValueProto(string_val=v) if isinstance(v, str) else ValueProto(int64_val=v)
        for v in keys.values()
    ]
    return EntityKeyProto(join_keys=list(keys), entity_values=values)


@pytest.mark.parametrize(
    "keys",
    [
        {"symbol": "AAPL"},
        {"symbol": "BRK.B"},
        {"symbol": "ÉTÉ"},
        {"symbol": ""},
        {"account": 42},
        {"symbol": "IBM", "exchange": "NYSE"},
        {"venue_id": -7, "symbol": "MSFT"},
    ],
)
def test_entity_key_serialization_equals_feast(keys: dict[str, str | int]) -> None:
    ours = EntityKey.of(**keys)
    assert serialize_entity_key(ours) == feast_serialize_entity_key(
        _feast_key(**keys), entity_key_serialization_version=3
    )
    assert redis_key(ours, "featurestore") == _redis_key(
        "featurestore", _feast_key(**keys), entity_key_serialization_version=3
    )


@pytest.mark.parametrize(
    "ref", ["bars_1m:close", "bars_1m:trade_count", "rolling_1m:realized_vol_15m", "v:ü"]
)
def test_feature_field_is_feasts_mmh3(ref: str) -> None:
    view, feature = ref.split(":")
    assert feature_field(view, feature) == _mmh3(ref)


def test_timestamp_field() -> None:
    assert timestamp_field("bars_1m") == b"_ts:bars_1m"


@pytest.mark.parametrize(
    ("value", "dtype", "proto"),
    [
        (101.25, ValueType.FLOAT64, ValueProto(double_val=101.25)),
        (0.0, ValueType.FLOAT64, ValueProto(double_val=0.0)),
        (1234, ValueType.INT64, ValueProto(int64_val=1234)),
        (-1, ValueType.INT32, ValueProto(int32_val=-1)),
        ("x", ValueType.STRING, ValueProto(string_val="x")),
        (True, ValueType.BOOL, ValueProto(bool_val=True)),
        (b"\x00\x01", ValueType.BYTES, ValueProto(bytes_val=b"\x00\x01")),
        (None, ValueType.FLOAT64, ValueProto()),
    ],
)
def test_values_round_trip_through_feasts_value_proto(
    value: object, dtype: ValueType, proto: ValueProto
) -> None:
    encoded = encode_value(value, dtype)  # type: ignore[arg-type]
    assert encoded == proto.SerializeToString()
    assert ValueProto.FromString(encoded) == proto
    assert decode_value(proto.SerializeToString()) == value


def test_feast_null_val_decodes_to_none() -> None:
    assert decode_value(ValueProto(null_val=Null.NULL).SerializeToString()) is None


def test_wrong_type_is_a_validation_error() -> None:
    with pytest.raises(ValidationError):
        encode_value("not a number", ValueType.FLOAT64)


def test_timestamps_are_protobuf_timestamps() -> None:
    when = datetime(2024, 3, 1, 14, 30, 0, 123456, tzinfo=UTC)
    encoded = encode_timestamp(when)
    stamp = Timestamp()
    stamp.FromDatetime(when)
    assert encoded == stamp.SerializeToString()
    assert decode_timestamp(encoded) == when


def test_naive_event_time_is_rejected() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        encode_timestamp(datetime(2024, 3, 1))


def test_every_field_of_the_api_value_has_feasts_number_for_its_kind() -> None:
    """The online store writes ``featurestore.v1.Value`` for Feast to read as its own Value."""
    ours = Value.DESCRIPTOR.fields_by_name
    feasts = ValueProto.DESCRIPTOR.fields_by_name
    assert {name: field.number for name, field in ours.items()} == {
        name: feasts[name.removesuffix("ue")].number for name in ours
    }

"""Wire types to domain types and back, for FeatureService; nowhere else touches the protos.

Request bytes of every method are decoded by :func:`decode_request` (the method wrapper calls it).
Every malformed request raises :class:`ValidationError` naming its field, so that the method
wrapper can answer INVALID_ARGUMENT with it.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import TypeVar

from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp

from featurestore._proto.v1 import feature_service_pb2
from featurestore._proto.v1 import types_pb2
from featurestore.errors import ValidationError
from featurestore.online import EntityKey
from featurestore.online import EntityValue
from featurestore.online import FeatureCatalog
from featurestore.online import FeatureRef
from featurestore.online import FeatureScalar
from featurestore.online import FeatureStatus
from featurestore.online import FeatureViewSpec
from featurestore.online import OnlineFeatures
from featurestore.online import ValueType

__all__ = [
    "STATUS_TO_PROTO",
    "check_entity_kinds",
    "decode_request",
    "duration_from_proto",
    "entities_from_proto",
    "features_from_proto",
    "join_key_types",
    "online_features_to_proto",
    "parse_request",
    "timestamp_from_proto",
    "value_to_proto",
]

STATUS_TO_PROTO = {
    FeatureStatus.PRESENT: types_pb2.FEATURE_STATUS_PRESENT,
    FeatureStatus.NULL_VALUE: types_pb2.FEATURE_STATUS_NULL_VALUE,
    FeatureStatus.NOT_FOUND: types_pb2.FEATURE_STATUS_NOT_FOUND,
    FeatureStatus.OUTSIDE_MAX_AGE: types_pb2.FEATURE_STATUS_OUTSIDE_MAX_AGE,
}
_NULL = types_pb2.Value()
T = TypeVar("T")


def decode_request(deserializer: Callable[[bytes], T], data: bytes) -> T:
    """A request message from its wire bytes, by a method's ``request_deserializer``.

    Raises:
        ValidationError: the bytes are not a message of that type (field ``request``), so that
            malformed bytes get INVALID_ARGUMENT, whichever method they were sent to.
    """
    try:
        return deserializer(data)
    except DecodeError as exc:
        message_type = getattr(getattr(deserializer, "__self__", None), "DESCRIPTOR", None)
        name = getattr(message_type, "full_name", "request message")
        raise ValidationError(f"request: not a valid {name}", field="request") from exc


def parse_request(data: bytes) -> feature_service_pb2.GetOnlineFeaturesRequest:
    """A GetOnlineFeaturesRequest from its wire bytes (the method takes bytes: its fast path)."""
    return decode_request(feature_service_pb2.GetOnlineFeaturesRequest.FromString, data)


def features_from_proto(
    request: feature_service_pb2.GetOnlineFeaturesRequest, catalog: FeatureCatalog
) -> tuple[FeatureRef, ...]:
    """The requested features, by reference or by feature service."""
    selector = request.WhichOneof("feature_selector")
    if selector == "feature_service":
        if not request.feature_service:
            raise ValidationError("feature_service: must not be empty", field="feature_service")
        return catalog.feature_service(request.feature_service)
    if selector is None or not request.features.features:
        raise ValidationError(
            "features: name at least one feature, or a feature_service", field="features"
        )
    texts = request.features.features
    return FeatureRef.once_each(
        [FeatureRef.parse(t, field_name=f"features.features[{i}]") for i, t in enumerate(texts)],
        field_name="features.features",
    )


def join_key_types(views: Iterable[FeatureViewSpec]) -> dict[str, ValueType]:
    """The declared type of each join key of ``views``, for :func:`entities_from_proto`.

    A key none of them declares is left out; views that declare one join key with two types
    (which no request can satisfy): the first one's.
    """
    types: dict[str, ValueType] = {}
    for view in views:
        if view.join_key_types:
            for key, key_type in zip(view.join_keys, view.join_key_types, strict=True):
                types.setdefault(key, key_type)
    return types


_ENTITY_KINDS = frozenset(("string_value", "int64_value", "int32_value"))
_KINDS_OF: dict[ValueType, frozenset[str]] = {
    ValueType.STRING: frozenset(("string_value",)),
    ValueType.INT64: frozenset(("int64_value", "int32_value")),
}
"""The value kinds a join key of a declared type takes: those the layout keys as that type."""


def _shown(value: types_pb2.Value, kind: str | None) -> str:
    """A refused entity value as a message shows it: its kind and value (a long one shortened)."""
    if kind is None:
        return "no value"
    text = repr(getattr(value, kind))
    return f"{kind} {text if len(text) <= 80 else f'{text[:60]}...{text[-10:]}'}"


def _refused(
    join_key: str, row: int, value: types_pb2.Value, key_type: ValueType | None
) -> ValidationError:
    where = f"entities[{join_key}].values[{row}]"
    kind = value.WhichOneof("kind")
    if key_type is None or key_type not in _KINDS_OF:
        message = f"entity values are strings or integers, got {kind}"
    else:
        article = "an" if key_type is ValueType.INT64 else "a"
        message = f"join key {join_key} is {article} {key_type.value}, got {_shown(value, kind)}"
    return ValidationError(f"{where}: {message}", field=where)


def _entity_column(
    join_key: str, values: Sequence[types_pb2.Value], key_type: ValueType | None
) -> list[EntityValue]:
    """The values of one join key; ValidationError naming the first of a kind it does not take."""
    takes = _ENTITY_KINDS if key_type is None else _KINDS_OF.get(key_type, _ENTITY_KINDS)
    column: list[EntityValue] = []
    for value in values:
        kind = value.WhichOneof("kind")
        if kind not in takes:
            raise _refused(join_key, len(column), value, key_type)
        column.append(getattr(value, kind))
    return column


def check_entity_kinds(
    entities: Mapping[str, types_pb2.ValueList], key_types: Mapping[str, ValueType]
) -> None:
    """Refuse a value of a kind its join key does not take, as :func:`entities_from_proto` does.

    For entities parsed before their views were known (Predict: before the model is).
    """
    for key in sorted(entities):
        key_type = key_types.get(key)
        if key_type is not None:
            _entity_column(key, entities[key].values, key_type)


def entities_from_proto(
    entities: Mapping[str, types_pb2.ValueList],
    *,
    max_rows: int,
    key_types: Mapping[str, ValueType] | None = None,
) -> tuple[EntityKey, ...]:
    """Entity rows from columns of join key values.

    ``key_types``: the declared type of the join keys the request's views use
    (:func:`join_key_types`). A String key takes ``string_value``, an Int64 key ``int64_value``
    or ``int32_value``: a value of another kind would be keyed as no row is, a silent
    NOT_FOUND. A join key not in it takes any string or integer, keyed by its own type.

    Raises:
        ValidationError: naming the field, for a malformed column or a value of a kind its join
            key does not take (``entities[symbol].values[0]: join key symbol is a String, got
            int64_value 7``).
    """
    if not entities:
        raise ValidationError("entities: give at least one join key column", field="entities")
    keys = sorted(entities)
    lengths = {len(entities[k].values) for k in keys}
    if len(lengths) != 1:
        raise ValidationError(
            "entities: every join key column needs the same number of rows", field="entities"
        )
    (rows,) = lengths
    if rows == 0:
        raise ValidationError("entities: give at least one row", field="entities")
    if rows > max_rows:
        raise ValidationError(f"entities: at most {max_rows} rows per call", field="entities")
    types = key_types or {}
    columns = [_entity_column(k, entities[k].values, types.get(k)) for k in keys]
    join_keys = tuple(keys)
    return tuple(EntityKey(join_keys, tuple(col[r] for col in columns)) for r in range(rows))


def timestamp_from_proto(stamp: Timestamp, field: str) -> datetime:
    """An aware UTC time from a request's Timestamp.

    Raises:
        ValidationError: naming ``field``, when the Timestamp is outside what one may hold
            (years 1 to 9999, nanos within a second).
    """
    try:
        return stamp.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError) as exc:
        raise ValidationError(
            f"{field}: not a valid timestamp (seconds {stamp.seconds}, nanos {stamp.nanos})",
            field=field,
        ) from exc


def duration_from_proto(duration: Duration, field: str) -> timedelta:
    """A timedelta from a request's Duration.

    Raises:
        ValidationError: naming ``field``, when the Duration does not fit a timedelta (more than
            999,999,999 days).
    """
    try:
        return duration.ToTimedelta()
    except (ValueError, OverflowError) as exc:
        raise ValidationError(
            f"{field}: not a valid duration (seconds {duration.seconds}, nanos {duration.nanos})",
            field=field,
        ) from exc


def value_to_proto(value: FeatureScalar) -> types_pb2.Value:
    """A domain scalar as a wire Value (``None`` is an empty Value)."""
    if value is None:
        return _NULL
    if isinstance(value, float):
        return types_pb2.Value(double_value=value)
    if isinstance(value, bool):
        return types_pb2.Value(bool_value=value)
    if isinstance(value, int):
        return types_pb2.Value(int64_value=value)
    if isinstance(value, str):
        return types_pb2.Value(string_value=value)
    return types_pb2.Value(bytes_value=value)


def _timestamp(when: datetime | None, cache: dict[datetime, Timestamp]) -> Timestamp:
    if when is None:
        return Timestamp()
    stamp = cache.get(when)
    if stamp is None:
        stamp = cache[when] = Timestamp()
        stamp.FromDatetime(when)
    return stamp


def online_features_to_proto(
    features: OnlineFeatures,
) -> feature_service_pb2.GetOnlineFeaturesResponse:
    """Columns of values, statuses and event times."""
    response = feature_service_pb2.GetOnlineFeaturesResponse(
        feature_names=[str(ref) for ref in features.refs]
    )
    stamps: dict[datetime, Timestamp] = {}
    for column in features.columns:
        out = response.columns.add()
        out.values.extend([value_to_proto(v.value) for v in column])
        out.statuses.extend([STATUS_TO_PROTO[v.status] for v in column])
        out.event_timestamps.extend([_timestamp(v.event_time, stamps) for v in column])
    return response

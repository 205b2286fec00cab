"""Python values to and from the wire types of featurestore.v1."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC

from featurestore_client._proto.v1 import feature_service_pb2, types_pb2
from featurestore_client._types import (
    EntityValue,
    FeatureStatus,
    FeatureValue,
    OnlineFeatures,
    Scalar,
)

STATUS = {
    types_pb2.FEATURE_STATUS_PRESENT: FeatureStatus.PRESENT,
    types_pb2.FEATURE_STATUS_NULL_VALUE: FeatureStatus.NULL_VALUE,
    types_pb2.FEATURE_STATUS_NOT_FOUND: FeatureStatus.NOT_FOUND,
    types_pb2.FEATURE_STATUS_OUTSIDE_MAX_AGE: FeatureStatus.OUTSIDE_MAX_AGE,
}


def entity_value(value: EntityValue) -> types_pb2.Value:
    """A join key value on the wire (strings and integers; anything else is sent as is)."""
    if isinstance(value, str):
        return types_pb2.Value(string_value=value)
    if isinstance(value, int) and not isinstance(value, bool):
        return types_pb2.Value(int64_value=value)
    # Let the server name the offending field rather than failing here without one.
    return types_pb2.Value()


def request(
    features: Sequence[str] | None,
    feature_service: str | None,
    entities: Mapping[str, Sequence[EntityValue]],
) -> feature_service_pb2.GetOnlineFeaturesRequest:
    """A GetOnlineFeaturesRequest."""
    message = feature_service_pb2.GetOnlineFeaturesRequest()
    if feature_service is not None:
        message.feature_service = feature_service
    else:
        message.features.features.extend(features or ())
    for key, values in entities.items():
        message.entities[key].values.extend(entity_value(v) for v in values)
    return message


def scalar(value: types_pb2.Value) -> Scalar:
    """A wire Value as a Python scalar (``None`` when unset)."""
    kind = value.WhichOneof("kind")
    if kind is None:
        return None
    result: Scalar = getattr(value, kind)
    return result


def online_features(
    response: feature_service_pb2.GetOnlineFeaturesResponse,
    entities: Mapping[str, Sequence[EntityValue]],
) -> OnlineFeatures:
    """The response as columns of :class:`FeatureValue`."""
    columns: dict[str, list[FeatureValue]] = {}
    for name, column in zip(response.feature_names, response.columns, strict=True):
        columns[name] = [
            FeatureValue(
                scalar(value),
                STATUS.get(status, FeatureStatus.NOT_FOUND),
                stamp.ToDatetime(tzinfo=UTC) if stamp.seconds or stamp.nanos else None,
            )
            for value, status, stamp in zip(
                column.values, column.statuses, column.event_timestamps, strict=True
            )
        ]
    return OnlineFeatures({k: list(v) for k, v in entities.items()}, columns)

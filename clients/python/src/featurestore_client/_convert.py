"""Python values to and from the wire types of featurestore.v1."""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any
from typing import TypeVar

from featurestore_client._columns import decode_columns
from featurestore_client._online import OnlineFeatures
from featurestore_client._proto.v1 import types_pb2
from featurestore_client._types import EntityValue
from featurestore_client._types import FeatureStatus
from featurestore_client._types import Scalar
from featurestore_client.wire import field
from featurestore_client.wire import varint

STATUS = {
    types_pb2.FEATURE_STATUS_PRESENT: FeatureStatus.PRESENT,
    types_pb2.FEATURE_STATUS_NULL_VALUE: FeatureStatus.NULL_VALUE,
    types_pb2.FEATURE_STATUS_NOT_FOUND: FeatureStatus.NOT_FOUND,
    types_pb2.FEATURE_STATUS_OUTSIDE_MAX_AGE: FeatureStatus.OUTSIDE_MAX_AGE,
}


ListT = TypeVar("ListT", bound=Iterable[Any])


def listed(name: str, values: ListT) -> ListT:
    """``values`` as given; TypeError when it is one string, which would be sent a letter a value.

    ``entities={"symbol": "AAPL"}`` would ask for four symbols, A, A, P and L.
    """
    if isinstance(values, str | bytes):
        raise TypeError(f"{name} must be a list, not one {type(values).__name__}: wrap it in [ ]")
    return values


def add_entities(columns: Any, entities: Mapping[str, Sequence[EntityValue]]) -> None:
    """Fill a request's ``entities`` map (join key -> ValueList) from Python columns."""
    for key, values in entities.items():
        columns[key].values.extend(entity_value(v) for v in listed(f"entities[{key!r}]", values))


def entity_value(value: EntityValue) -> types_pb2.Value:
    """A join key value on the wire (strings and integers; anything else is sent as is)."""
    if isinstance(value, str):
        return types_pb2.Value(string_value=value)
    if isinstance(value, int) and not isinstance(value, bool):
        return types_pb2.Value(int64_value=value)
    # Let the server name the offending field rather than failing here without one.
    return types_pb2.Value()


def online_request(
    features: Sequence[str] | None,
    feature_service: str | None,
    entities: Mapping[str, Sequence[EntityValue]],
) -> bytes:
    """A serialized GetOnlineFeaturesRequest, written directly.

    A protobuf Value object per entity costs more than the call's own work at 100 entities.
    Strings and integers are sent as such; any other entity value as an empty Value, so that the
    server names the offending field.

    Raises:
        ValueError: an integer entity value outside int64.
    """
    if feature_service is not None:
        out = [field(0x12, feature_service.encode())]
    else:
        names = listed("features", features or ())
        out = [field(0x0A, b"".join(field(0x0A, f.encode()) for f in names))]
    for key, values in entities.items():
        column = _entity_column(key, listed(f"entities[{key!r}]", values))
        entry = field(0x0A, key.encode()) + field(0x12, column)  # map entry: key, ValueList
        out.append(field(0x1A, entry))
    return b"".join(out)


_STRING_VALUES = [bytes((0x0A, n + 2, 0x12, n)) for n in range(126)]
"""The framing of a string Value of n UTF-8 bytes (n < 126) in a ValueList."""


def _entity_column(key: str, values: Sequence[object]) -> bytes:
    """The ValueList.values of one join key: strings in two C-level passes, else one by one."""
    try:
        encoded = [value.encode() for value in values]  # type: ignore[attr-defined]
        return b"".join([_STRING_VALUES[len(text)] + text for text in encoded])
    except (AttributeError, IndexError):  # not all strings, or a long one
        return b"".join([_entity(key, i, v) for i, v in enumerate(values)])


def _entity(key: str, index: int, value: object) -> bytes:
    """One entity value as a ValueList.values entry (a framed Value)."""
    if isinstance(value, str):
        return field(0x0A, field(0x12, value.encode()))  # Value.string_value
    if isinstance(value, int) and not isinstance(value, bool):
        if not -(2**63) <= value < 2**63:
            raise ValueError(f"entities[{key}][{index}]: {value} is outside int64")
        return field(0x0A, b"\x20" + varint(value % 2**64))  # Value.int64_value
    return b"\x0a\x00"  # an empty Value: the server names the field


def scalar(value: types_pb2.Value) -> Scalar:
    """A wire Value as a Python scalar (``None`` when unset)."""
    kind = value.WhichOneof("kind")
    if kind is None:
        return None
    result: Scalar = getattr(value, kind)
    return result


def online_features(
    response: bytes, entities: Mapping[str, Sequence[EntityValue]]
) -> OnlineFeatures:
    """A serialized GetOnlineFeaturesResponse as columns (see ``_columns``)."""
    rows = len(next(iter(entities.values()), ()))
    return OnlineFeatures(entities, decode_columns(response, rows))

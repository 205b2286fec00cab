"""Hypothesis strategies for the API's requests: every RPC the server serves, random messages.

The messages are built from the descriptors, so a field or an RPC added to ``proto/`` is fuzzed
without a change here. Strings are drawn half from names the store knows (features, views,
feature services, symbols, aliases), so that examples get past the first checks, and half at
random; numbers cover their whole wire range (NaN, infinities, int64 seconds far outside any
calendar), which is where conversions break.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

from google.protobuf.descriptor import Descriptor
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2
from hypothesis import strategies as st

from featurestore._proto.v1 import anomaly_service_pb2
from featurestore._proto.v1 import dataset_service_pb2
from featurestore._proto.v1 import feature_service_pb2
from featurestore._proto.v1 import prediction_service_pb2

__all__ = ["RPCS", "Rpc", "request_bytes"]

_MAX_DEPTH = 4
KNOWN_NAMES = (
    "bars_1m:close",
    "bars_1m:volume",
    "rolling_1m:vwap_5m",
    "bars_1m",
    "market_features_v1",
    "symbol",
    "AAPL",
    "IBM",
    "champion",
    "1",
    "2",
    "",
    " ",
    ":",
    "a::b",
    "featurestore.v1.FeatureService",
)


@dataclass(frozen=True)
class Rpc:
    """One method the server serves."""

    path: str
    """``/package.Service/Method``."""
    request_type: type[Message]
    client_streaming: bool
    server_streaming: bool

    def rejects(self, data: bytes) -> bool:
        """Whether ``data`` is not a request message of this method."""
        try:
            self.request_type.FromString(data)
        except Exception:
            return True
        return False


def _rpcs() -> Iterator[Rpc]:
    modules = (
        feature_service_pb2,
        prediction_service_pb2,
        anomaly_service_pb2,
        dataset_service_pb2,
        health_pb2,
        reflection_pb2,
    )
    for module in modules:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                yield Rpc(
                    f"/{service.full_name}/{method.name}",
                    GetMessageClass(method.input_type),
                    method.client_streaming,
                    method.server_streaming,
                )


RPCS = tuple(_rpcs())
"""Every method of the store's services (``proto/``), health and reflection."""

_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[object]:
    kind = field.type
    if kind in _INT_RANGES:
        low, high = _INT_RANGES[kind]
        return st.one_of(st.integers(-3, 100), st.integers(low, high))
    if kind == FieldDescriptor.TYPE_DOUBLE:
        return st.floats()
    if kind == FieldDescriptor.TYPE_FLOAT:
        return st.floats(width=32)
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind == FieldDescriptor.TYPE_STRING:
        return st.one_of(st.sampled_from(KNOWN_NAMES), st.text(max_size=24))
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if kind == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None
        numbers = [value.number for value in field.enum_type.values]
        return st.one_of(st.sampled_from(numbers), st.integers(-2, 50))
    raise AssertionError(f"no strategy for field type {kind} ({field.full_name})")


def _fill(draw: st.DrawFn, message: Message, depth: int) -> None:
    descriptor = cast(Descriptor, message.DESCRIPTOR)  # the stubs split it by implementation
    chosen = {
        oneof.name: draw(st.sampled_from([None, *oneof.fields]))
        for oneof in descriptor.oneofs
        if not oneof.name.startswith("_")  # proto3 `optional` fields: drawn as plain fields
    }
    for field in descriptor.fields:
        oneof = field.containing_oneof
        if oneof is not None and not oneof.name.startswith("_"):
            if chosen[oneof.name] is not field:
                continue
        elif not draw(st.booleans()):
            continue
        _set(draw, message, field, depth)


def _set(draw: st.DrawFn, message: Message, field: FieldDescriptor, depth: int) -> None:
    name = field.name
    entry = field.message_type  # the message type of a message field; None for a scalar
    is_message = entry is not None
    if entry is not None and entry.GetOptions().map_entry:
        key_field = entry.fields_by_name["key"]
        value_field = entry.fields_by_name["value"]
        entries = getattr(message, name)
        for key in draw(st.lists(_scalar(key_field), max_size=3)):
            if value_field.type == FieldDescriptor.TYPE_MESSAGE:
                _fill(draw, entries[key], depth + 1)
            else:
                entries[key] = draw(_scalar(value_field))
    elif field.is_repeated:
        if is_message:
            for _ in range(draw(st.integers(0, 3 if depth < _MAX_DEPTH else 0))):
                _fill(draw, getattr(message, name).add(), depth + 1)
        else:
            getattr(message, name).extend(draw(st.lists(_scalar(field), max_size=4)))
    elif is_message:
        child = getattr(message, name)
        child.SetInParent()
        if depth < _MAX_DEPTH:
            _fill(draw, child, depth + 1)
    else:
        setattr(message, name, draw(_scalar(field)))


@st.composite
def _message_bytes(draw: st.DrawFn, request_type: type[Message], base: Message | None) -> bytes:
    message = request_type()
    if base is not None:
        message.CopyFrom(base)
        changes = request_type()
        _fill(draw, changes, 0)
        message.MergeFrom(changes)  # set scalars replace, lists grow, a oneof may switch
    else:
        _fill(draw, message, 0)
    return message.SerializeToString()


def request_bytes(rpc: Rpc, base: Message | None = None) -> st.SearchStrategy[bytes]:
    """Wire bytes of random but well-formed request messages of ``rpc``.

    With ``base`` (a request the server answers), half are ``base`` with random changes merged
    in, which gets examples past the first checks to the backends.
    """
    fresh = _message_bytes(rpc.request_type, None)
    return fresh if base is None else st.one_of(fresh, _message_bytes(rpc.request_type, base))

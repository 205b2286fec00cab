"""Server reflection (``grpc.reflection.v1`` and ``v1alpha``) that resolves every symbol.

grpcio-reflection serves only ``v1alpha`` and looks symbols up with the descriptor pool's
``FindFileContainingSymbol``, which finds services, messages and fields but not a service's
methods or an enum's values: ``grpcurl describe featurestore.v1.FeatureService.GetOnlineFeatures``
answered "Symbol not found", and so did every tool that looks a method up by name (ghz). Here the
pool the servicer reads falls back to the symbol's parent: a method is found in its service's file,
an enum value in its enum's file.

``v1`` is the same protocol under another package name (the messages are field for field those of
``v1alpha``): its file descriptor is ``v1alpha``'s renamed, added to the default pool so that the
``v1`` service describes itself too, and its one method is served by the same servicer. Clients
that speak ``v1`` first (grpcurl, grpc-go's reflection client) no longer need to fall back.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import grpc
from google.protobuf import descriptor_pb2
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import FileDescriptor
from grpc_reflection.v1alpha import reflection
from grpc_reflection.v1alpha import reflection_pb2

from featurestore.service.wrapping import WrappingRegistrar

__all__ = ["V1ALPHA_SERVICE_NAME", "V1_SERVICE_NAME", "add_reflection"]

V1ALPHA_SERVICE_NAME: str = reflection.SERVICE_NAME
V1_SERVICE_NAME = "grpc.reflection.v1.ServerReflection"
_V1_FILE = "grpc/reflection/v1/reflection.proto"
_METHOD = "ServerReflectionInfo"


class _SymbolPool:
    """The default pool, with method and enum value symbols resolved through their parent."""

    def __init__(self, pool: descriptor_pool.DescriptorPool) -> None:
        self._pool = pool

    def FindFileContainingSymbol(self, symbol: str) -> FileDescriptor:  # noqa: N802 (the pool's API)
        try:
            return self._pool.FindFileContainingSymbol(symbol)
        except KeyError:
            parent, _, name = symbol.rpartition(".")
            if parent:
                found = self._in_service(parent, name) or self._in_enum(parent, name)
                if found is not None:
                    return found
            raise

    def _in_service(self, service: str, method: str) -> FileDescriptor | None:
        try:
            descriptor = self._pool.FindServiceByName(service)
        except KeyError:
            return None
        return descriptor.file if method in descriptor.methods_by_name else None

    def _in_enum(self, scope: str, value: str) -> FileDescriptor | None:
        # An enum value is named in its enum's scope (pkg.VALUE), and also written pkg.Enum.VALUE.
        for enum_name in (scope, *self._enums_in(scope)):
            try:
                enum = self._pool.FindEnumTypeByName(enum_name)
            except KeyError:
                continue
            if value in enum.values_by_name:
                return enum.file
        return None

    def _enums_in(self, scope: str) -> list[str]:
        try:
            message = self._pool.FindMessageTypeByName(scope)
        except KeyError:
            return []
        return [enum.full_name for enum in message.enum_types]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)


def _add_v1_descriptor(pool: descriptor_pool.DescriptorPool) -> None:
    """Add ``grpc.reflection.v1``'s file to ``pool``: ``v1alpha``'s under the ``v1`` names."""
    try:
        pool.FindFileByName(_V1_FILE)
        return
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    old_package = proto.package
    proto.name, proto.package = _V1_FILE, "grpc.reflection.v1"
    old, new = f".{old_package}.", f".{proto.package}."
    for message in proto.message_type:
        for field in message.field:
            if field.HasField("type_name"):
                field.type_name = field.type_name.replace(old, new)
    for method in proto.service[0].method:
        method.input_type = method.input_type.replace(old, new)
        method.output_type = method.output_type.replace(old, new)
    pool.AddSerializedFile(proto.SerializeToString())


def add_reflection(registrar: WrappingRegistrar, service_names: Iterable[str]) -> None:
    """Register reflection ``v1`` and ``v1alpha`` for ``service_names`` (and themselves)."""
    pool = descriptor_pool.Default()
    _add_v1_descriptor(pool)
    servicer = reflection.aio.ReflectionServicer(
        (*service_names, V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME),
        pool=_SymbolPool(pool),
    )
    # One handler for both: the v1 messages are v1alpha's, field for field.
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    for service in (V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME):
        registrar.add_service(service, {_METHOD: handler})

"""FeatureService: a thin servicer over the online store, with a zero-decode fast path."""

from __future__ import annotations

import asyncio

import grpc

from featurestore._proto.v1 import feature_service_pb2
from featurestore.online import FeatureCatalog, OnlineStore
from featurestore.service.convert import (
    entities_from_proto,
    features_from_proto,
    online_features_to_proto,
)
from featurestore.service.raw_features import RawFeatureReader

__all__ = ["FeatureServicer", "add_feature_servicer"]

_SERVICE = "featurestore.v1.FeatureService"
Reply = feature_service_pb2.GetOnlineFeaturesResponse | bytes


class FeatureServicer:
    """GetOnlineFeatures: validate, read in one round trip, convert (errors: the interceptor).

    With a :class:`RawFeatureReader` the answer is built from Redis bytes directly where the
    request has the common shape; otherwise through the store's domain types.
    """

    def __init__(
        self,
        store: OnlineStore,
        catalog: FeatureCatalog,
        *,
        max_entities: int,
        raw: RawFeatureReader | None = None,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._max_entities = max_entities
        self._raw = raw

    async def GetOnlineFeatures(  # noqa: N802  (the RPC's name)
        self,
        request: feature_service_pb2.GetOnlineFeaturesRequest,
        context: grpc.aio.ServicerContext,
    ) -> Reply:
        async with asyncio.timeout(context.time_remaining()):
            if self._raw is not None:
                answer = await self._raw.respond(request)
                if answer is not None:
                    return answer
            refs = features_from_proto(request, self._catalog)
            entities = entities_from_proto(request.entities, max_rows=self._max_entities)
            features = await self._store.read(entities, refs)
        return online_features_to_proto(features)


def _serialize(reply: Reply) -> bytes:
    return reply if isinstance(reply, bytes) else reply.SerializeToString()


def add_feature_servicer(servicer: FeatureServicer, server: grpc.aio.Server) -> None:
    """Register the servicer; its replies may be pre-serialized bytes."""
    handler = grpc.unary_unary_rpc_method_handler(
        servicer.GetOnlineFeatures,
        request_deserializer=feature_service_pb2.GetOnlineFeaturesRequest.FromString,
        response_serializer=_serialize,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(_SERVICE, {"GetOnlineFeatures": handler}),)
    )

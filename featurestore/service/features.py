"""FeatureService: a thin servicer over the online store."""

from __future__ import annotations

import asyncio

import grpc

from featurestore._proto.v1 import feature_service_pb2, feature_service_pb2_grpc
from featurestore.online import FeatureCatalog, OnlineStore
from featurestore.service.convert import (
    entities_from_proto,
    features_from_proto,
    online_features_to_proto,
)

__all__ = ["FeatureServicer"]


class FeatureServicer(feature_service_pb2_grpc.FeatureServiceServicer):
    """GetOnlineFeatures: validate, read in one round trip, convert (errors: the interceptor)."""

    def __init__(self, store: OnlineStore, catalog: FeatureCatalog, *, max_entities: int) -> None:
        self._store = store
        self._catalog = catalog
        self._max_entities = max_entities

    async def GetOnlineFeatures(  # noqa: N802  (the generated base class names it)
        self,
        request: feature_service_pb2.GetOnlineFeaturesRequest,
        context: grpc.aio.ServicerContext,
    ) -> feature_service_pb2.GetOnlineFeaturesResponse:
        refs = features_from_proto(request, self._catalog)
        entities = entities_from_proto(request.entities, max_rows=self._max_entities)
        async with asyncio.timeout(context.time_remaining()):
            features = await self._store.read(entities, refs)
        return online_features_to_proto(features)

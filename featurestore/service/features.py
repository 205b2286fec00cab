"""FeatureService: a thin servicer over the online store, with a zero-decode fast path.

The method is registered with neither a request deserializer nor a response serializer: it
receives the request's wire bytes (the fast path looks them up in its cache of prepared
requests before parsing anything) and returns wire bytes.
"""

from __future__ import annotations

import asyncio

import grpc

from featurestore.online import FeatureCatalog
from featurestore.online import OnlineStore
from featurestore.service.convert import entities_from_proto
from featurestore.service.convert import features_from_proto
from featurestore.service.convert import join_key_types
from featurestore.service.convert import online_features_to_proto
from featurestore.service.convert import parse_request
from featurestore.service.raw_features import RawFeatureReader

__all__ = ["FEATURE_SERVICE", "FeatureServicer", "feature_method_handlers"]

FEATURE_SERVICE = "featurestore.v1.FeatureService"


class FeatureServicer:
    """GetOnlineFeatures: validate, read in one round trip, convert (errors: the method wrapper).

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
        """Read ``store`` for the views of ``catalog``, at most ``max_entities`` entities a call."""
        self._store = store
        self._catalog = catalog
        self._max_entities = max_entities
        self._raw = raw

    async def GetOnlineFeatures(  # noqa: N802  (the RPC's name)
        self, request: bytes, context: grpc.aio.ServicerContext
    ) -> bytes:
        # The fast path needs no timer of its own: gRPC cancels the call at its deadline, and
        # the Redis connection fails a batch that gets no reply within the backend timeout.
        """The requested features of each entity, with statuses and event times."""
        if self._raw is not None:
            answer = await self._raw.respond(request)
            if answer is not None:
                return answer
        async with asyncio.timeout(context.time_remaining()):
            message = parse_request(request)
            refs = features_from_proto(message, self._catalog)
            views = map(self._catalog.view, dict.fromkeys(ref.view for ref in refs))
            entities = entities_from_proto(
                message.entities, max_rows=self._max_entities, key_types=join_key_types(views)
            )
            features = await self._store.read(entities, refs)
        return online_features_to_proto(features).SerializeToString()


def feature_method_handlers(servicer: FeatureServicer) -> dict[str, grpc.RpcMethodHandler]:
    """The service's method handlers: bytes in, bytes out."""
    return {"GetOnlineFeatures": grpc.unary_unary_rpc_method_handler(servicer.GetOnlineFeatures)}

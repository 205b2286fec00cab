"""The gRPC service of ``make run``: ``featurestore serve`` as a managed background process."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2
from grpc_health.v1 import health_pb2_grpc
from typing_extensions import override

from featurestore.stack.base import OwnProcess

__all__ = ["GrpcService"]


class GrpcService(OwnProcess):
    """The store's gRPC server; healthy once its standard health service answers SERVING."""

    name = "grpc"
    command_words = ("serve",)
    start_timeout = 60.0

    @override
    def child_env(self) -> dict[str, str]:
        """The stack's environment, with glibc's malloc held to two arenas (``MALLOC_ARENA_MAX``).

        By default each thread that allocates may get an arena of its own (up to 8 per core),
        and memory an export's threads freed stays with their arenas, so the server's RSS grew
        with every large export; with two arenas it stays flat, and online reads measured as
        fast. A value the environment already has is kept.
        """
        return {"MALLOC_ARENA_MAX": "2", **super().child_env()}

    @override
    def address(self) -> str:
        """``host:port`` of the gRPC server."""
        return f"{self.settings.grpc.host}:{self.settings.grpc.port}"

    @override
    def healthy(self) -> bool:
        """The standard health service answers SERVING for the whole server (service ``""``)."""
        try:
            with grpc.insecure_channel(self.address()) as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
        except grpc.RpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

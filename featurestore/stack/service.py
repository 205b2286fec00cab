"""The gRPC service of ``make run``: ``featurestore serve`` as a managed background process."""

from __future__ import annotations

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from featurestore.stack.base import Component

__all__ = ["GrpcService"]


class GrpcService(Component):
    """The store's gRPC server; healthy once its standard health service answers SERVING."""

    name = "grpc"
    start_timeout = 60.0

    def marker(self) -> str:
        return "featurestore.cli serve"

    def address(self) -> str:
        return f"{self.settings.grpc.host}:{self.settings.grpc.port}"

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def launch(self) -> int:
        return self.process.start(
            [sys.executable, "-m", "featurestore.cli", "serve"], env=self.child_env()
        )

    def healthy(self) -> bool:
        try:
            with grpc.insecure_channel(self.address()) as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
        except grpc.RpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

"""The gRPC server: a testable factory (:func:`create_server`) apart from :func:`serve`.

Health (``grpc.health.v1``) and reflection are served next to the store's services; the
interceptors run outermost first: telemetry, authentication, error mapping.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from featurestore._proto.v1 import feature_service_pb2, feature_service_pb2_grpc
from featurestore.config import Settings
from featurestore.online import FeatureCatalog, OnlineStore, RedisOnlineStore
from featurestore.service.features import FeatureServicer
from featurestore.service.interceptors import AuthInterceptor, ErrorInterceptor
from featurestore.service.settings import ServiceSettings
from featurestore.service.telemetry import Telemetry, TelemetryInterceptor

__all__ = ["SERVICE_NAMES", "ServiceServer", "create_server", "serve"]

logger = logging.getLogger(__name__)

SERVICE_NAMES = (feature_service_pb2.DESCRIPTOR.services_by_name["FeatureService"].full_name,)


@dataclass
class ServiceServer:
    """A grpc.aio server with the resources it owns, closed when it stops."""

    server: grpc.aio.Server
    health: health.aio.HealthServicer
    grace_s: float
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def start(self) -> None:
        """Start serving and report SERVING."""
        await self.server.start()
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace_s: float | None = None) -> None:
        """Refuse new calls, let in-flight ones finish (up to the grace period), then close."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(self.grace_s if grace_s is None else grace_s)
        for close in self.closers:
            await close()

    async def wait_for_termination(self) -> None:
        """Wait until the server has stopped."""
        await self.server.wait_for_termination()


async def create_server(
    settings: Settings,
    service: ServiceSettings,
    catalog: FeatureCatalog,
    *,
    store: OnlineStore | None = None,
    telemetry: Telemetry | None = None,
) -> tuple[ServiceServer, int]:
    """Build the server bound to ``settings.grpc`` (port 0 picks a free one); not started.

    Returns the server and the port it is bound to. Without ``store`` the Redis online store of
    ``settings.redis`` is used, and closed when the server stops.
    """
    interceptors: list[grpc.aio.ServerInterceptor] = [
        TelemetryInterceptor(telemetry or Telemetry.named(service.telemetry))
    ]
    if service.auth_tokens:
        interceptors.append(AuthInterceptor(service.auth_tokens))
    interceptors.append(ErrorInterceptor())
    server = grpc.aio.server(interceptors=interceptors)

    owned = store is None
    online = store or RedisOnlineStore.from_settings(
        settings.redis, catalog, timeout_s=service.backend_timeout_s
    )
    servicer = FeatureServicer(online, catalog, max_entities=service.max_entities)
    # The generated registration function is unannotated.
    feature_service_pb2_grpc.add_FeatureServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )

    address = f"{settings.grpc.host}:{settings.grpc.port}"
    if service.tls_cert_file is not None and service.tls_key_file is not None:
        credentials = grpc.ssl_server_credentials(
            [(service.tls_key_file.read_bytes(), service.tls_cert_file.read_bytes())]
        )
        port = server.add_secure_port(address, credentials)
    else:
        port = server.add_insecure_port(address)
    handle = ServiceServer(server, health_servicer, service.shutdown_grace_s)
    if owned:
        handle.closers.append(online.close)
    return handle, port


async def serve(settings: Settings, service: ServiceSettings, catalog: FeatureCatalog) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully."""
    handle, port = await create_server(settings, service, catalog)
    await handle.start()
    logger.info("serving on %s:%d (tls=%s)", settings.grpc.host, port, service.tls)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    logger.info("stopping: finishing in-flight calls (up to %.1f s)", service.shutdown_grace_s)
    await handle.stop()

"""Build and run the registry server from the settings.

``create_app`` returns the ASGI application. On Kafka, its start-up begins the instance's life
among the others (:class:`~featurestore.schema_registry.cluster.ClusterNode`) in the background:
the server answers at once, ``GET /health`` says what it waits for, and the other routes answer
503 until the log has been read. With another log (an in-memory one) the log is replayed before
the first request is served.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from collections.abc import Callable
from collections.abc import Mapping
from contextlib import asynccontextmanager

from pydantic import SecretStr
from starlette.applications import Starlette

from featurestore.config import Settings
from featurestore.schema_registry.app import build_app
from featurestore.schema_registry.cluster import ClusterNode
from featurestore.schema_registry.kafka_log import KafkaRecordLog
from featurestore.schema_registry.log import RecordLog
from featurestore.schema_registry.registry import SchemaRegistry

__all__ = ["create_app", "serve"]

logger = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    *,
    log: RecordLog | None = None,
    on_fatal: Callable[[str], None] | None = None,
) -> Starlette:
    """The registry application for ``settings``.

    Args:
        settings: Where Kafka is and which topic holds the registry's log.
        log: Another log than the Kafka topic (an in-memory one in unit tests); the instance is
            then alone on it.
        on_fatal: Called with the reason when the instance cannot go on.

    Raises:
        ConfigurationError: The registry's users (basic auth) cannot be read.
    """
    users = settings.schema_registry.users()
    if log is not None:
        return _standalone_app(log, users)
    kafka_log = KafkaRecordLog(
        settings.kafka.connection,
        settings.topics.schemas,
        replication_factor=settings.kafka.replication_factor,
        min_insync_replicas=settings.kafka.min_insync_replicas,
    )
    registry = SchemaRegistry(kafka_log, tailed=True)
    node = ClusterNode(
        registry,
        kafka_log,
        own_url=settings.schema_registry.own_url,
        leader_eligible=settings.schema_registry.leader_eligible,
        on_fatal=on_fatal,
    )

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await node.start()
        try:
            yield
        finally:
            await node.stop()

    return build_app(registry, lifespan=lifespan, node=node, users=users)


def _standalone_app(log: RecordLog, users: Mapping[str, SecretStr]) -> Starlette:
    registry = SchemaRegistry(log)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        count = await asyncio.to_thread(registry.load)
        logger.info("schema registry loaded %d records", count)
        try:
            yield
        finally:
            await asyncio.to_thread(log.close)

    return build_app(registry, lifespan=lifespan, users=users)


def serve(settings: Settings) -> None:
    """Serve the registry on ``settings.schema_registry.host:port`` until interrupted.

    Its metrics are served on ``settings.metrics.schema_registry_port``. Exits with status 1
    when the instance cannot go on (see ``on_fatal`` of :func:`create_app`).
    """
    import uvicorn

    from featurestore.schema_registry.metrics import MetricsMiddleware
    from featurestore.telemetry import log_to_stderr
    from featurestore.telemetry import process_telemetry

    log_to_stderr()
    telemetry = process_telemetry(
        settings, "schema-registry", settings.metrics.schema_registry_port
    )
    fatal: list[str] = []
    server: uvicorn.Server | None = None

    def on_fatal(reason: str) -> None:
        fatal.append(reason)
        if server is not None:
            server.should_exit = True

    app = MetricsMiddleware(create_app(settings, on_fatal=on_fatal), telemetry.meter_provider)
    logger.info(
        "schema registry on %s:%d (basic auth: %s)", settings.schema_registry.host,
        settings.schema_registry.port, "on" if settings.schema_registry.users() else "off",
    )  # fmt: skip
    config = uvicorn.Config(
        app,
        host=settings.schema_registry.host,
        port=settings.schema_registry.port,
        log_level="info",
        access_log=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    server.run()
    if fatal:
        print(f"schema registry stopped: {fatal[0]}", file=sys.stderr)
        sys.exit(1)

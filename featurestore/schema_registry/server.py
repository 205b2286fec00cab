"""Build and run the registry server from the settings.

``create_app`` returns the ASGI application; its start-up creates the Kafka topic if needed and
replays it before the first request is served (uvicorn binds its socket only after the lifespan
start-up completes, so a health check never sees a half-loaded registry).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette

from featurestore.config import Settings
from featurestore.schema_registry.app import build_app
from featurestore.schema_registry.kafka_log import KafkaRecordLog
from featurestore.schema_registry.log import RecordLog
from featurestore.schema_registry.registry import SchemaRegistry

__all__ = ["create_app", "serve"]

_log = logging.getLogger(__name__)


def create_app(settings: Settings, *, log: RecordLog | None = None) -> Starlette:
    """The registry application for ``settings``.

    Args:
        settings: Where Kafka is and which topic holds the registry's log.
        log: Another log than the Kafka topic (an in-memory one in unit tests).
    """
    if log is None:
        log = KafkaRecordLog(
            settings.kafka.bootstrap,
            settings.topics.schemas,
            replication_factor=settings.kafka.replication_factor,
            min_insync_replicas=settings.kafka.min_insync_replicas,
        )
    registry = SchemaRegistry(log)
    record_log = log

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if isinstance(record_log, KafkaRecordLog):
            await asyncio.to_thread(record_log.ensure_topic)
        count = await asyncio.to_thread(registry.load)
        _log.info(
            "schema registry loaded %d records: %d subjects, max id %d",
            count,
            len(registry.state.subjects(deleted=True)),
            registry.state.max_id,
        )
        try:
            yield
        finally:
            await asyncio.to_thread(record_log.close)

    return build_app(registry, lifespan=lifespan)


def serve(settings: Settings) -> None:
    """Serve the registry on ``settings.schema_registry.host:port`` until interrupted.

    Its metrics are served on ``settings.metrics.schema_registry_port``.
    """
    import uvicorn

    from featurestore.schema_registry.metrics import MetricsMiddleware
    from featurestore.telemetry import process_telemetry

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    telemetry = process_telemetry(
        settings, "schema-registry", settings.metrics.schema_registry_port
    )
    uvicorn.run(
        MetricsMiddleware(create_app(settings), telemetry.meter_provider),
        host=settings.schema_registry.host,
        port=settings.schema_registry.port,
        log_level="info",
        access_log=False,
        lifespan="on",
    )

"""``featurestore schema-registry serve``: the Confluent-compatible schema registry."""

from __future__ import annotations

import click

__all__ = ["schema_registry"]


@click.group("schema-registry")
def schema_registry() -> None:
    """The schema registry (Confluent REST API, state in a compacted Kafka topic)."""


@schema_registry.command()
@click.option("--host", help="Address to bind (default: settings.schema_registry.host).")
@click.option("--port", type=int, help="Port to bind (default: settings.schema_registry.port).")
@click.option("--topic", help="The registry's Kafka topic (default: settings.topics.schemas).")
def serve(host: str | None, port: int | None, topic: str | None) -> None:
    """Load the registry from its Kafka topic, then serve until interrupted."""
    from featurestore.config import load_settings
    from featurestore.schema_registry.server import serve as serve_registry

    settings = load_settings()
    registry = settings.schema_registry.model_copy(
        update={k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    )
    topics = settings.topics.model_copy(update={"schemas": topic} if topic else {})
    serve_registry(settings.model_copy(update={"schema_registry": registry, "topics": topics}))

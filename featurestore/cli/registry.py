"""``featurestore registry apply|list``: the Feast registry of the store."""

from __future__ import annotations

import sys

import click

from featurestore.config import load_settings

__all__ = ["registry"]


@click.group()
def registry() -> None:
    """Register entities, feature views and services with Feast, and list them."""


@registry.command()
@click.option("--project", default=None, help="Feast project (default: featurestore).")
def apply(project: str | None) -> None:
    """Apply the store's definitions (Feast SQL registry) and create the offline tables."""
    from featurestore.definitions import PROJECT, apply_definitions, market_definitions
    from featurestore.errors import FeatureStoreError

    settings = load_settings()
    definitions = market_definitions(project or PROJECT, source_topic=settings.topics.trades)
    try:
        result = apply_definitions(settings, definitions)
    except FeatureStoreError as exc:
        click.echo(f"registry apply failed: {exc}", err=True)
        sys.exit(1)
    click.echo(f"applied {result.objects} objects to Feast project {result.project!r}")
    for table, how in result.tables.items():
        click.echo(f"  offline table {table}: {how}")


@registry.command(name="list")
@click.option("--project", default=None, help="Feast project (default: featurestore).")
def list_(project: str | None) -> None:
    """List entities, feature views (fields, TTL, source) and feature services."""
    from featurestore.definitions import PROJECT, load_definitions
    from featurestore.errors import FeatureStoreError

    try:
        defs = load_definitions(load_settings(), project or PROJECT)
    except FeatureStoreError as exc:
        click.echo(f"registry list failed: {exc}", err=True)
        sys.exit(1)
    click.echo(f"project {defs.project}")
    click.echo("entities:")
    for entity in defs.entities:
        click.echo(f"  {entity.name} (join key {entity.join_key}, {entity.value_type.value})")
    click.echo("feature views:")
    for view in defs.views:
        src = view.source
        click.echo(
            f"  {view.name}  ttl={view.ttl}  source={src.table} "
            f"(ts {src.timestamp_field}, created {src.created_timestamp_column}, "
            f"partitions per {src.partition_interval})  entities={','.join(view.entities)}"
        )
        tags = ", ".join(f"{k}={v}" for k, v in sorted(view.tags.items()))
        click.echo(f"    tags: {tags}")
        for feature in view.features:
            click.echo(f"    {feature.name}: {feature.value_type.value}")
    click.echo("feature services:")
    for service in defs.services:
        click.echo(f"  {service.name}: {', '.join(map(str, service.features))}")

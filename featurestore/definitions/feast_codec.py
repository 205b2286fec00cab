"""The one edge between domain definitions and Feast objects.

``import feast`` takes seconds, so it happens inside these functions only.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg

from featurestore.config import Settings
from featurestore.definitions.model import (
    Definitions,
    Entity,
    Feature,
    FeatureRef,
    FeatureService,
    FeatureView,
    SourceTable,
    ValueType,
)
from featurestore.definitions.repo_config import REGISTRY_SCHEMA, repo_config_dict
from featurestore.errors import BackendUnavailableError, ConfigurationError

__all__ = ["feature_store", "from_feast", "to_feast_objects"]

_PARTITION_TAG = "partition_interval"


def _feast_type(value_type: ValueType) -> Any:
    from feast import types

    return {
        ValueType.FLOAT64: types.Float64,
        ValueType.INT64: types.Int64,
        ValueType.STRING: types.String,
        ValueType.BOOL: types.Bool,
    }[value_type]


def _value_type(feast_dtype: Any) -> ValueType:
    name = str(feast_dtype)
    for value_type in ValueType:
        if name in (value_type.value, value_type.name):
            return value_type
    raise ConfigurationError(f"feature type {name} is not supported by this store")


def to_feast_objects(definitions: Definitions) -> list[Any]:
    """Entities, feature views and services as Feast objects, ready for ``FeatureStore.apply``."""
    from feast import Entity as FeastEntity
    from feast import FeatureService as FeastService
    from feast import FeatureView as FeastView
    from feast import Field
    from feast import ValueType as FeastValueType
    from feast.infra.offline_stores.contrib.postgres_offline_store.postgres_source import (
        PostgreSQLSource,
    )

    entities = {
        e.name: FeastEntity(
            name=e.name,
            join_keys=[e.join_key],
            value_type=FeastValueType[e.value_type.name],
            description=e.description,
        )
        for e in definitions.entities
    }
    views: dict[str, Any] = {}
    for view in definitions.views:
        keys = [definitions.entity(name) for name in view.entities]
        source = PostgreSQLSource(
            name=f"{view.name}_source",
            table=view.source.table,
            timestamp_field=view.source.timestamp_field,
            created_timestamp_column=view.source.created_timestamp_column,
            tags={_PARTITION_TAG: view.source.partition_interval},
        )
        schema = [Field(name=k.join_key, dtype=_feast_type(k.value_type)) for k in keys]
        schema += [
            Field(name=f.name, dtype=_feast_type(f.value_type), description=f.description)
            for f in view.features
        ]
        views[view.name] = FeastView(
            name=view.name,
            entities=[entities[name] for name in view.entities],
            ttl=view.ttl,
            schema=schema,
            source=source,
            online=True,
            tags=dict(view.tags),
            description=view.description,
        )
    services = []
    for service in definitions.services:
        by_view: dict[str, list[str]] = {}
        for ref in service.features:
            by_view.setdefault(ref.view, []).append(ref.feature)
        services.append(
            FeastService(
                name=service.name,
                features=[views[name][feats] for name, feats in by_view.items()],
                tags=dict(service.tags),
                description=service.description,
            )
        )
    return [*entities.values(), *views.values(), *services]


def from_feast(
    project: str, entities: list[Any], views: list[Any], services: list[Any]
) -> Definitions:
    """Domain definitions from Feast registry objects."""
    # Feast 0.67 stores an entity's value type as UNKNOWN; the views' entity columns keep it.
    key_types = {c.name: _value_type(c.dtype) for v in views for c in v.entity_columns}
    domain_entities = tuple(
        Entity(
            name=e.name,
            join_key=e.join_key,
            value_type=key_types.get(e.join_key, ValueType.STRING),
            description=e.description,
        )
        for e in entities
        if not e.name.startswith("__dummy")
    )
    domain_views = []
    for view in views:
        source = view.batch_source
        table = source.get_table_query_string()
        domain_views.append(
            FeatureView(
                name=view.name,
                entities=tuple(view.entities),
                features=tuple(
                    Feature(f.name, _value_type(f.dtype), f.description or "")
                    for f in view.features
                ),
                ttl=view.ttl or timedelta(0),
                source=SourceTable(
                    table=table,
                    timestamp_field=source.timestamp_field,
                    created_timestamp_column=source.created_timestamp_column,
                    partition_interval=source.tags.get(_PARTITION_TAG, "month"),
                ),
                tags=dict(view.tags),
                description=view.description,
            )
        )
    domain_services = tuple(
        FeatureService(
            name=s.name,
            features=tuple(
                FeatureRef(projection.name_to_use(), f.name)
                for projection in s.feature_view_projections
                for f in projection.features
            ),
            tags=dict(s.tags),
            description=s.description,
        )
        for s in services
    )
    return Definitions(
        project,
        tuple(sorted(domain_entities, key=lambda e: e.name)),
        tuple(sorted(domain_views, key=lambda v: v.name)),
        tuple(sorted(domain_services, key=lambda s: s.name)),
    )


def ensure_registry_schema(settings: Settings) -> None:
    """Create the registry's schema when missing (Feast creates the tables in it)."""
    try:
        with psycopg.connect(settings.postgres.dsn, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{REGISTRY_SCHEMA}"')
    except psycopg.OperationalError as exc:
        raise BackendUnavailableError(f"PostgreSQL is unreachable: {exc}") from exc


def feature_store(settings: Settings, project: str, repo_path: Path | None = None) -> Any:
    """A Feast ``FeatureStore`` configured from ``settings`` (imports Feast: slow)."""
    from feast import FeatureStore, RepoConfig

    ensure_registry_schema(settings)
    config = RepoConfig(**repo_config_dict(settings, project))
    config.repo_path = repo_path or Path.cwd()
    return FeatureStore(config=config)

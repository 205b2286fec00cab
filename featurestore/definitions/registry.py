"""Applying the definitions to Feast's registry, and reading them back for the rest of the code.

Applying makes the project's registry hold exactly what is applied, like ``feast apply``: an
object of the project that is no longer defined is deleted from the registry first, which also
lets a view change type (a plain ``FeatureView`` becoming a ``StreamFeatureView``; Feast
refuses two views of different types with one name). Only registry entries are deleted: online
rows of a deleted view stay in Redis until their TTL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from featurestore.config import Settings
from featurestore.definitions.feast_codec import feature_store, from_feast, to_feast_objects
from featurestore.definitions.feast_stream import quiet_stream_warnings
from featurestore.definitions.model import Definitions
from featurestore.definitions.repo import PROJECT, REPO_PATH, read_repo
from featurestore.definitions.validate import (
    check_changes,
    check_source_schemas,
    validate_definitions,
)
from featurestore.error_maps import postgres_errors, registry_errors
from featurestore.errors import NotFoundError

if TYPE_CHECKING:  # importing the schema store pulls confluent-kafka
    from featurestore.events.registry import SchemaStore

__all__ = [
    "ApplyResult",
    "apply_definitions",
    "apply_repo",
    "load_definitions",
    "read_registry",
    "register_objects",
]


@dataclass(frozen=True)
class ApplyResult:
    """What ``apply`` did."""

    project: str
    objects: int
    tables: dict[str, str]
    """Offline table name -> how it is partitioned."""


def _apply(
    settings: Settings,
    definitions: Definitions,
    objects: Sequence[Any] | None,
    repo_path: Path | None,
    schema_store: SchemaStore | None,
) -> ApplyResult:
    from featurestore.events.registry import ConfluentSchemaStore
    from featurestore.offline.tables import create_offline_tables

    validate_definitions(definitions)
    if schema_store is not None:
        check_source_schemas(definitions, schema_store)
    else:
        with ConfluentSchemaStore.from_settings(settings.schema_registry) as schemas:
            check_source_schemas(definitions, schemas)
    with feature_store(settings, definitions.project, repo_path) as store:
        try:
            registered: Definitions | None = read_registry(store.registry, definitions.project)
        except NotFoundError:
            registered = None
        check_changes(registered, definitions)
        with (
            postgres_errors("creating the offline tables"),
            psycopg.connect(settings.postgres.dsn, autocommit=True) as conn,
        ):
            tables = create_offline_tables(conn, definitions)
        if objects is None:
            objects = to_feast_objects(definitions, kafka_bootstrap=settings.kafka.bootstrap)
        register_objects(store, objects)
    return ApplyResult(definitions.project, len(objects), tables)


def apply_definitions(
    settings: Settings,
    definitions: Definitions,
    repo_path: Path | None = None,
    *,
    schema_store: SchemaStore | None = None,
) -> ApplyResult:
    """Validate the definitions, create their offline tables and register them with Feast.

    Args:
        settings: Where PostgreSQL (offline tables, SQL registry) and the schema registry are.
        definitions: What to apply (converted by the codec).
        repo_path: Feast's ``repo_path`` (the working directory by default).
        schema_store: Where to look up each source topic's schema (default: the settings'
            schema registry).

    Raises:
        ConfigurationError: a definition is refused (:mod:`featurestore.definitions.validate`);
            nothing was applied.
        BackendUnavailableError: PostgreSQL or the schema registry cannot be reached.
    """
    return _apply(settings, definitions, None, repo_path, schema_store)


def apply_repo(
    settings: Settings,
    path: Path = REPO_PATH,
    project: str = PROJECT,
    *,
    schema_store: SchemaStore | None = None,
) -> ApplyResult:
    """Apply exactly the Feast objects the repo at ``path`` defines (as ``feast apply`` does).

    The objects are validated through their domain form, then registered as written, not
    re-encoded, so that this and ``feast apply`` in ``path`` register the same objects.

    Raises:
        ConfigurationError: a definition is refused; nothing was applied.
        BackendUnavailableError: PostgreSQL or the schema registry cannot be reached.
    """
    repo = read_repo(path, project)
    return _apply(settings, repo.definitions, repo.objects, path, schema_store)


def register_objects(store: Any, objects: Sequence[Any]) -> None:
    """Make the registry of ``store``'s project hold exactly ``objects`` (Feast objects).

    Raises:
        BackendUnavailableError: the registry's PostgreSQL cannot be reached.
        ConfigurationError: Feast refuses an object, or PostgreSQL refuses the login.
    """
    from featurestore.definitions.feast_api import Entity, FeatureService

    project = store.project
    registry = store.registry
    wanted_views = {o.name: type(o) for o in objects if _is_view(o)}
    wanted_services = {o.name for o in objects if isinstance(o, FeatureService)}
    wanted_entities = {o.name for o in objects if isinstance(o, Entity)}
    wanted_sources = {s.name for s in _data_sources(objects)}
    with quiet_stream_warnings(), registry_errors(f"registering project {project!r}"):
        for service in registry.list_feature_services(project, allow_cache=False):
            if service.name not in wanted_services:
                registry.delete_feature_service(service.name, project)
        for view in _registered_views(registry, project):
            if wanted_views.get(view.name) is not type(view):
                registry.delete_feature_view(view.name, project)
        for entity in registry.list_entities(project, allow_cache=False):
            if entity.name not in wanted_entities and not entity.name.startswith("__dummy"):
                registry.delete_entity(entity.name, project)
        for source in registry.list_data_sources(project, allow_cache=False):
            if source.name not in wanted_sources:
                registry.delete_data_source(source.name, project)
        store.apply(list(objects))


def _data_sources(objects: Sequence[Any]) -> list[Any]:
    """The data sources ``FeatureStore.apply`` registers for ``objects``."""
    from featurestore.definitions.feast_api import DataSource

    found = []
    for obj in objects:
        for source in (
            obj,
            getattr(obj, "stream_source", None),
            getattr(obj, "batch_source", None),
        ):
            if isinstance(source, DataSource):
                found.append(source)
                batch = getattr(source, "batch_source", None)
                if isinstance(batch, DataSource):
                    found.append(batch)
    return found


def _is_view(obj: Any) -> bool:
    from featurestore.definitions.feast_api import FeatureView

    return isinstance(obj, FeatureView)


def _registered_views(registry: Any, project: str) -> list[Any]:
    return [
        *registry.list_feature_views(project, allow_cache=False),
        *registry.list_stream_feature_views(project, allow_cache=False),
    ]


def read_registry(registry: Any, project: str) -> Definitions:
    """A project's definitions from a Feast registry object (``FeatureStore.registry``).

    Raises:
        NotFoundError: the project has nothing registered.
        ConfigurationError: a registered object this store cannot use (see ``from_feast``).
        BackendUnavailableError: the registry's PostgreSQL cannot be reached.
    """
    with quiet_stream_warnings(), registry_errors(f"reading project {project!r}"):
        entities = registry.list_entities(project, allow_cache=False)
        views = _registered_views(registry, project)
        services = registry.list_feature_services(project, allow_cache=False)
    if not (entities or views or services):
        raise NotFoundError(
            f"Feast project {project!r} has no definitions; run `featurestore registry apply`"
        )
    return from_feast(project, list(entities), views, list(services))


def load_definitions(settings: Settings, project: str = PROJECT) -> Definitions:
    """Read a project's definitions from the Feast registry (imports Feast: ~7 s, call once).

    Raises:
        NotFoundError: the project has nothing registered.
        BackendUnavailableError: the registry's PostgreSQL cannot be reached.
        ConfigurationError: PostgreSQL refuses the login, or the registry holds an object this
            store cannot use.
    """
    with feature_store(settings, project) as store:
        return read_registry(store.registry, project)

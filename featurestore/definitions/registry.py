"""Applying the definitions to Feast's registry, and reading them back for the rest of the code."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import psycopg

from featurestore.config import Settings
from featurestore.definitions.catalog import PROJECT
from featurestore.definitions.feast_codec import feature_store, from_feast, to_feast_objects
from featurestore.definitions.model import Definitions
from featurestore.errors import BackendUnavailableError, NotFoundError

__all__ = ["ApplyResult", "apply_definitions", "load_definitions"]


@dataclass(frozen=True)
class ApplyResult:
    """What ``apply`` did."""

    project: str
    objects: int
    tables: dict[str, str]
    """Offline table name -> how it is partitioned."""


def apply_definitions(
    settings: Settings, definitions: Definitions, repo_path: Path | None = None
) -> ApplyResult:
    """Register the definitions with Feast (SQL registry) and create their offline tables."""
    from featurestore.offline.tables import create_offline_tables

    try:
        with psycopg.connect(settings.postgres.dsn, autocommit=True) as conn:
            tables = create_offline_tables(conn, definitions)
    except psycopg.OperationalError as exc:
        raise BackendUnavailableError(f"PostgreSQL is unreachable: {exc}") from exc
    store = feature_store(settings, definitions.project, repo_path)
    objects = to_feast_objects(definitions)
    store.apply(objects)
    return ApplyResult(definitions.project, len(objects), tables)


def load_definitions(settings: Settings, project: str = PROJECT) -> Definitions:
    """Read a project's definitions from the Feast registry (imports Feast: ~7 s, call once).

    Raises:
        NotFoundError: the project has nothing registered.
    """
    store = feature_store(settings, project)
    registry = store.registry
    entities = registry.list_entities(project, allow_cache=False)
    views = registry.list_feature_views(project, allow_cache=False)
    services = registry.list_feature_services(project, allow_cache=False)
    if not (entities or views or services):
        raise NotFoundError(
            f"Feast project {project!r} has no definitions; run `featurestore registry apply`"
        )
    return from_feast(project, list(entities), list(views), list(services))

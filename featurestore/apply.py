"""Applying definitions, as ``featurestore registry apply`` does.

Validate them, check each source against its topic's schema, create their offline tables and
register them in Feast's registry. It stands above the definitions and the offline store, which
it joins: the definitions know nothing of the tables made for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from featurestore.config import Settings
from featurestore.definitions.feast_codec import feature_store, to_feast_objects
from featurestore.definitions.model import Definitions
from featurestore.definitions.registry import read_registry, register_objects
from featurestore.definitions.repo import PROJECT, REPO_PATH, read_repo
from featurestore.definitions.validate import (
    check_changes,
    check_source_schemas,
    validate_definitions,
)
from featurestore.error_maps import postgres_errors
from featurestore.errors import NotFoundError
from featurestore.offline.tables import create_offline_tables

if TYPE_CHECKING:  # importing the schema store pulls confluent-kafka
    from featurestore.events.registry import SchemaStore

__all__ = ["ApplyResult", "apply_definitions", "apply_repo"]


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

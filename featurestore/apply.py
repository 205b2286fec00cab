"""Applying definitions, as ``featurestore registry apply`` does, and planning it.

Validate them, check each source against its topic's schema, check each offline table that
exists against its view (:func:`~featurestore.definitions.validate.check_tables`: a table is
never altered), create the missing ones and register them in Feast's registry. It stands above
the definitions and the offline store, which it joins: the definitions know nothing of the
tables made for them.

``plan`` (``featurestore registry plan``) runs the same checks and computes the same
differences (:func:`~featurestore.definitions.changes.diff_definitions`) as ``apply``, and
writes nothing: no registry row, no table, no schema. It reads PostgreSQL in a read-only session
and opens Feast's registry only when the project has something registered, because opening it
writes the project's metadata row. The store's own event schemas, which ``registry apply``
registers before anything else, are tested against the schema registry without registering
them: one the registry would refuse is listed refused, with ``apply``'s message.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import psycopg
from psycopg import sql

from featurestore.config import Settings
from featurestore.definitions.changes import Action
from featurestore.definitions.changes import Change
from featurestore.definitions.changes import DefinitionChanges
from featurestore.definitions.changes import changed_topics
from featurestore.definitions.changes import diff_definitions
from featurestore.definitions.feast_codec import feature_store
from featurestore.definitions.feast_codec import to_feast_objects
from featurestore.definitions.model import Definitions
from featurestore.definitions.registry import read_registry
from featurestore.definitions.registry import register_objects
from featurestore.definitions.repo import PROJECT
from featurestore.definitions.repo import REPO_PATH
from featurestore.definitions.repo import read_repo
from featurestore.definitions.repo_config import REGISTRY_SCHEMA
from featurestore.definitions.validate import check_changes
from featurestore.definitions.validate import check_source_schemas
from featurestore.definitions.validate import check_tables
from featurestore.definitions.validate import validate_definitions
from featurestore.error_maps import postgres_errors
from featurestore.errors import ConfigurationError
from featurestore.errors import NotFoundError
from featurestore.errors import SchemaError
from featurestore.offline.tables import create_offline_tables
from featurestore.offline.tables import table_columns

if TYPE_CHECKING:  # importing the schema store pulls confluent-kafka
    from featurestore.events.registry import SchemaStore

__all__ = ["ApplyResult", "apply_definitions", "apply_repo", "plan_definitions"]


@dataclass(frozen=True)
class ApplyResult:
    """What ``apply`` did."""

    project: str
    objects: int
    tables: dict[str, str]
    """Offline table name -> how it is partitioned."""
    changes: DefinitionChanges | None = None
    """What it changed, as ``plan`` lists it beforehand."""
    topics: frozenset[str] | None = None
    """The event topics whose views it added, changed or removed: their processors compute
    something else now (None: every processor's, as when an entity changed)."""


class _PlannedSchemas:
    """The schema registry as it will be once ``registered_first``'s topics have a schema.

    ``registry apply`` registers the store's own event schemas before it checks the sources;
    ``plan`` registers nothing, so it counts those topics as having one (whether the registry
    would accept each is :func:`_schema_refusals`'s question).
    """

    def __init__(self, store: SchemaStore, registered_first: Mapping[str, str]) -> None:
        from featurestore.events.registry import value_subject

        self._store = store
        self._subjects = {value_subject(topic) for topic in registered_first}

    def register(self, subject: str, schema_text: str) -> int:
        """Refused: a plan registers nothing."""
        raise ConfigurationError(f"a plan registers no schema (subject {subject!r})")

    def check_registration(self, subject: str, schema_text: str) -> None:
        """What the registry would say to registering, which a plan may ask."""
        self._store.check_registration(subject, schema_text)

    def schema_text(self, schema_id: int) -> str:
        """The registry's schema of ``schema_id``."""
        return self._store.schema_text(schema_id)

    def latest_schema_text(self, subject: str) -> str:
        """The registry's latest schema of ``subject``; "" for one ``apply`` registers first."""
        try:
            return self._store.latest_schema_text(subject)
        except NotFoundError:
            if subject in self._subjects:
                return ""
            raise


_SCHEMA_KIND = "event schema"
"""The kind of a plan's change that is a schema ``registry apply`` registers (its subject)."""


def _schema_refusals(store: SchemaStore, registered_first: Mapping[str, str]) -> list[Change]:
    """Each schema of ``registered_first`` (topic -> text) the registry would refuse.

    Marked refused with the error ``apply`` stops at when it registers it; one already held
    by its subject, or a subject without a version, is accepted and not listed.
    """
    from featurestore.events.registry import value_subject

    refused = []
    for topic, text in registered_first.items():
        subject = value_subject(topic)
        try:
            store.check_registration(subject, text)
        except SchemaError as exc:
            refused.append(
                Change(
                    _SCHEMA_KIND,
                    subject,
                    Action.CHANGE,
                    note="apply registers the store's own event schema here first",
                    refused=str(exc),
                )
            )
    return refused


def _check_schemas(
    definitions: Definitions, store: SchemaStore, registered_first: Mapping[str, str]
) -> list[Change]:
    refused = _schema_refusals(store, registered_first)
    check_source_schemas(definitions, _PlannedSchemas(store, registered_first))
    return refused


def _check(
    settings: Settings,
    definitions: Definitions,
    schema_store: SchemaStore | None,
    registered_first: Mapping[str, str] | None = None,
) -> list[Change]:
    """What ``apply`` refuses before it reads the registry: validation, then the schemas.

    Returns:
        The schemas of ``registered_first`` (topic -> text, what ``apply`` registers first)
        that the registry would refuse, as refused changes.
    """
    from featurestore.events.registry import ConfluentSchemaStore

    first = registered_first or {}
    validate_definitions(definitions)
    if schema_store is not None:
        return _check_schemas(definitions, schema_store, first)
    with ConfluentSchemaStore.from_settings(settings.schema_registry) as schemas:
        return _check_schemas(definitions, schemas, first)


def _existing_tables(
    conn: psycopg.Connection[tuple[object, ...]], definitions: Definitions
) -> dict[str, dict[str, str]]:
    """The columns of each of the views' offline tables that exists now."""
    return table_columns(conn, [view.source.table for view in definitions.views])


def _registers_anything(conn: psycopg.Connection[tuple[object, ...]], project: str) -> bool:
    """Whether Feast's SQL registry holds an entity, view or service of ``project``."""
    from feast.infra.registry import sql as feast_sql

    for table in (
        feast_sql.entities,
        feast_sql.feature_views,
        feast_sql.stream_feature_views,
        feast_sql.feature_services,
    ):
        ident = sql.Identifier(REGISTRY_SCHEMA, table.name)
        row = conn.execute("SELECT to_regclass(%s)", (ident.as_string(conn),)).fetchone()
        if row is None or row[0] is None:
            continue
        query = sql.SQL("SELECT 1 FROM {} WHERE project_id = %s LIMIT 1").format(ident)
        if conn.execute(query, (project,)).fetchone() is not None:
            return True
    return False


def _registered(store: Any, project: str) -> Definitions | None:
    try:
        return read_registry(store.registry, project)
    except NotFoundError:
        return None


def _apply(
    settings: Settings,
    definitions: Definitions,
    objects: Sequence[Any] | None,
    repo_path: Path | None,
    schema_store: SchemaStore | None,
) -> ApplyResult:
    _check(settings, definitions, schema_store)
    with feature_store(settings, definitions.project, repo_path) as store:
        registered = _registered(store, definitions.project)
        check_changes(registered, definitions)
        with (
            postgres_errors("creating the offline tables"),
            psycopg.connect(settings.postgres.dsn, autocommit=True) as conn,
        ):
            existing = _existing_tables(conn, definitions)
            check_tables(definitions, existing)
            changes = diff_definitions(registered, definitions, existing)
            tables = create_offline_tables(conn, definitions)
        if objects is None:
            objects = to_feast_objects(definitions, kafka_bootstrap=settings.kafka.bootstrap)
        register_objects(store, objects)
    topics = changed_topics(registered, definitions, changes)
    return ApplyResult(definitions.project, len(objects), tables, changes, topics)


def plan_definitions(
    settings: Settings,
    definitions: Definitions,
    repo_path: Path | None = None,
    *,
    schema_store: SchemaStore | None = None,
    registered_first: Mapping[str, str] | None = None,
) -> DefinitionChanges:
    """What :func:`apply_definitions` would change, changing nothing.

    The same checks as ``apply`` (a refusal raises the same error), then the differences
    between what is registered and ``definitions``; a change ``apply`` refuses
    (:func:`~featurestore.definitions.validate.check_changes`, and
    :func:`~featurestore.definitions.validate.check_tables` on the offline tables that exist)
    is returned marked refused, and so is a schema of ``registered_first`` that the schema
    registry would refuse (kind ``"event schema"``, listed last, apply's registration error
    as its message).

    Args:
        settings: Where PostgreSQL (offline tables, SQL registry) and the schema registry are.
        definitions: What would be applied.
        repo_path: Feast's ``repo_path`` (the working directory by default).
        schema_store: Where to look up each source topic's schema (default: the settings'
            schema registry).
        registered_first: The schema ``registry apply`` registers before it checks, by topic
            (the store's own event topics): each topic is counted as having one, and each
            schema is tested against the registry (registering nothing).

    Raises:
        ConfigurationError: a definition is refused by validation or the schema check.
        BackendUnavailableError: PostgreSQL or the schema registry cannot be reached.
    """
    refused_schemas = _check(settings, definitions, schema_store, registered_first)
    with (
        postgres_errors("reading the Feast registry and the offline tables"),
        psycopg.connect(settings.postgres.dsn, autocommit=True) as conn,
    ):
        conn.execute("SET default_transaction_read_only = on")
        existing = _existing_tables(conn, definitions)
        anything = _registers_anything(conn, definitions.project)
    registered = None
    if anything:
        with feature_store(settings, definitions.project, repo_path) as store:
            registered = _registered(store, definitions.project)
    changes = diff_definitions(registered, definitions, existing)
    return replace(changes, changes=(*changes.changes, *refused_schemas))


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

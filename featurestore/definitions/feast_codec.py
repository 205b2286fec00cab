"""The one edge between domain definitions and Feast objects.

``import feast`` takes seconds, so it happens inside these functions only. Stream feature views
(and the ``featurestore.`` tags that carry what Feast has no field for) are converted in
:mod:`featurestore.definitions.feast_stream`.
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg

from featurestore.config import Settings
from featurestore.definitions.feast_stream import order_features
from featurestore.definitions.feast_stream import quiet_stream_warnings
from featurestore.definitions.feast_stream import stream_from_feast
from featurestore.definitions.feast_stream import stream_view_to_feast
from featurestore.definitions.model import Definitions
from featurestore.definitions.model import Entity
from featurestore.definitions.model import Feature
from featurestore.definitions.model import FeatureRef
from featurestore.definitions.model import FeatureService
from featurestore.definitions.model import FeatureView
from featurestore.definitions.model import SourceTable
from featurestore.definitions.model import ValueType
from featurestore.definitions.problems import Problems
from featurestore.definitions.repo_config import REGISTRY_SCHEMA
from featurestore.definitions.repo_config import repo_config_dict
from featurestore.error_maps import postgres_errors
from featurestore.error_maps import registry_errors
from featurestore.errors import ConfigurationError

__all__ = ["feature_store", "from_feast", "to_feast_objects"]

_PARTITION_TAG = "partition_interval"
_RETENTION_TAG = "retention"
_UNITS = {"d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}


def parse_retention(text: str, where: str) -> timedelta:
    """A retention such as ``30d``, ``12h`` or ``90m`` (a positive whole number and a unit).

    Raises:
        ConfigurationError: anything else; the message names ``where`` and the value.
    """
    number, unit = text.strip()[:-1], text.strip()[-1:].lower()
    if not (number.isascii() and number.isdigit()) or int(number) < 1 or unit not in _UNITS:
        raise ConfigurationError(
            f"{where}: tag {_RETENTION_TAG!r} is {text!r}, not a positive whole number of days,"
            " hours or minutes such as '30d', '12h' or '90m'"
        )
    return int(number) * _UNITS[unit]


def _retention_text(retention: timedelta) -> str:
    for unit, size in _UNITS.items():
        if retention % size == timedelta(0):
            return f"{retention // size}{unit}"
    raise ConfigurationError(f"retention {retention} is not a whole number of minutes")


def _feast_type(value_type: ValueType) -> Any:
    from featurestore.definitions.feast_api import types

    return {
        ValueType.FLOAT64: types.Float64,
        ValueType.INT64: types.Int64,
        ValueType.STRING: types.String,
        ValueType.BOOL: types.Bool,
    }[value_type]


def _value_type(feast_dtype: Any) -> ValueType:
    """The type of a Feast field, among those the offline tables can hold."""
    name = str(feast_dtype)
    for value_type in ValueType:
        if name in (value_type.value, value_type.name) and value_type.has_offline_column:
            return value_type
    raise ConfigurationError(f"feature type {name} is not supported by this store")


def _key_type(entity: Any, columns: dict[str, str]) -> ValueType:
    """The type Feast keys ``entity`` by: its views' column of its join key, or its own type.

    ``columns``: the join key's type named by the views' entity columns (where one lists it).
    A scalar type the store does not key by is returned all the same, for validation to refuse
    naming it; a type that is no scalar at all is refused here.
    """
    text = columns.get(entity.name)
    if text is None:
        if entity.value_type.value == 0:  # UNKNOWN: the store's tables hold join keys as text
            return ValueType.STRING
        try:
            return ValueType(entity.value_type.value)
        except ValueError:
            text = entity.value_type.name
    for value_type in ValueType:
        if text in (value_type.value, value_type.name):
            return value_type
    raise ConfigurationError(
        f"entity {entity.name!r}: join key {entity.join_key!r} has type {text}, which this store"
        " does not support (String)"
    )


def _key_columns(entities: Sequence[Any], views: Sequence[Any]) -> dict[str, str]:
    """Each entity's join key type as its views' entity columns name it.

    Feast keys an entity's rows by the type of the reading view's column (its own value type is
    often UNKNOWN), so views that disagree would key one entity two ways.

    Raises:
        ConfigurationError: two views give one entity's join key different types.
    """
    join_keys = {e.name: e.join_key for e in entities}
    found: dict[str, tuple[str, str]] = {}
    for view in views:
        columns = {c.name: str(c.dtype) for c in view.entity_columns}
        for name in view.entities:
            text = columns.get(join_keys.get(name, ""))
            if text is None:
                continue
            first, first_view = found.setdefault(name, (text, view.name))
            if first != text:
                raise ConfigurationError(
                    f"entity {name!r}: join key {join_keys[name]!r} is {first} in feature view"
                    f" {first_view!r} but {text} in {view.name!r} (an entity has one type)"
                )
    return {name: text for name, (text, _) in found.items()}


def _postgres_source(view: FeatureView) -> Any:
    from feast.infra.offline_stores.contrib.postgres_offline_store.postgres_source import (
        PostgreSQLSource,
    )

    return PostgreSQLSource(
        name=f"{view.name}_source",
        table=view.source.table,
        timestamp_field=view.source.timestamp_field,
        created_timestamp_column=view.source.created_timestamp_column,
        tags={
            _PARTITION_TAG: view.source.partition_interval,
            **(
                {_RETENTION_TAG: _retention_text(view.source.retention)}
                if view.source.retention is not None
                else {}
            ),
        },
    )


def to_feast_objects(definitions: Definitions, *, kafka_bootstrap: str = "") -> list[Any]:
    """Entities, feature views and services as Feast objects, ready for ``FeatureStore.apply``.

    A view with a stream computation becomes a ``StreamFeatureView`` with its own
    ``KafkaSource`` (:mod:`featurestore.definitions.feast_stream`); ``kafka_bootstrap`` is
    recorded on those sources for Feast's own tools.
    """
    from featurestore.definitions.feast_api import Entity as FeastEntity
    from featurestore.definitions.feast_api import FeatureService as FeastService
    from featurestore.definitions.feast_api import FeatureView as FeastView
    from featurestore.definitions.feast_api import Field
    from featurestore.definitions.feast_api import ValueType as FeastValueType

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
    with quiet_stream_warnings():
        for view in definitions.views:
            keys = [definitions.entity(name) for name in view.entities]
            schema = [Field(name=k.join_key, dtype=_feast_type(k.value_type)) for k in keys]
            schema += [
                Field(name=f.name, dtype=_feast_type(f.value_type), description=f.description)
                for f in view.features
            ]
            view_entities = [entities[name] for name in view.entities]
            if view.stream is not None:
                views[view.name] = stream_view_to_feast(
                    view, view_entities, schema, _postgres_source(view), kafka_bootstrap
                )
                continue
            views[view.name] = FeastView(
                name=view.name,
                entities=view_entities,
                ttl=view.ttl,
                schema=schema,
                source=_postgres_source(view),
                online=view.online,
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


def _source_table(view: Any) -> SourceTable:
    source = view.batch_source
    if type(source).__name__ != "PostgreSQLSource":
        raise ConfigurationError(
            f"feature view {view.name!r}: its offline table must be a PostgreSQLSource"
            f" (found {type(source).__name__})"
        )
    return SourceTable(
        table=source.get_table_query_string(),
        timestamp_field=source.timestamp_field,
        created_timestamp_column=source.created_timestamp_column,
        partition_interval=source.tags.get(_PARTITION_TAG, "month"),
        retention=(
            parse_retention(source.tags[_RETENTION_TAG], f"offline table of {view.name!r}")
            if _RETENTION_TAG in source.tags
            else None
        ),
    )


def _view_from_feast(view: Any) -> FeatureView:
    from featurestore.definitions.feast_api import StreamFeatureView

    keys = {c.name for c in view.entity_columns}
    features = tuple(
        Feature(f.name, _value_type(f.dtype), f.description or "")
        for f in view.features
        if f.name not in keys
    )
    tags = dict(view.tags)
    stream = None
    if isinstance(view, StreamFeatureView):
        stream, own_tags = stream_from_feast(view)
        features = order_features(view.name, tags, stream, features)
        tags = own_tags
    return FeatureView(
        name=view.name,
        entities=tuple(view.entities),
        features=features,
        ttl=view.ttl or timedelta(0),
        source=_source_table(view),
        tags=tags,
        description=view.description,
        stream=stream,
        online=bool(view.online),
    )


def _service_refs(service: Any, views: Mapping[str, FeatureView]) -> tuple[FeatureRef, ...]:
    """The features of a Feast ``FeatureService``: its views' projections, then its text refs.

    Feast keeps ``"view:feature"`` and ``"view"`` entries apart until ``FeatureStore.apply``
    resolves them against its registry (after the projections, in that order); a whole view is
    its features in the view's order.
    """
    refs = []
    for projection in service.feature_view_projections:
        _check_projection(service.name, projection)
        refs += [FeatureRef(projection.name, f.name) for f in projection.features]
    for text in getattr(service, "_pending_feature_refs", None) or ():
        view, _, feature = text.partition(":")
        if "@" in view:
            raise ConfigurationError(
                f"feature service {service.name!r}: {text!r} pins a version of a feature view,"
                " which this store does not keep; name the view itself"
            )
        if feature:
            refs.append(FeatureRef(view, feature))
        elif view in views:
            refs += [FeatureRef(view, f.name) for f in views[view].features]
        else:
            raise ConfigurationError(
                f"feature service {service.name!r}: {text!r} names no feature view"
            )
    return tuple(refs)


def _check_projection(service: str, projection: Any) -> None:
    """Refuse what a feature service's view projection asks that the serving path would ignore.

    Feast's ``view.with_name(...)`` and ``view.with_join_key_map(...)`` serve one view under
    another name or keyed by other request columns (the same view twice, for two entities).
    """
    where = f"feature service {service!r}: feature view {projection.name!r}"
    if projection.name_alias and projection.name_alias != projection.name:
        raise ConfigurationError(
            f"{where} is renamed {projection.name_alias!r} (with_name), which this store does"
            " not serve; name the view itself"
        )
    if projection.version_tag is not None:
        raise ConfigurationError(
            f"{where} is pinned to version v{projection.version_tag}, which this store does not"
            " keep; name the view itself"
        )
    if projection.join_key_map:
        raise ConfigurationError(
            f"{where} maps its join keys {dict(projection.join_key_map)} (with_join_key_map),"
            " which this store does not serve; requests name the view's own join key"
        )


def from_feast(
    project: str, entities: Sequence[Any], views: Sequence[Any], services: Sequence[Any]
) -> Definitions:
    """Domain definitions from Feast objects (defined in Python or read from the registry).

    ``views`` holds ``FeatureView`` and ``StreamFeatureView`` objects alike.

    Raises:
        ConfigurationError: a view Feast accepts but this store cannot use (an unsupported
            aggregation function, an unknown ``featurestore.`` tag, an offline table that is
            not PostgreSQL), an entity whose join key is no scalar or is typed differently by
            two views; the message names the view or entity and the field, and lists every
            view refused. A scalar join key
            type the store does not support is kept, for validation to refuse.
    """
    # Feast 0.67 stores an entity's value type as UNKNOWN; the views' entity columns keep it.
    named = [e for e in entities if not e.name.startswith("__dummy")]
    columns = _key_columns(named, views)
    domain_entities = tuple(
        Entity(
            name=e.name,
            join_key=e.join_key,
            value_type=_key_type(e, columns),
            description=e.description,
        )
        for e in named
    )
    problems = Problems()  # every view Feast accepts and this store refuses, at once
    domain_views = []
    with quiet_stream_warnings():
        for view in views:
            with problems.each():
                domain_views.append(_view_from_feast(view))
    by_name = {v.name: v for v in domain_views}
    domain_services = []
    for service in services:
        with problems.each():
            domain_services.append(
                FeatureService(
                    name=service.name,
                    features=_service_refs(service, by_name),
                    tags=dict(service.tags),
                    description=service.description,
                )
            )
    problems.raise_any()
    return Definitions(
        project,
        tuple(sorted(domain_entities, key=lambda e: e.name)),
        tuple(sorted(domain_views, key=lambda v: v.name)),
        tuple(sorted(domain_services, key=lambda s: s.name)),
    )


def ensure_registry_schema(settings: Settings) -> None:
    """Create the registry's schema when missing (Feast creates the tables in it)."""
    with (
        postgres_errors("opening the Feast registry"),
        psycopg.connect(settings.postgres.dsn, autocommit=True) as conn,
    ):
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{REGISTRY_SCHEMA}"')


@contextmanager
def feature_store(settings: Settings, project: str, repo_path: Path | None = None) -> Iterator[Any]:
    """A Feast ``FeatureStore`` configured from ``settings``, closed on leaving (imports Feast).

    Feast's SQL registry opens SQLAlchemy engines whose pooled PostgreSQL connections it never
    closes; left to the garbage collector, each store dropped a connection ("deleted while
    still open") whenever it happened to be collected. They are disposed here on leaving.
    Its registry caches ``project`` only (:mod:`featurestore.definitions.feast_project_store`).
    """
    from featurestore.definitions.feast_api import RepoConfig
    from featurestore.definitions.feast_project_store import ProjectFeatureStore

    ensure_registry_schema(settings)
    config = RepoConfig(**repo_config_dict(settings, project))
    config.repo_path = repo_path or Path.cwd()
    with registry_errors(f"opening project {project!r}"):
        store = ProjectFeatureStore(config=config)
    try:
        yield store
    finally:
        for name in ("write_engine", "read_engine"):  # Feast's SQL registry; others have none
            engine = getattr(store.registry, name, None)
            if engine is not None:
                engine.dispose()

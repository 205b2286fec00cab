"""Registering the definitions in Feast's registry, and reading them back for the rest of the code.

Registering makes the project's registry hold exactly what is registered, like ``feast apply``:
an object of the project that is no longer defined is deleted from the registry first, which
also lets a view change type (a plain ``FeatureView`` becoming a ``StreamFeatureView``; Feast
refuses two views of different types with one name). Only registry entries are deleted: online
rows of a deleted view stay in Redis until their TTL. :mod:`featurestore.apply` validates and
creates the offline tables around it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from featurestore.config import Settings
from featurestore.definitions.feast_codec import feature_store
from featurestore.definitions.feast_codec import from_feast
from featurestore.definitions.feast_stream import quiet_stream_warnings
from featurestore.definitions.model import Definitions
from featurestore.definitions.repo import PROJECT
from featurestore.error_maps import registry_errors
from featurestore.errors import NotFoundError

__all__ = [
    "load_definitions",
    "read_registry",
    "register_objects",
]


def register_objects(store: Any, objects: Sequence[Any]) -> None:
    """Make the registry of ``store``'s project hold exactly ``objects`` (Feast objects).

    Raises:
        BackendUnavailableError: the registry's PostgreSQL cannot be reached.
        ConfigurationError: Feast refuses an object, or PostgreSQL refuses the login.
    """
    from featurestore.definitions.feast_api import Entity
    from featurestore.definitions.feast_api import FeatureService

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

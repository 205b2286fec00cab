"""Feature catalogs: a plain in-memory one, and one read from a Feast repo's registry.

:func:`catalog_from_feast` snapshots a Feast registry into a :class:`StaticCatalog`;
:func:`catalog_from_definitions` builds the same from the typed definitions (``featurestore
serve`` reads its catalog this way, from definitions kept beside the stack:
:mod:`featurestore.definitions.snapshot`; the processors build theirs for one topic,
:meth:`processors.views.MaterializedViews.online_catalog`). Feast is imported only in
:func:`catalog_from_feast`, since importing it takes seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from featurestore.errors import ConfigurationError
from featurestore.errors import NotFoundError
from featurestore.online.base import FeatureCatalog
from featurestore.online.base import FeatureRef
from featurestore.online.base import FeatureSpec
from featurestore.online.base import FeatureViewSpec
from featurestore.online.base import ValueType

if TYPE_CHECKING:
    from featurestore.definitions.model import Definitions

__all__ = [
    "LiveCatalog",
    "StaticCatalog",
    "catalog_from_definitions",
    "catalog_from_feast",
    "catalog_from_feast_repo",
]


_KEYED_AS_FEAST = frozenset(("String", "Int64"))
"""The join key types :mod:`featurestore.online.layout` keys as Feast does (a text value as a
String, a whole number as an Int64): it keys a value by its own type, so the views declare theirs
(:attr:`FeatureViewSpec.join_key_types`) and a request value of another kind is refused."""


def _check_join_key(view: str, join_key: str, type_name: str) -> None:
    """Refuse a join key the layout would key otherwise than Feast (no row would be found)."""
    if type_name not in _KEYED_AS_FEAST:
        raise ConfigurationError(
            f"feature view {view!r}: join key {join_key!r} has type {type_name}, which the"
            f" online store cannot key as Feast does ({' or '.join(sorted(_KEYED_AS_FEAST))})"
        )


@dataclass(frozen=True)
class StaticCatalog:
    """A catalog held in memory: views by name and feature services by name."""

    project: str
    views: Mapping[str, FeatureViewSpec] = field(default_factory=dict)
    services: Mapping[str, tuple[FeatureRef, ...]] = field(default_factory=dict)
    offline_only: frozenset[str] = frozenset()
    """Views declared ``online=False``: not in the online store, refused by name."""

    @classmethod
    def of(
        cls,
        project: str,
        views: Iterable[FeatureViewSpec],
        services: Mapping[str, Iterable[FeatureRef]] | None = None,
        offline_only: Iterable[str] = (),
    ) -> StaticCatalog:
        """Build a catalog; every service's features must exist in ``views``.

        A service may read an ``offline_only`` view (a training set's): a request for it is
        refused by :meth:`view`, naming the view.
        """
        by_name = {view.name: view for view in views}
        catalog = cls(
            project,
            by_name,
            {name: tuple(refs) for name, refs in (services or {}).items()},
            frozenset(offline_only) - set(by_name),
        )
        for name, refs in catalog.services.items():
            for ref in refs:
                if ref.view in catalog.offline_only:
                    continue
                try:
                    catalog.view(ref.view).feature(ref.feature)
                except NotFoundError as exc:
                    raise ConfigurationError(f"feature service {name}: {exc}") from exc
        return catalog

    def view(self, name: str) -> FeatureViewSpec:
        """The view called ``name`` (:class:`NotFoundError` naming why there is none)."""
        try:
            return self.views[name]
        except KeyError:
            if name in self.offline_only:
                raise NotFoundError(
                    f"feature view {name} is offline only (online=False): its rows are in its"
                    " offline table, read them with ExportTrainingDataset"
                ) from None
            raise NotFoundError(f"feature view {name} does not exist") from None

    def feature_service(self, name: str) -> tuple[FeatureRef, ...]:
        """The features of the feature service called ``name``."""
        try:
            return self.services[name]
        except KeyError:
            raise NotFoundError(f"feature service {name} does not exist") from None


class LiveCatalog:
    """A catalog that a newer one of the same project replaces while it is in use.

    The gRPC server serves what is applied without a restart: when the registry changes, its
    :meth:`replace` swaps the catalog, and the readers that derived plans from the old views
    (``on_change``) drop them. Lookups go to the current catalog; everything runs on the
    server's event loop.
    """

    def __init__(self, current: FeatureCatalog) -> None:
        """Start with ``current``."""
        self._current = current
        self._listeners: list[Callable[[], None]] = []

    @property
    def project(self) -> str:
        """The Feast project (never changes)."""
        return self._current.project

    def view(self, name: str) -> FeatureViewSpec:
        """The current catalog's view called ``name``."""
        return self._current.view(name)

    def feature_service(self, name: str) -> tuple[FeatureRef, ...]:
        """The current catalog's feature service called ``name``."""
        return self._current.feature_service(name)

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after each :meth:`replace`."""
        self._listeners.append(listener)

    def replace(self, catalog: FeatureCatalog) -> None:
        """Serve ``catalog`` from now on.

        Raises:
            ConfigurationError: ``catalog`` is of another project (its keys are other keys).
        """
        if catalog.project != self._current.project:
            raise ConfigurationError(
                f"catalog of project {catalog.project!r} cannot replace that of"
                f" {self._current.project!r}"
            )
        self._current = catalog
        for listener in self._listeners:
            listener()


def catalog_from_feast(store: Any) -> StaticCatalog:
    """Snapshot the views (stream views too) and feature services of a ``feast.FeatureStore``.

    Raises:
        ConfigurationError: a view keyed by a type the online store cannot key as Feast does.
    """
    from featurestore.definitions.feast_stream import quiet_stream_warnings

    with quiet_stream_warnings():
        feast_views = [*store.list_feature_views(), *store.list_stream_feature_views()]
    views = []
    offline_only: list[str] = []
    for view in feast_views:
        ttl = view.ttl if view.ttl and view.ttl > timedelta(0) else None
        key_types: dict[str, ValueType] = {}
        for column in view.entity_columns:
            _check_join_key(view.name, column.name, str(column.dtype))
            key_types[column.name] = ValueType(str(column.dtype))
        keys = set(key_types)  # a stream view lists them as features too
        features = tuple(
            FeatureSpec(f.name, ValueType(f.dtype.to_value_type().value))
            for f in view.features
            if f.name not in keys
        )
        join_keys = tuple(view.join_keys)  # the names of its entity columns
        types = tuple(key_types[key] for key in join_keys)
        if not view.online:
            offline_only.append(view.name)
            continue
        views.append(FeatureViewSpec(view.name, join_keys, features, ttl, types))
    services = {
        service.name: [
            FeatureRef(projection.name_to_use(), f.name)
            for projection in service.feature_view_projections
            for f in projection.features
        ]
        for service in store.list_feature_services()
    }
    return StaticCatalog.of(store.project, views, services, offline_only)


def catalog_from_definitions(definitions: Definitions) -> StaticCatalog:
    """Every view (stream views too) and feature service of ``definitions``.

    Views declared ``online=False`` are not served: :meth:`StaticCatalog.view` refuses them by
    name.

    The same catalog as :func:`catalog_from_feast` reads from a registry they were applied to.

    Raises:
        ConfigurationError: a view keyed by a type the online store cannot key as Feast does.
    """
    entities = {entity.name: entity for entity in definitions.entities}
    for view in definitions.views:
        for name in view.entities:
            entity = definitions.entity(name)
            _check_join_key(view.name, entity.join_key, entity.value_type.value)
    views = [
        FeatureViewSpec(
            view.name,
            tuple(entities[name].join_key for name in view.entities),
            tuple(FeatureSpec(f.name, f.value_type) for f in view.features),
            view.ttl if view.ttl > timedelta(0) else None,
            tuple(entities[name].value_type for name in view.entities),
        )
        for view in definitions.views
        if view.online
    ]
    services = {service.name: service.features for service in definitions.services}
    offline_only = [view.name for view in definitions.views if not view.online]
    return StaticCatalog.of(definitions.project, views, services, offline_only)


def catalog_from_feast_repo(repo_path: Path) -> StaticCatalog:
    """Snapshot the registry of the Feast repo at ``repo_path`` (its ``feature_store.yaml``)."""
    if not (repo_path / "feature_store.yaml").is_file():
        raise ConfigurationError(f"no feature_store.yaml in {repo_path}")
    from featurestore.definitions.feast_project_store import ProjectFeatureStore

    return catalog_from_feast(ProjectFeatureStore(repo_path=str(repo_path)))

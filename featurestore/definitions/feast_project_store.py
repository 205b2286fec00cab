"""Feast's ``FeatureStore`` as this store opens it: its SQL registry caches one project only.

Feast's SQL registry keeps a cache of the whole registry (``SqlRegistry.proto()``): ten queries
for every project in it, run when the registry is opened and again after every object written
(``cache_mode="sync"``, Feast's default). One ``apply`` writes about twenty objects, so its cost
grew with every other project in the shared registry: on this machine, with 183 other projects,
one apply of the market definitions took 92 s, 42,000 queries, almost all of them rebuilding that
cache (Feast's own report: feast-dev/feast#4425, not merged). The store opens one Feast project
per ``FeatureStore`` and reads the registry with ``allow_cache=False``; Feast's own cached reads
(``get_historical_features``, ``get_online_features``) read the store's project too. So the
cache here holds that project alone, and opening or applying costs the same however many
projects share the registry.

Imports Feast: import it lazily, like :mod:`featurestore.definitions.feast_api`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from featurestore.definitions.feast_api import FeatureStore
from featurestore.definitions.feast_api import Project
from featurestore.definitions.feast_api import SqlRegistry

__all__ = ["ProjectFeatureStore", "ProjectSqlRegistry"]


class ProjectSqlRegistry(SqlRegistry):
    """Feast's SQL registry whose cache (``proto()``) holds the project it was opened for.

    Everything else is Feast's: reads with ``allow_cache=False`` (``list_projects`` included,
    which lists every project) go to the database as before; a cached read (``allow_cache=True``)
    knows only this project, as a store opened for it asks about no other.
    """

    _building_cache = False

    def __init__(self, registry_config: Any, project: str, repo_path: Path | None) -> None:
        """Feast's ``SqlRegistry(registry_config, project, repo_path)``, caching ``project``."""
        self.cached_project = project  # before Feast's __init__, which builds the cache
        super().__init__(registry_config, project, repo_path)

    def proto(self) -> Any:
        """The registry's content for this registry's project (Feast's ``RegistryProto``)."""
        self._building_cache = True
        try:
            return super().proto()
        finally:
            self._building_cache = False

    def list_projects(
        self, allow_cache: bool = False, tags: dict[str, str] | None = None
    ) -> list[Project]:
        """Every project, or the cached project alone while the cache is built.

        Feast's ``proto()`` takes the projects it reads from here.
        """
        projects: list[Project] = super().list_projects(allow_cache=allow_cache, tags=tags)
        if self._building_cache:
            return [p for p in projects if p.name == self.cached_project]
        return projects


class ProjectFeatureStore(FeatureStore):
    """Feast's ``FeatureStore`` whose SQL registry is a :class:`ProjectSqlRegistry`."""

    def _create_registry(self) -> Any:
        if self.config.registry.registry_type == "sql":
            return ProjectSqlRegistry(self.config.registry, self.config.project, None)
        return super()._create_registry()

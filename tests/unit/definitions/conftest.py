from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Any]:
    """Feast ``FeatureStore`` factory over Feast's SQL registry in a SQLite file, per project.

    The same registry code as production (``registry_type: sql``), without a server.
    """
    from feast import FeatureStore
    from feast import RepoConfig

    folder = tmp_path_factory.mktemp("feast")

    def make(project: str) -> Any:
        config = RepoConfig(
            project=project,
            provider="local",
            entity_key_serialization_version=3,
            registry={
                "registry_type": "sql",
                "path": f"sqlite:///{folder / 'registry.db'}",
                "cache_ttl_seconds": 0,
            },
            offline_store={
                "type": "postgres",
                "host": "127.0.0.1",
                "port": 1,
                "database": "none",
                "db_schema": "public",
                "user": "none",
                "password": "none",
            },
            online_store={"type": "redis", "connection_string": "127.0.0.1:1"},
        )
        config.repo_path = Path(folder)
        return FeatureStore(config=config)

    return make

"""Feast's repository configuration, built from :class:`~featurestore.config.Settings`.

Every address comes from the settings; ``registry/feature_store.yaml`` holds the same
configuration with ``${FEATURESTORE_*}`` placeholders (Feast expands environment variables when
it reads the file) so that Feast's own CLI works from that folder too.

The registry is Feast's SQL registry in the offline store's PostgreSQL database, in its own
schema (:data:`REGISTRY_SCHEMA`), so that every process of the store shares it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote
from urllib.parse import urlencode

from featurestore.config import RedisSettings
from featurestore.config import Settings
from featurestore.errors import ConfigurationError

__all__ = ["REGISTRY_SCHEMA", "online_store_config", "registry_url", "repo_config_dict"]

REGISTRY_SCHEMA = "feast_registry"
"""PostgreSQL schema holding Feast's registry tables, apart from the offline tables."""


def registry_url(settings: Settings) -> str:
    """The SQLAlchemy URL of the SQL registry (psycopg 3 driver), with libpq's options."""
    pg = settings.postgres
    password = quote(pg.password.get_secret_value(), safe="")
    user = quote(pg.user, safe="")
    return (
        f"postgresql+psycopg://{user}:{password}@{pg.host}:{pg.port}/{pg.database}"
        f"?{urlencode(pg.libpq_options())}"
    )


def online_store_config(redis: RedisSettings) -> dict[str, Any]:
    """Feast's ``online_store`` section for the store's Redis: one server, or a Redis Cluster.

    The ACL user and TLS go in the connection string as Feast passes them to redis-py
    (``,ssl=true,username=...,password=...``); Feast splits that string at commas, so a password
    holding a comma cannot be given to Feast.
    """
    extras = "".join(f",{key}={value}" for key, value in redis.client_kwargs().items())
    if "," in str(redis.client_kwargs().get("password", "")):
        raise ConfigurationError(
            "FEATURESTORE_REDIS__PASSWORD holds a comma, which Feast's Redis connection string "
            "cannot carry"
        )
    extras = extras.replace(",ssl=True", ",ssl=true")
    if redis.cluster:
        nodes = ",".join(f"{host}:{port}" for host, port in redis.startup_nodes)
        return {
            "type": "redis",
            "redis_type": "redis_cluster",
            "connection_string": nodes + extras,
        }
    return {
        "type": "redis",
        "connection_string": f"{redis.host}:{redis.port},db={redis.db}{extras}",
    }


def repo_config_dict(settings: Settings, project: str) -> dict[str, Any]:
    """The keyword arguments of Feast's ``RepoConfig`` (the content of ``feature_store.yaml``)."""
    pg = settings.postgres
    return {
        "project": project,
        "provider": "local",
        "entity_key_serialization_version": 3,
        "registry": {
            "registry_type": "sql",
            "path": registry_url(settings),
            "cache_ttl_seconds": 60,
            "sqlalchemy_config_kwargs": {
                "echo": False,
                "pool_pre_ping": True,
                "connect_args": {"options": f"-c search_path={REGISTRY_SCHEMA}"},
            },
        },
        "offline_store": {
            "type": "postgres",
            "host": pg.host,
            "port": pg.port,
            "database": pg.database,
            "db_schema": "public",
            "user": pg.user,
            "password": pg.password.get_secret_value(),
            "sslmode": pg.sslmode,
            **({"sslrootcert_path": str(pg.ssl_root_cert)} if pg.ssl_root_cert else {}),
        },
        "online_store": online_store_config(settings.redis),
    }

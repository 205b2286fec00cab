"""Clean-up of what a test wrote to the stack's Redis."""

from __future__ import annotations

import redis

from featurestore.config import RedisSettings

__all__ = ["delete_project_keys"]


def delete_project_keys(settings: RedisSettings, *projects: str) -> None:
    """Delete every key of the Feast ``projects`` (a key ends with its project's name)."""
    client = redis.Redis(
        host=settings.host, port=settings.port, db=settings.db, **settings.client_kwargs()
    )
    with client:
        for project in projects:
            keys = [k for k in client.scan_iter(count=1000) if k.endswith(project.encode())]
            if keys:
                client.delete(*keys)

"""Fixtures of the online store's integration tests: the stack's Redis, a project of their own.

Each test gets a Feast project name of its own, so that its keys never meet another test's (or the
running pipeline's); the keys are deleted afterwards.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import pytest
import redis

from featurestore.config import Settings
from featurestore.online import RedisOnlineStore, StaticCatalog
from featurestore.online.testing import market_catalog

T = TypeVar("T")


@pytest.fixture
def project(stack: Settings) -> Iterator[str]:
    name = f"fs_test_{uuid.uuid4().hex[:10]}"
    yield name
    client = redis.Redis(
        host=stack.redis.host,
        port=stack.redis.port,
        db=stack.redis.db,
        **stack.redis.client_kwargs(),
    )
    with client:
        keys = [k for k in client.scan_iter(count=1000) if k.endswith(name.encode())]
        if keys:
            client.delete(*keys)


@pytest.fixture
def catalog(project: str) -> StaticCatalog:
    return market_catalog(project)


@pytest.fixture
def with_store(
    stack: Settings, catalog: StaticCatalog
) -> Callable[[Callable[[RedisOnlineStore], Awaitable[T]]], T]:
    """Runs ``fn(store)`` on a fresh event loop with a store bound to it."""

    def run(fn: Callable[[RedisOnlineStore], Awaitable[T]]) -> T:
        async def main() -> T:
            store = RedisOnlineStore.from_settings(stack.redis, catalog)
            try:
                return await fn(store)
            finally:
                await store.close()

        return asyncio.run(main())

    return run

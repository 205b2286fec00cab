"""Fixtures of the online store's integration tests: the stack's Redis, a project of their own.

Each test gets a Feast project name of its own, so that its keys never meet another test's (or the
running pipeline's); the keys are deleted afterwards.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Iterator
from typing import TypeVar

import pytest

from featurestore.config import Settings
from featurestore.online import RedisOnlineStore
from featurestore.online import StaticCatalog
from featurestore.online.testing import delete_project_keys
from featurestore.online.testing import market_catalog

T = TypeVar("T")


@pytest.fixture
def project(stack: Settings) -> Iterator[str]:
    name = f"fs_test_{uuid.uuid4().hex[:10]}"
    yield name
    delete_project_keys(stack.redis, name)


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

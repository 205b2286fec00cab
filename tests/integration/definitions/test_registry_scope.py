"""Opening and applying a project cost the same however many other projects share the registry.

Feast's SQL registry rebuilt a cache of every project (ten queries each) when opened and after
each object written: one apply of the market definitions took 92 s beside 183 other projects.
On the stack's PostgreSQL, under projects of the test's own: an apply runs as many statements
with five more projects in the registry as without them, the cache holds the opened project,
and Feast's cached reads and its project list still answer as before.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from featurestore.apply import apply_definitions
from featurestore.config import Settings
from featurestore.definitions import market_definitions
from featurestore.definitions.feast_codec import feature_store
from featurestore.definitions.feast_stream import quiet_stream_warnings
from tests.integration.definitions.projects import drop_project

pytestmark = pytest.mark.integration


@contextmanager
def _counted() -> Iterator[list[str]]:
    """The SQL statements every SQLAlchemy engine runs in the block (Feast's registry's)."""
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(Engine, "before_cursor_execute", record)


@pytest.fixture
def projects(stack: Settings) -> Iterator[list[str]]:
    """Names of projects of this test's own (the first one applied), removed afterwards."""
    run = uuid.uuid4().hex[:8]
    names = [f"fs_scope_{run}_{i}" for i in range(6)]
    yield names
    views = tuple(view.name for view in market_definitions(names[0]).views)
    for name in names:
        drop_project(stack, name, views)


def test_an_apply_costs_the_same_beside_more_projects(stack: Settings, projects: list[str]) -> None:
    from featurestore.definitions.feast_api import Project

    mine, others = projects[0], projects[1:]
    definitions = market_definitions(mine, table_prefix=f"{mine}_")
    apply_definitions(stack, definitions)
    with _counted() as alone:
        apply_definitions(stack, definitions)
    for other in others:
        with feature_store(stack, other) as store:
            store.registry.apply_project(Project(name=other), commit=True)
    with _counted() as beside:
        apply_definitions(stack, definitions)

    assert len(beside) == len(alone), f"{len(alone)} statements alone, {len(beside)} beside"

    with feature_store(stack, mine) as store, quiet_stream_warnings():
        cached = store.registry.cached_registry_proto
        assert [p.spec.name for p in cached.projects] == [mine]
        listed = {p.name for p in store.registry.list_projects(allow_cache=False)}
        assert set(projects) <= listed
        stream_views = store.registry.list_stream_feature_views(mine, allow_cache=True)
        assert {v.name for v in stream_views} == {v.name for v in definitions.views}

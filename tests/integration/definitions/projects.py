"""Feast projects of a test's own on the stack: the registry CLI, and the clean-up after."""

from __future__ import annotations

import psycopg
from click.testing import CliRunner
from click.testing import Result

from featurestore.cli import main
from featurestore.config import Settings
from featurestore.definitions.repo_config import REGISTRY_SCHEMA

__all__ = ["drop_project", "registry"]


def registry(*args: str) -> Result:
    """``featurestore registry ARGS``, in process."""
    return CliRunner().invoke(main, ["registry", *args])


def drop_project(stack: Settings, project: str, views: tuple[str, ...]) -> None:
    """Remove ``project``'s rows from Feast's SQL registry and its views' offline tables."""
    with psycopg.connect(stack.postgres.dsn, autocommit=True) as conn:
        for view in views:
            conn.execute(f'DROP TABLE IF EXISTS "{project}_{view}" CASCADE')
        for (table,) in conn.execute(
            "SELECT table_name FROM information_schema.columns"
            " WHERE table_schema = %s AND column_name = 'project_id'",
            (REGISTRY_SCHEMA,),
        ).fetchall():
            conn.execute(
                f'DELETE FROM "{REGISTRY_SCHEMA}"."{table}" WHERE project_id = %s', (project,)
            )

"""``featurestore registry plan`` lists what ``apply`` would change, and writes nothing.

On the stack's PostgreSQL and schema registry, under a project and offline tables of the test's
own: a plan of a fresh project adds everything and leaves the registry and the tables as they
were; after ``apply``, an edit (a TTL changed, a view added, one removed) is listed exactly; a
change ``apply`` refuses makes the plan exit 1 with ``apply``'s own message.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import Result

from featurestore.config import Settings
from featurestore.definitions import load_definitions
from featurestore.definitions.repo_config import REGISTRY_SCHEMA
from tests.integration.definitions.projects import drop_project
from tests.integration.definitions.projects import registry
from tests.integration.definitions.projects import trade_views_repo

pytestmark = pytest.mark.integration

_MEAN = [("mean_5m", "mean", 5)]
_MAX = [("max_15m", "max", 15)]


@pytest.fixture
def project(stack: Settings) -> Iterator[str]:
    name = f"fs_plan_{uuid.uuid4().hex[:8]}"
    yield name
    drop_project(stack, name, ("a", "b", "c"))


def _repo(folder: Path, stack: Settings, project: str, views: dict[str, object]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = trade_views_repo(stack.topics.trades, f"{project}_")
    text += "".join(f"{name} = view({name!r}, *{spec!r})\n" for name, spec in views.items())
    (folder / "views.py").write_text(text)
    return folder


def _rows_of(stack: Settings, project: str) -> dict[str, int]:
    """Rows of ``project`` in each registry table, and which of its offline tables exist."""
    found = {}
    with psycopg.connect(stack.postgres.dsn, autocommit=True) as conn:
        for (table,) in conn.execute(
            "SELECT table_name FROM information_schema.columns"
            " WHERE table_schema = %s AND column_name = 'project_id'",
            (REGISTRY_SCHEMA,),
        ).fetchall():
            query = f'SELECT count(*) FROM "{REGISTRY_SCHEMA}"."{table}" WHERE project_id = %s'
            row = conn.execute(query, (project,)).fetchone()
            if row is not None and row[0]:
                found[table] = row[0]
        for view in ("a", "b", "c"):
            row = conn.execute("SELECT to_regclass(%s)", (f"{project}_{view}",)).fetchone()
            if row is not None and row[0] is not None:
                found[f"offline table {view}"] = 1
    return found


def _changes(result: Result) -> list[str]:
    """The lines listing changes (summary line left out), unindented."""
    return [line.strip() for line in result.stdout.splitlines()[1:]]


def test_plan_lists_what_apply_changes_and_writes_nothing(
    stack: Settings, project: str, tmp_path: Path
) -> None:
    repo = _repo(tmp_path / "repo", stack, project, {"a": (1, _MEAN), "b": (1, _MAX)})
    args = ["--repo", str(repo), "--project", project]

    fresh = registry("plan", *args)
    assert fresh.exit_code == 0, fresh.output
    assert fresh.stdout.splitlines() == [
        f"Feast project {project!r}: 3 to add, 0 to change, 0 to remove",
        "entities:",
        "  + entity symbol (join key symbol, String)",
        "feature views:",
        f"  + feature view a (offline table {project}_a: to be created, backfilled from the log"
        " by the processors)",
        f"  + feature view b (offline table {project}_b: to be created, backfilled from the log"
        " by the processors)",
    ]
    assert _rows_of(stack, project) == {}  # no registry row, not even Feast's project metadata

    applied = registry("apply", *args)
    assert applied.exit_code == 0, applied.output
    assert "Feast project" in applied.stdout
    applied_lines = applied.stdout.splitlines()
    summary_at = next(i for i, line in enumerate(applied_lines) if " added, " in line)
    assert [line.strip() for line in applied_lines[summary_at + 1 :]] == _changes(fresh)

    unchanged = registry("plan", *args)
    assert (unchanged.exit_code, unchanged.stdout) == (
        0,
        f"no changes to Feast project {project!r}\n",
    )

    _repo(repo, stack, project, {"a": (2, _MEAN), "c": (1, _MAX)})
    before = _rows_of(stack, project)
    edited = registry("plan", *args)
    assert edited.exit_code == 0, edited.output
    assert edited.stdout.splitlines() == [
        f"Feast project {project!r}: 1 to add, 1 to change, 1 to remove",
        "feature views:",
        "  ~ feature view a: ttl 1:00:00 -> 2:00:00",
        "  - feature view b (no longer written; its table and online rows are kept)",
        f"  + feature view c (offline table {project}_c: to be created, backfilled from the log"
        " by the processors)",
    ]
    as_json = registry("plan", *args, "--json")
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.stdout)
    assert data["counts"] == {"add": 1, "change": 1, "remove": 1}
    assert [(c["name"], c["action"]) for c in data["changes"]] == [
        ("a", "change"),
        ("b", "remove"),
        ("c", "add"),
    ]
    assert _rows_of(stack, project) == before
    registered = load_definitions(stack, project)
    assert [v.name for v in registered.views] == ["a", "b"]

    applied = registry("apply", *args)
    assert applied.exit_code == 0, applied.output
    assert [line.strip() for line in applied.stdout.splitlines()[-4:]][1:] == _changes(edited)[1:]
    assert registry("plan", *args).stdout == f"no changes to Feast project {project!r}\n"


def test_plan_refuses_what_apply_refuses_with_its_message(
    stack: Settings, project: str, tmp_path: Path
) -> None:
    repo = _repo(tmp_path / "repo", stack, project, {"a": (1, _MEAN)})
    args = ["--repo", str(repo), "--project", project]
    assert registry("apply", *args).exit_code == 0

    _repo(repo, stack, project, {"a": (1, [*_MEAN, ("max_5m", "max", 5)])})
    planned = registry("plan", *args)
    assert planned.exit_code == 1
    assert isinstance(planned.exception, SystemExit) and "Traceback" not in planned.output
    refused = registry("apply", *args)
    assert refused.exit_code == 1
    message = refused.stderr.strip().removeprefix("registry apply failed: ")
    assert message.startswith("feature view 'a': aggregation max_5m changes from (none) to max(")
    assert planned.stderr == f"registry plan: apply would refuse: {message}\n"
    assert f"! feature view a: refused: {message}" in planned.stdout
    assert [v.feature_names for v in load_definitions(stack, project).views] == [("mean_5m",)]

    _repo(repo, stack, project, {"a": (1, _MEAN), "b": (1, _MAX)})
    text = (repo / "views.py").read_text().replace(repr(stack.topics.trades), "'fs_plan_none'")
    (repo / "views.py").write_text(text)
    no_schema = registry("plan", *args)
    applying = registry("apply", *args)
    assert (no_schema.exit_code, applying.exit_code) == (1, 1)
    assert "has no schema in the schema registry" in applying.stderr
    assert no_schema.stderr == applying.stderr.replace("registry apply", "registry plan")

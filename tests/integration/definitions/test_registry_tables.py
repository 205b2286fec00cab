"""``registry plan`` and ``apply`` refuse a view whose offline table exists with other columns.

On the stack's PostgreSQL and schema registry, under a project and offline tables of the test's
own: a batch view that gains, loses or retypes a feature, a removed view added again over its
old table, and a stream view whose entity's join key changes are each refused by ``plan``
(exit 1) and ``apply`` with the same message, and the table and the registry stay as they were,
so that rows are still written and exported as before. Without the check ``apply`` accepted
them and the next write or export failed on a missing column or a type it did not expect.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from pathlib import Path

import pandas as pd
import psycopg
import pytest

from featurestore.config import Settings
from featurestore.definitions import load_definitions
from featurestore.errors import ConfigurationError
from featurestore.offline.write import write_feature_rows
from tests.integration.definitions.projects import drop_project
from tests.integration.definitions.projects import registry
from tests.integration.definitions.projects import trade_views_repo

pytestmark = pytest.mark.integration

_ROLLING = 'rolling = view("rolling", 1, [("mean_5m", "mean", 5)])\n'
"""The stream view: the mean price of 5 minutes."""

_BATCH = """
fundamentals = FeatureView(
    name="fundamentals",
    entities=[symbol],
    ttl=timedelta(days=30),
    schema=[Field(name={join_key!r}, dtype=String), {fields}],
    source=PostgreSQLSource(
        name="fundamentals_source",
        table={prefix!r} + "fundamentals",
        timestamp_field="event_timestamp",
        created_timestamp_column="created_timestamp",
    ),
)
"""

_PE = 'Field(name="pe", dtype=Float64)'
_EPS = 'Field(name="eps", dtype=Float64)'


@pytest.fixture
def project(stack: Settings) -> Iterator[str]:
    name = f"fs_tables_{uuid.uuid4().hex[:8]}"
    yield name
    drop_project(stack, name, ("rolling", "fundamentals"))


def _repo(
    folder: Path, stack: Settings, project: str, fields: str | None, join_key: str = "symbol"
) -> list[str]:
    """The repo's stream view, and its batch view with ``fields`` (None: none); its CLI args."""
    folder.mkdir(parents=True, exist_ok=True)
    prefix = f"{project}_"
    text = trade_views_repo(stack.topics.trades, prefix, join_key) + _ROLLING
    if fields is not None:
        text += _BATCH.format(fields=fields, prefix=prefix, join_key=join_key)
    (folder / "views.py").write_text(text)
    return ["--repo", str(folder), "--project", project]


def _columns(stack: Settings, table: str) -> list[str]:
    with psycopg.connect(stack.postgres.dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
            " AND NOT attisdropped ORDER BY attnum",
            (table,),
        ).fetchall()
    return [str(name) for (name,) in rows]


def _write(stack: Settings, project: str, day: int) -> int:
    """Write one row of every feature the registry holds for ``fundamentals``."""
    defs = load_definitions(stack, project)
    view = defs.view("fundamentals")
    at = datetime(2026, 1, day, tzinfo=UTC)
    row = {"symbol": ["AAA"], "event_timestamp": [at], "created_timestamp": [at]}
    row.update({f.name: [1.5] for f in view.features})
    with psycopg.connect(stack.postgres.dsn, autocommit=True) as conn:
        return write_feature_rows(conn, defs, "fundamentals", pd.DataFrame(row))


def _refused(args: list[str]) -> str:
    """Plan and apply both refuse, with one message, printed as a message: returns it."""
    planned = registry("plan", *args)
    applied = registry("apply", *args)
    assert (planned.exit_code, applied.exit_code) == (1, 1), planned.output + applied.output
    assert "Traceback" not in planned.output + applied.output
    message = applied.stderr.strip().removeprefix("registry apply failed: ")
    assert planned.stderr == f"registry plan: apply would refuse: {message}\n"
    return message


def _advice(view: str, table: str) -> str:
    return (
        ". The table is never altered, so that the rows already written keep their meaning;"
        " apply the change as a new view with an offline table of its own (for example"
        f" {view}_v2, table {table}_v2) instead"
    )


def test_a_batch_view_whose_features_change_is_refused_by_plan_and_apply(
    stack: Settings, project: str, tmp_path: Path
) -> None:
    args = _repo(tmp_path / "repo", stack, project, _PE)
    assert registry("apply", *args).exit_code == 0
    assert _write(stack, project, 1) == 1
    table = f"{project}_fundamentals"
    columns = _columns(stack, table)
    head = f"feature view 'fundamentals': its offline table {table!r} already exists with other"

    _repo(tmp_path / "repo", stack, project, f"{_PE}, {_EPS}")
    assert _refused(args) == f"{head} columns: feature eps (Float64) has no column" + _advice(
        "fundamentals", table
    )
    _repo(tmp_path / "repo", stack, project, 'Field(name="pe", dtype=Int64)')
    assert _refused(args) == (
        f"{head} columns: feature pe (Int64) needs bigint, but the column is double precision"
        + _advice("fundamentals", table)
    )
    # Nothing changed: the registry holds the view as first applied, its table fits it.
    assert [f.name for f in load_definitions(stack, project).view("fundamentals").features] == [
        "pe"
    ]
    assert _columns(stack, table) == columns
    assert _write(stack, project, 2) == 1

    # The change as a new view, with a table of its own, is applied.
    text = _BATCH.format(fields=f"{_PE}, {_EPS}", join_key="symbol", prefix=f"{project}_")
    text = text.replace('"fundamentals', '"fundamentals_v2').replace("fundamentals =", "v2 =")
    _repo(tmp_path / "repo", stack, project, _PE)
    with (tmp_path / "repo" / "views.py").open("a") as views:
        views.write(text)
    applied = registry("apply", *args)
    assert applied.exit_code == 0, applied.output
    assert _columns(stack, f"{table}_v2")[3:5] == ["pe", "eps"]
    with psycopg.connect(stack.postgres.dsn, autocommit=True) as conn:
        conn.execute(f'DROP TABLE IF EXISTS "{table}_v2" CASCADE')


def test_a_removed_view_added_again_over_its_table_is_refused(
    stack: Settings, project: str, tmp_path: Path
) -> None:
    args = _repo(tmp_path / "repo", stack, project, f"{_PE}, {_EPS}")
    assert registry("apply", *args).exit_code == 0
    _repo(tmp_path / "repo", stack, project, None)
    removed = registry("apply", *args)
    assert removed.exit_code == 0, removed.output
    assert "- feature view fundamentals (its table and online rows are kept)" in removed.stdout

    _repo(tmp_path / "repo", stack, project, _PE)
    table = f"{project}_fundamentals"
    assert _refused(args) == (
        f"feature view 'fundamentals': its offline table {table!r} already exists with other"
        " columns: column eps (double precision) is not declared by the view (a feature or join"
        " key removed)" + _advice("fundamentals", table)
    )
    # The view as it was is accepted again over its table.
    _repo(tmp_path / "repo", stack, project, f"{_PE}, {_EPS}")
    assert registry("apply", *args).exit_code == 0
    assert _write(stack, project, 3) == 1


def test_a_stream_view_whose_join_key_or_topic_changes_is_refused(
    stack: Settings, project: str, tmp_path: Path
) -> None:
    args = _repo(tmp_path / "repo", stack, project, None)
    assert registry("apply", *args).exit_code == 0
    table = f"{project}_rolling"

    _repo(tmp_path / "repo", stack, project, None, join_key="ticker")
    planned = registry("plan", *args)
    assert "  ~ entity symbol: join key symbol -> ticker" in planned.stdout
    assert (
        f"  ~ feature view rolling: offline table {table}: its columns differ from the view's"
        in planned.stdout
    )
    assert _refused(args) == (
        f"feature view 'rolling': its offline table {table!r} already exists with other"
        " columns: join key ticker has no column; column symbol (text) is not declared by the"
        " view (a feature or join key removed)" + _advice("rolling", table)
    )

    _repo(tmp_path / "repo", stack, project, None)
    text = (tmp_path / "repo" / "views.py").read_text()
    text = text.replace(repr(stack.topics.trades), repr(stack.topics.quotes))
    (tmp_path / "repo" / "views.py").write_text(text)
    assert _refused(args).startswith(
        f"feature view 'rolling': source topic changes from {stack.topics.trades} to"
        f" {stack.topics.quotes}, which would reinterpret the rows already computed"
    )
    assert [e.join_key for e in load_definitions(stack, project).entities] == ["symbol"]


def test_a_table_altered_by_hand_is_named_by_the_write_and_by_plan(
    stack: Settings, project: str, tmp_path: Path
) -> None:
    args = _repo(tmp_path / "repo", stack, project, f"{_PE}, {_EPS}")
    assert registry("apply", *args).exit_code == 0
    table = f"{project}_fundamentals"
    with psycopg.connect(stack.postgres.dsn, autocommit=True) as conn:
        conn.execute(f'ALTER TABLE "{table}" DROP COLUMN eps')
    # Before, psycopg's UndefinedColumn reached the writer's caller as it was.
    with pytest.raises(ConfigurationError) as info:
        _write(stack, project, 1)
    assert str(info.value).startswith(
        "PostgreSQL (writing rows of feature view 'fundamentals'): column \"eps\""
    )
    assert "`featurestore registry plan` names the difference" in str(info.value)
    planned = registry("plan", *args)
    assert planned.exit_code == 1
    assert "feature eps (Float64) has no column" in planned.stderr

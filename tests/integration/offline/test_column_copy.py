"""The columnar copy: the same rows as the join in PostgreSQL, and never used once inexact."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from click.testing import CliRunner
from psycopg import sql

from featurestore.cli import main
from featurestore.config import Settings
from featurestore.config import load_settings
from featurestore.offline import PostgresOfflineStore
from featurestore.offline import TrainingRequest
from featurestore.offline import write_feature_rows
from featurestore.offline.column_copy import build_copy
from featurestore.offline.column_copy import load_copy
from featurestore.offline.column_copy import refresh_copies
from tests.integration.offline.conftest import _filled
from tests.integration.offline.conftest import _upsert
from tests.integration.offline.pit_data import START
from tests.integration.offline.pit_data import OfflineData
from tests.integration.offline.pit_data import entity_rows

pytestmark = pytest.mark.integration

ALL = "market_features_v1"
MIDDLE = (START + pd.Timedelta(hours=2)).to_pydatetime()
"""An ``until`` inside the data: entity rows on both sides of it."""
AFTER = (START + pd.Timedelta(days=1)).to_pydatetime()
"""An ``until`` after every row."""


def _build(data: OfflineData, root: Path, until: datetime) -> None:
    with psycopg.connect(data.settings.postgres.dsn, autocommit=True) as conn:
        for view in data.definitions.views:
            build_copy(conn, data.definitions, view, root, until)


def _export(data: OfflineData, entities: pd.DataFrame, root: Path | None) -> pd.DataFrame:
    with PostgresOfflineStore(
        data.settings.postgres.dsn, data.definitions, column_copies=root, chunk_rows=700
    ) as store:
        return store.to_pandas(entities, TrainingRequest(feature_service=ALL))


def _exact_copies(data: OfflineData, root: Path) -> int:
    with psycopg.connect(data.settings.postgres.dsn, autocommit=True) as conn:
        loaded = [load_copy(conn, data.definitions, v, root) for v in data.definitions.views]
    return sum(copy is not None for copy in loaded)


@pytest.mark.parametrize("layout", ["offline_data", "pk_offline_data"])
@pytest.mark.parametrize("until", [MIDDLE, AFTER], ids=["until-inside", "until-after"])
def test_the_copy_joins_the_rows_postgres_joins(
    request: pytest.FixtureRequest,
    layout: str,
    until: datetime,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    data: OfflineData = request.getfixturevalue(layout)
    _build(data, tmp_path, until)
    assert _exact_copies(data, tmp_path) == len(data.definitions.views)
    entities = entity_rows(3000, seed=11)
    settled = entities["event_timestamp"] < pd.Timestamp(until)
    assert settled.any()
    assert (~settled).any() == (until == MIDDLE)

    expected = _export(data, entities, None)
    with caplog.at_level(logging.DEBUG, logger="featurestore.offline.postgres"):
        merged = _export(data, entities, tmp_path)
    said = f"export of 3000 entity rows: {settled.sum()} merged from the column copies"
    assert said in caplog.text

    pd.testing.assert_frame_equal(merged, expected, check_exact=True)
    features = [c for c in expected.columns if c not in entities.columns]
    # The data has what the test is about: found rows, TTL misses and an unknown symbol.
    assert expected.loc[settled, features].isna().any().any()
    assert expected.loc[settled, features].notna().any().all()
    assert expected.loc[expected.symbol == "ZZZ", features].isna().all().all()


@pytest.fixture
def own_data(stack: Settings) -> Iterator[OfflineData]:
    """Tables of this test's own: it writes to them."""
    yield from _filled(stack, "test_column_copy", "c", 9, _upsert)


def _write_late(data: OfflineData, at: datetime, close: float) -> None:
    """A recomputed bar of AAA at ``at`` (newer created time: it wins the upsert)."""
    view = data.definitions.view("bars_1m")
    row = data.rows["bars_1m"].iloc[[0]].copy()
    row["symbol"] = "AAA"
    row["event_timestamp"] = pd.Timestamp(at)
    row["created_timestamp"] = pd.Timestamp(at) + pd.Timedelta(days=30)
    row["close"] = close
    with psycopg.connect(data.settings.postgres.dsn, autocommit=True) as conn:
        write_feature_rows(conn, data.definitions, view.name, row)


def _close_at(data: OfflineData, at: datetime, root: Path | None) -> float:
    entities = pd.DataFrame(
        {"symbol": ["AAA"], "event_timestamp": [pd.Timestamp(at) + pd.Timedelta(seconds=1)]}
    )
    frame = _export(data, entities, root)
    return float(frame["close"].iloc[0])


def test_a_write_before_until_retires_the_copy_until_it_is_rebuilt(
    own_data: OfflineData, tmp_path: Path
) -> None:
    _build(own_data, tmp_path, MIDDLE)
    views = len(own_data.definitions.views)
    at = MIDDLE - timedelta(minutes=30)

    _write_late(own_data, MIDDLE + timedelta(minutes=5), 1.0)  # after until: the copy holds
    assert _exact_copies(own_data, tmp_path) == views

    with (
        psycopg.connect(own_data.settings.postgres.dsn, autocommit=True) as conn,
        pytest.raises(RuntimeError),
        conn.transaction(),
    ):
        conn.execute(
            "INSERT INTO featurestore_offline_changes (table_name, first_ts, last_ts)"
            " VALUES (%s, %s, %s)",
            (own_data.definitions.view("bars_1m").source.table, at, at),
        )
        raise RuntimeError("rolled back")  # a write that never committed changes nothing
    assert _exact_copies(own_data, tmp_path) == views

    _write_late(own_data, at, 12345.5)
    assert _exact_copies(own_data, tmp_path) == views - 1  # bars_1m's copy only
    assert _close_at(own_data, at, tmp_path) == 12345.5  # joined in PostgreSQL meanwhile

    now = MIDDLE + timedelta(hours=1)  # settled until MIDDLE
    dsn, defs = own_data.settings.postgres.dsn, own_data.definitions
    assert refresh_copies(dsn, defs, tmp_path, now) == []  # written lately: it waits
    rebuilt = refresh_copies(dsn, defs, tmp_path, now, quiet=timedelta(0))
    assert [meta.view for meta in rebuilt] == ["bars_1m"]
    assert _exact_copies(own_data, tmp_path) == views
    assert _close_at(own_data, at, tmp_path) == 12345.5  # now from the rebuilt copy
    assert refresh_copies(dsn, defs, tmp_path, now, quiet=timedelta(0)) == []


def test_truncating_a_partition_retires_the_copy(own_data: OfflineData, tmp_path: Path) -> None:
    _build(own_data, tmp_path, AFTER)
    view = own_data.definitions.view("bars_1m")
    with psycopg.connect(own_data.settings.postgres.dsn, autocommit=True) as conn:
        partition = conn.execute(
            "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = %s::regclass"
            " ORDER BY 1 LIMIT 1",
            (view.source.table,),
        ).fetchone()
        assert partition is not None
        conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(str(partition[0]))))
        assert load_copy(conn, own_data.definitions, view, tmp_path) is None


def test_no_copy_built_means_postgres_joins_everything(
    pk_offline_data: OfflineData, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    entities = entity_rows(200, seed=3)
    expected = _export(pk_offline_data, entities, None)
    with caplog.at_level(logging.DEBUG, logger="featurestore.offline.postgres"):
        pd.testing.assert_frame_equal(_export(pk_offline_data, entities, tmp_path), expected)
    assert "export of 200 entity rows, all joined in PostgreSQL: no exact column copy of" in (
        caplog.text
    )


def test_the_cli_rebuilds_what_needs_it(
    own_data: OfflineData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEATURESTORE_DATA_DIR", str(tmp_path))
    project = own_data.definitions.project

    def run(*args: str) -> str:
        result = CliRunner().invoke(main, ["column-copies", "--project", project, *args])
        assert result.exit_code == 0, result.output
        return result.output

    views = len(own_data.definitions.views)
    first = run()
    assert f"{views} copies rebuilt under {tmp_path / 'offline-columns'}" in first
    rows = len(own_data.rows["bars_1m"].drop_duplicates(["symbol", "event_timestamp"]))
    assert f"bars_1m: {rows:,} rows before" in first
    assert run().startswith("0 copies rebuilt")  # all exact and current
    assert f"{views} copies rebuilt" in run("--rebuild")

    entities = entity_rows(500, seed=5)
    with PostgresOfflineStore.from_settings(load_settings(), own_data.definitions) as store:
        merged = store.to_pandas(entities, TrainingRequest(feature_service=ALL))
    pd.testing.assert_frame_equal(merged, _export(own_data, entities, None))


def test_writes_at_the_present_leave_no_change_row(own_data: OfflineData) -> None:
    table = own_data.definitions.view("bars_1m").source.table

    def recorded() -> int:
        with psycopg.connect(own_data.settings.postgres.dsn, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM featurestore_offline_changes WHERE table_name = %s",
                (table,),
            ).fetchone()
        return int(str(row[0])) if row else -1

    before = recorded()
    _write_late(own_data, datetime.now(UTC) - timedelta(minutes=5), 1.0)  # a stream's batch
    assert recorded() == before
    _write_late(own_data, datetime.now(UTC) - timedelta(hours=2), 1.0)  # a late write
    assert recorded() == before + 1

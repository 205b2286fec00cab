"""ExportTrainingDataset's hold on PostgreSQL: an abandoned export stops its queries, and a
server runs a bounded number of exports at once.

The export's join is held in PostgreSQL by a lock the test takes on the bars table, so the
queries of an export are waiting (``active``) for as long as the test wants, whatever the
machine's speed; what is checked is whether they are still there once the export is abandoned.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import grpc
import psycopg
import pytest
from psycopg import sql

from featurestore._proto.v1 import dataset_service_pb2_grpc
from featurestore.config import Settings
from featurestore.offline.tables import table_identifier
from featurestore.service.datasets import OfflineAccess
from featurestore.service.testing import ServerThread
from tests.integration.service.offline_data import Offline
from tests.integration.service.offline_data import every_second_export

pytestmark = pytest.mark.integration

WAIT_S = 15.0
"""How long an abandoned export's queries may take to go: far more than a cancel needs, far
less than the held lock lasts (the whole test)."""
EXPORT = every_second_export(20_000)
"""An export of two chunks of 10,000 entity rows, its joins waiting on the locked bars."""
MAX_EXPORTS = 3
"""service.max_concurrent_exports of the server under test (not the default, to see it read)."""


@pytest.fixture
def server(offline: Offline, start_server: Callable[..., ServerThread]) -> ServerThread:
    access = OfflineAccess(offline.settings, "unused", load=lambda _s, _p: offline.definitions)
    return start_server(offline=access, max_concurrent_exports=MAX_EXPORTS)


@pytest.fixture
def bars_locked(offline: Offline) -> Iterator[str]:
    """The bars table locked (exports joining it wait); yields the table's name."""
    table = offline.definitions.view("bars_1m").source.table
    with psycopg.connect(offline.settings.postgres.dsn) as conn:
        conn.execute(
            sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(table_identifier(table))
        )
        yield table
        conn.rollback()


@contextmanager
def _dataset_stub(server: ServerThread) -> Iterator[dataset_service_pb2_grpc.DatasetServiceStub]:
    with grpc.insecure_channel(server.target) as channel:
        yield dataset_service_pb2_grpc.DatasetServiceStub(channel)  # type: ignore[no-untyped-call]


def _joins_of(settings: Settings, table: str) -> list[str]:
    """The states of the queries reading ``table`` (an export's joins), other than ours."""
    with psycopg.connect(settings.postgres.dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT state FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
            " AND datname = current_database() AND query LIKE %s AND query LIKE %s",
            (f"%{table}%", "%_pit_entities%"),
        ).fetchall()
    return [str(row[0]) for row in rows]


def _wait_for(check: Callable[[], bool], timeout_s: float = WAIT_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def _running(settings: Settings, table: str, count: int = 1) -> bool:
    return _joins_of(settings, table).count("active") >= count


@contextmanager
def _one_export_joining(server: ServerThread, offline: Offline, table: str) -> Iterator[Any]:
    """An export's call, once its join waits on the locked ``table`` in PostgreSQL."""
    with _dataset_stub(server) as stub:
        call = stub.ExportTrainingDataset(EXPORT, timeout=120)
        assert _wait_for(lambda: _running(offline.settings, table))
        yield call


def _assert_no_query_left(offline: Offline, table: str) -> None:
    assert _wait_for(lambda: "active" not in _joins_of(offline.settings, table)), _joins_of(
        offline.settings, table
    )


def test_a_cancelled_export_stops_its_query(
    server: ServerThread, offline: Offline, bars_locked: str
) -> None:
    with _one_export_joining(server, offline, bars_locked) as call:
        call.cancel()
        _assert_no_query_left(offline, bars_locked)


def test_an_export_past_its_deadline_stops_its_query(
    server: ServerThread, offline: Offline, bars_locked: str
) -> None:
    with _dataset_stub(server) as stub, pytest.raises(grpc.RpcError) as info:
        list(stub.ExportTrainingDataset(EXPORT, timeout=3))
    assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    _assert_no_query_left(offline, bars_locked)


def test_a_stopping_server_leaves_no_query(
    server: ServerThread, offline: Offline, bars_locked: str
) -> None:
    with _one_export_joining(server, offline, bars_locked) as call:
        server.stop(grace_s=1)
        with pytest.raises(grpc.RpcError):
            list(call)
    _assert_no_query_left(offline, bars_locked)


def test_exports_beyond_the_limit_are_refused_at_once_and_the_slots_come_back(
    server: ServerThread, offline: Offline, bars_locked: str
) -> None:
    with _dataset_stub(server) as stub:
        calls = [stub.ExportTrainingDataset(EXPORT, timeout=120) for _ in range(MAX_EXPORTS)]
        assert _wait_for(lambda: _running(offline.settings, bars_locked, MAX_EXPORTS))
        with pytest.raises(grpc.RpcError) as info:
            list(stub.ExportTrainingDataset(EXPORT, timeout=20))
        assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert info.value.details() == (
            f"the server is running {MAX_EXPORTS} exports, the most it runs at once; retry later"
        )
        # Each export joins on at most the store's two connections at once.
        assert len(_joins_of(offline.settings, bars_locked)) <= 2 * MAX_EXPORTS
        for call in calls:
            call.cancel()
        _assert_no_query_left(offline, bars_locked)
    # The slots are free again once the cancelled exports are gone.
    with _one_export_joining(server, offline, bars_locked) as call:
        call.cancel()

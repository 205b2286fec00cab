"""What an export leaves in PostgreSQL once it ended: its connections, kept idle for the next
export, hold no chunk of entity rows in their temporary tables."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import psycopg
import pytest

from featurestore._proto.v1 import dataset_service_pb2_grpc
from featurestore.config import Settings
from featurestore.service.datasets import OfflineAccess
from featurestore.service.testing import ServerThread
from tests.integration.service.offline_data import Offline
from tests.integration.service.offline_data import every_second_export

pytestmark = pytest.mark.integration

ENTITY_TABLE = "_pit_entities"
"""The temporary table of a chunk's entity rows, one in each session of the offline store."""


def _entity_tables(settings: Settings) -> dict[int, int]:
    """Every session's temporary entity table: its oid and the bytes of its rows."""
    with psycopg.connect(settings.postgres.dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT c.oid::bigint, pg_relation_size(c.oid) FROM pg_class c"
            " WHERE c.relname = %s AND c.relpersistence = 't' AND c.relkind = 'r'",
            (ENTITY_TABLE,),
        ).fetchall()
    return {int(oid): int(size) for oid, size in rows}


def test_an_export_leaves_its_connections_temporary_tables_empty(
    offline: Offline, start_server: Callable[..., ServerThread]
) -> None:
    before = _entity_tables(offline.settings)
    access = OfflineAccess(offline.settings, "unused", load=lambda _s, _p: offline.definitions)
    server = start_server(offline=access)
    with grpc.insecure_channel(server.target) as channel:
        stub = dataset_service_pb2_grpc.DatasetServiceStub(channel)  # type: ignore[no-untyped-call]
        rows = sum(
            r.row_count
            for r in stub.ExportTrainingDataset(every_second_export(20_000), timeout=120)
        )
    assert rows == 20_000  # two chunks of 10,000 entity rows
    # The export's connections (new ones: the store is new) are still open, idle.
    ours = {
        oid: size for oid, size in _entity_tables(offline.settings).items() if oid not in before
    }
    assert ours, "the export's connections hold no entity table (did it run in PostgreSQL?)"
    assert all(size == 0 for size in ours.values()), ours

"""The Spark export gives the PostgreSQL export's rows: same values, nulls, order and columns.

One test (a local Spark session and its first job cost 1-2 min on this loaded machine): the
tables with ties on ``event_timestamp`` (broken by ``created_timestamp``), TTL boundaries,
unknown symbols. The store's own layout (no ties) was checked the same way when this was
written; the Spark join does not depend on it.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurestore.offline import PostgresOfflineStore
from featurestore.offline import TrainingRequest
from processors.spark.export import export_parquet_spark
from tests.integration.offline.pit_data import OfflineData
from tests.integration.offline.pit_data import entity_rows

pytestmark = pytest.mark.integration


@pytest.mark.timeout(600)  # a Spark session's start and its first job's JIT: 1-3 min at load 10
def test_spark_export_equals_postgres_export(offline_data: OfflineData, tmp_path: Path) -> None:
    request = TrainingRequest(feature_service="market_features_v1")
    entities = tmp_path / "entities.parquet"
    frame = entity_rows(2000, seed=5)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, entities, coerce_timestamps="us")
    with PostgresOfflineStore(
        offline_data.settings.postgres.dsn, offline_data.definitions
    ) as store:
        expected = store.to_arrow(entities, request)
    out = tmp_path / "spark"
    stats = export_parquet_spark(
        offline_data.settings,
        offline_data.definitions,
        entities,
        request,
        out,
        master="local[2]",
        read_partitions=3,
    )
    got = pq.read_table(out)
    assert stats.rows == got.num_rows == expected.num_rows == len(frame)
    assert got.column_names == expected.column_names
    for column in expected.column_names:
        assert (
            got.column(column).combine_chunks().equals(expected.column(column).combine_chunks())
        ), f"column {column} differs"
    # The data has what the test is about: hits and misses (TTL, unknown symbol).
    close = expected.column("close")
    assert 0 < close.null_count < len(frame)

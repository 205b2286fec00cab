"""The Spark export's pieces that need no Spark: JDBC slices, connection properties, refusals."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

import pytest

from featurestore.config import load_settings
from featurestore.definitions import market_definitions
from featurestore.errors import ValidationError
from featurestore.offline import LabelSpec
from featurestore.offline import TrainingRequest
from processors.spark.export import _predicates
from processors.spark.export import _slices
from processors.spark.export import export_parquet_spark
from processors.spark.export import jdbc_url

LO = datetime(2024, 1, 1, tzinfo=UTC)
HI = LO + timedelta(hours=3)


def test_slices_cover_the_range_once() -> None:
    slices = _slices(LO, HI, 3)
    assert slices == [
        (LO, LO + timedelta(hours=1)),
        (LO + timedelta(hours=1), LO + timedelta(hours=2)),
        (LO + timedelta(hours=2), HI),
    ]
    predicates = _predicates("event_timestamp", LO, HI, 3)
    assert predicates[0].startswith('"event_timestamp" >= ')  # the first includes lo
    assert all(p.startswith('"event_timestamp" > ') for p in predicates[1:])  # the rest exclude
    assert all("<= " in p for p in predicates)


def test_without_ttl_one_slice_reads_everything_before_the_last_time() -> None:
    assert _slices(None, HI, 4) == [(None, HI)]
    assert _predicates("ts", None, HI, 4) == [f"\"ts\" <= '{HI.isoformat()}'::timestamptz"]


def test_jdbc_url_from_the_settings() -> None:
    settings = load_settings({})
    url, props = jdbc_url(settings)
    pg = settings.postgres
    assert url == f"jdbc:postgresql://{pg.host}:{pg.port}/{pg.database}"
    assert props["user"] == pg.user and props["driver"] == "org.postgresql.Driver"
    assert props["sslmode"] == pg.sslmode
    assert props["options"] == "-c jit=off"  # as psycopg's connections (PostgresSettings)


@pytest.mark.parametrize(
    ("request_", "read_partitions", "field"),
    [
        (
            TrainingRequest(features=["bars_1m:close"], labels=LabelSpec(timedelta(minutes=5))),
            8,
            "labels",
        ),
        (TrainingRequest(features=["bars_1m:close"]), 0, "read_partitions"),
    ],
)
def test_refused_before_spark_starts(
    request_: TrainingRequest, read_partitions: int, field: str, tmp_path: Path
) -> None:
    with pytest.raises(ValidationError) as caught:
        export_parquet_spark(
            load_settings({}),
            market_definitions(),
            tmp_path / "entities.parquet",
            request_,
            tmp_path / "out",
            read_partitions=read_partitions,
        )
    assert caught.value.field == field

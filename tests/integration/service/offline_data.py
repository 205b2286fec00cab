"""Offline tables of a Feast project of the test's own: an hour of bars and rolling rows; and an
export of them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pandas as pd
import psycopg
from google.protobuf import duration_pb2
from google.protobuf import timestamp_pb2
from psycopg import sql

from featurestore._proto.v1 import dataset_service_pb2
from featurestore._proto.v1 import types_pb2
from featurestore.apply import apply_definitions
from featurestore.config import Settings
from featurestore.definitions import Definitions
from featurestore.definitions import market_definitions
from featurestore.offline import write_feature_rows
from featurestore.offline.tables import table_identifier

T0 = pd.Timestamp("2024-04-02 14:00", tz="UTC")
MINUTES = 60


@dataclass
class Offline:
    settings: Settings
    definitions: Definitions
    bars: pd.DataFrame


def _rows(defs: Definitions, view: str, base: dict[str, float]) -> pd.DataFrame:
    frames = []
    for symbol, offset in base.items():
        ts = T0 + pd.to_timedelta(np.arange(MINUTES), unit="min")
        frame = pd.DataFrame({"symbol": symbol, "event_timestamp": ts})
        frame["created_timestamp"] = frame["event_timestamp"] + pd.Timedelta(seconds=1)
        for feature in defs.view(view).features:
            if feature.value_type.name == "INT64":
                frame[feature.name] = np.arange(MINUTES)
            else:
                frame[feature.name] = offset + np.arange(MINUTES, dtype=float)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


@contextmanager
def offline_tables(settings: Settings) -> Iterator[Offline]:
    """Bars of AAA and BBB and rolling rows of AAA, T0 to T0 + 59 min; dropped on exit."""
    run = uuid.uuid4().hex[:8]
    defs = market_definitions(f"fs_export_{run}", table_prefix=f"x{run}_", partition_interval="day")
    apply_definitions(settings, defs)
    bars = _rows(defs, "bars_1m", {"AAA": 100.0, "BBB": 200.0})
    with psycopg.connect(settings.postgres.dsn, autocommit=True) as conn:
        write_feature_rows(conn, defs, "bars_1m", bars)
        write_feature_rows(conn, defs, "rolling_1m", _rows(defs, "rolling_1m", {"AAA": 1.0}))
    try:
        yield Offline(settings, defs, bars)
    finally:
        with psycopg.connect(settings.postgres.dsn, autocommit=True) as conn:
            for view in defs.views:
                conn.execute(
                    sql.SQL("DROP TABLE IF EXISTS {}").format(table_identifier(view.source.table))
                )


def every_second_export(rows: int) -> dataset_service_pb2.ExportTrainingDatasetRequest:
    """An export of ``bars_1m:close`` for AAA and BBB every second from T0: ``rows`` rows in all
    (past the tables' hour, the rows hold the last bar)."""
    start, end, step = timestamp_pb2.Timestamp(), timestamp_pb2.Timestamp(), duration_pb2.Duration()
    start.FromDatetime(T0.to_pydatetime())
    end.FromDatetime((T0 + pd.Timedelta(seconds=rows // 2)).to_pydatetime())
    step.FromTimedelta(timedelta(seconds=1))
    return dataset_service_pb2.ExportTrainingDatasetRequest(
        features=types_pb2.FeatureList(features=["bars_1m:close"]),
        time_grid=dataset_service_pb2.EntityTimeGrid(
            symbols=["AAA", "BBB"], start_time=start, end_time=end, step=step
        ),
    )

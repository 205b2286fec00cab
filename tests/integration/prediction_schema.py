"""A predictions table of a test's own: in a schema made for it, dropped after."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
from datetime import timedelta

import psycopg
from psycopg import sql

from featurestore.config import Settings
from featurestore.offline.predictions import BarsTable
from featurestore.offline.predictions import PredictionTable

__all__ = ["prediction_schema"]


@contextmanager
def prediction_schema(
    settings: Settings, prefix: str, horizons: Mapping[str, timedelta]
) -> Iterator[PredictionTable]:
    """A :class:`PredictionTable` in a new schema ``<prefix>_<random>`` (dropped at the end),
    beside the bars table its outcomes read (empty), for models predicting ``horizons`` ahead.
    The predictions table and its view are the test's to create (``create``)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(settings.postgres.dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        conn.execute(
            sql.SQL(
                "CREATE TABLE {}.bars (symbol text, event_timestamp timestamptz,"
                " created_timestamp timestamptz, close double precision)"
            ).format(sql.Identifier(name))
        )
    try:
        yield PredictionTable(
            table=f"{name}.predictions",
            view=f"{name}.predictions_with_outcomes",
            bars=BarsTable(f"{name}.bars"),
            horizons=dict(horizons),
        )
    finally:
        with psycopg.connect(settings.postgres.dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))

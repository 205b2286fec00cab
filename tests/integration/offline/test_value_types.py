"""Views with text and boolean features: the join's CSV path, against a pandas reference."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import numpy as np
import pandas as pd
import psycopg
import pytest
from psycopg import sql

from featurestore.config import Settings
from featurestore.definitions.model import Definitions
from featurestore.definitions.model import Entity
from featurestore.definitions.model import Feature
from featurestore.definitions.model import FeatureView
from featurestore.definitions.model import SourceTable
from featurestore.definitions.model import ValueType
from featurestore.offline import PostgresOfflineStore
from featurestore.offline import TrainingRequest
from featurestore.offline import create_offline_tables
from featurestore.offline import write_feature_rows
from featurestore.offline.tables import table_identifier

pytestmark = pytest.mark.integration

T0 = pd.Timestamp("2024-06-03 09:30", tz="UTC")
FEATURES = (
    Feature("venue", ValueType.STRING),
    Feature("halted", ValueType.BOOL),
    Feature("bid", ValueType.FLOAT64),
    Feature("level", ValueType.INT64),
)


@pytest.fixture
def quotes(stack: Settings) -> Iterator[tuple[Definitions, pd.DataFrame]]:
    run = uuid.uuid4().hex[:8]
    view = FeatureView(
        "quotes",
        ("symbol",),
        FEATURES,
        timedelta(minutes=10),
        SourceTable(f"q{run}_quotes", partition_interval="day"),
    )
    defs = Definitions(f"quotes_{run}", (Entity("symbol", "symbol"),), (view,), ())
    rng = np.random.default_rng(4)
    n = 600
    rows = pd.DataFrame(
        {
            "symbol": rng.choice(["AAA", "BBB"], n),
            "event_timestamp": T0 + pd.to_timedelta(rng.integers(0, 3 * 3600, n), unit="s"),
        }
    ).drop_duplicates(["symbol", "event_timestamp"])
    rows["created_timestamp"] = rows["event_timestamp"] + pd.Timedelta(seconds=1)
    # Spellings CSV readers take for null by default: text here, never a null.
    null_like = ["NA", "null", "NULL", "NaN", "nan", "N/A", "#N/A", "-nan"]
    venue = rng.choice(
        ["XNAS", 'say "hi", \\ then\nnewline', "", "é", *null_like], len(rows)
    ).astype(object)
    venue[rng.random(len(rows)) < 0.1] = None
    rows["venue"] = venue
    rows["halted"] = pd.array(rng.random(len(rows)) < 0.3, dtype="boolean")
    rows.loc[rng.random(len(rows)) < 0.1, "halted"] = pd.NA
    rows["bid"] = rng.normal(10, 1, len(rows))
    rows["level"] = rng.integers(-(2**62), 2**62, len(rows))
    with psycopg.connect(stack.postgres.dsn, autocommit=True) as conn:
        create_offline_tables(conn, defs)
        write_feature_rows(conn, defs, "quotes", rows)
    yield defs, rows
    with psycopg.connect(stack.postgres.dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE {}").format(table_identifier(view.source.table)))


@pytest.mark.parametrize(
    "features",
    [FEATURES, FEATURES[1:]],
    ids=["with text (CSV path)", "fixed-width only (binary path)"],
)
def test_text_and_boolean_features_equal_merge_asof(
    stack: Settings, quotes: tuple[Definitions, pd.DataFrame], features: tuple[Feature, ...]
) -> None:
    defs, rows = quotes
    rng = np.random.default_rng(5)
    entities = pd.DataFrame(
        {
            "symbol": rng.choice(["AAA", "BBB", "ZZZ"], 1_000),
            "event_timestamp": T0 + pd.to_timedelta(rng.integers(-600, 4 * 3600, 1_000), unit="s"),
        }
    )
    refs = [f"quotes:{f.name}" for f in features]
    with PostgresOfflineStore(stack.postgres.dsn, defs) as store:
        table = store.to_arrow(entities, TrainingRequest(features=refs))
    types = {"venue": "string", "halted": "bool", "bid": "double", "level": "int64"}
    assert [str(table.schema.field(f.name).type) for f in features] == [
        types[f.name] for f in features
    ]
    ours = table.to_pandas()

    expected = (
        pd.merge_asof(
            entities.reset_index().sort_values("event_timestamp"),
            rows.assign(fts=rows["event_timestamp"]).sort_values("event_timestamp"),
            on="event_timestamp",
            by="symbol",
            direction="backward",
        )
        .set_index("index")
        .sort_index()
    )
    expired = expected["fts"].isna() | (
        expected["fts"] < expected["event_timestamp"] - pd.Timedelta(minutes=10)
    )
    for feature in features:
        want = expected[feature.name].astype(object).where(~expired, None)
        got = ours[feature.name].astype(object)
        for a, b in zip(got, want, strict=True):
            assert (pd.isna(a) and pd.isna(b)) or a == b, (a, b)
    assert ours["halted"].isna().any() and ours["halted"].notna().any()
    if "venue" in ours:
        assert ours["venue"].isin(['say "hi", \\ then\nnewline']).any()  # quoting survived
        assert set(ours["venue"].dropna()) >= {"NA", "null", "NULL", "NaN", "N/A", ""}
        assert ours["venue"].isna().any()

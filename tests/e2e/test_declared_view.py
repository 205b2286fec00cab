"""A user adds a feature view to the Feast repo, applies it, and gets it computed and served.

No code changes: a copy of ``registry/`` gets one more file (``trade_count_15m``), ``featurestore
registry apply`` registers it, the processor (started again, as ``registry apply`` restarts the
stack's processors) backfills it from the log while the views it already computed go on, and
the feature is then served by the ``featurestore serve`` started before the change, which
follows the registry (GetOnlineFeatures through the Python SDK, and ExportTrainingDataset), and
exported point in time by ``featurestore export``.

Everything lives apart from the stack's own data: its own PostgreSQL database (Feast registry,
offline tables, processor state), Feast project (Redis keys) and topic.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import replace
from datetime import UTC
from datetime import datetime
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from click.testing import CliRunner
from confluent_kafka.admin import AdminClient
from psycopg import sql

from featurestore.cli import main
from featurestore.config import Settings
from featurestore.config import load_settings
from featurestore.definitions import REPO_PATH
from featurestore.definitions import load_definitions
from featurestore.online.testing import delete_project_keys
from processors.options import ProcessorOptions
from processors.progress import view_progress
from processors.wiring import ProcessorWiring
from tests.e2e.processors_support import MARKET
from tests.e2e.processors_support import ingest_files
from tests.e2e.processors_support import logged_trades
from tests.e2e.processors_support import oracle_rows
from tests.e2e.processors_support import read_table
from tests.e2e.processors_support import source_events
from tests.e2e.processors_support import wait_for
from tests.ports import free_port
from tests.unit.processors.oracle import compute_features

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]

NEW_VIEW = '''
"""Views a user adds: trades per symbol in the 15 minutes ending at each minute, 5-minute
bars of the 1-minute rows of rolling_1m (a chained view), and the share of the volume traded
off-exchange (reported to a FINRA trade reporting facility, exchange code D) in 15 minutes."""

from datetime import timedelta

from feast import Aggregation, Field, StreamFeatureView
from feast.types import Float64, Int64, String

from entities import symbol
from streams import minute_view, per_minute
from trades import trades_source

trade_count_15m = StreamFeatureView(
    name="trade_count_15m",
    source=trades_source("trade_count_15m"),
    entities=[symbol],
    ttl=timedelta(0),
    schema=[
        Field(name="symbol", dtype=String),
        Field(name="trade_count_15m", dtype=Int64, description="trades in the last 15 minutes"),
    ],
    aggregations=[
        Aggregation(
            column="price", function="count", time_window=timedelta(minutes=15),
            slide_interval=timedelta(minutes=1), name="trade_count_15m",
        ),
    ],
    timestamp_field="event_time",
    tiling_hop_size=timedelta(minutes=1),
    tags={"featurestore.rows": "window_end"},
)

bars_5m_of_1m = StreamFeatureView(
    name="bars_5m_of_1m",
    source=trades_source("bars_5m_of_1m"),
    entities=[symbol],
    ttl=timedelta(0),
    schema=[
        Field(name="symbol", dtype=String),
        Field(name="volume_5m", dtype=Float64, description="shares traded in 5-minute bars"),
        Field(name="close_5m", dtype=Float64, description="the bar's last price"),
    ],
    aggregations=[
        Aggregation(
            column="volume_1m", function="sum", time_window=timedelta(minutes=5),
            slide_interval=timedelta(minutes=5), name="volume_5m",
        ),
        Aggregation(
            column="close_1m", function="last", time_window=timedelta(minutes=5),
            slide_interval=timedelta(minutes=5), name="close_5m",
        ),
    ],
    timestamp_field="event_time",
    tiling_hop_size=timedelta(minutes=1),
    tags={"featurestore.rows": "window_end", "featurestore.source_view": "rolling_1m"},
)

off_exchange_15m = minute_view(
    "off_exchange_15m",
    source=trades_source("off_exchange_15m"),
    entity=symbol,
    schema=[
        Field(name="symbol", dtype=String),
        Field(name="trf_volume_15m", dtype=Float64, description="shares traded off-exchange"),
        Field(name="volume_15m", dtype=Float64, description="shares traded"),
        Field(name="trf_share_15m", dtype=Float64, description="off-exchange share of volume"),
        Field(
            name="trf_rise_max_15m",
            dtype=Float64,
            description="largest rise from one off-exchange price to the next",
        ),
        Field(name="trf_size_p90_15m", dtype=Float64, description="90th percentile of TRF sizes"),
    ],
    aggregations=[
        per_minute("trf_volume_15m", "sum", "trf_size", 15),
        per_minute("volume_15m", "sum", "size", 15),
        per_minute("trf_rise_max_15m", "max", "trf_move", 15),
        per_minute("trf_size_p90_15m", "p90", "trf_size", 15),
    ],
    rows="window_end",
    derived={"trf_share_15m": "trf_volume_15m / volume_15m"},
    description="the share of the volume reported to a FINRA facility (exchange D)",
)
'''

SOURCE_EDITS = {
    # The trades source reads the exchange and keeps the off-exchange sizes in a column, and the
    # move from one off-exchange price to the next (whatever trades came between): columns of
    # the source every trades view shares, which the views applied before do not read.
    '{"name": "trade_id", "type": "string"},': (
        '{"name": "trade_id", "type": "string"}, {"name": "exchange", "type": "string"},'
    ),
    '"notional": "price * size",': (
        '"notional": "price * size", "trf_size": \'when(exchange == "D", size)\','
        ' "trf_price": \'when(exchange == "D", price)\','
        ' "trf_move": "trf_price - prev_nonnull(trf_price)",'
    ),
}


@dataclass
class Place:
    settings: Settings
    project: str
    topic: str
    repo: Path
    run: str


@pytest.fixture
def place(stack: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Place]:
    run = uuid.uuid4().hex[:8]
    database, topic, project = f"e2e_view_{run}", f"e2e-view-trades-{run}", f"e2e_view_{run}"
    with psycopg.connect(stack.postgres.dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    monkeypatch.setenv("FEATURESTORE_POSTGRES__DATABASE", database)
    monkeypatch.setenv("FEATURESTORE_TOPICS__TRADES", topic)
    monkeypatch.setenv("FEATURESTORE_GRPC__PORT", str(free_port()))
    settings = load_settings()
    repo = tmp_path / "registry"
    shutil.copytree(REPO_PATH, repo, ignore=shutil.ignore_patterns("__pycache__"))
    try:
        yield Place(settings, project, topic, repo, run)
    finally:
        with psycopg.connect(stack.postgres.dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )
        delete_project_keys(stack.redis, project)
        admin = AdminClient(stack.kafka.connection.admin())
        for future in admin.delete_topics([topic]).values():
            future.result()
        for path in (stack.data_dir / "processors").glob(f"e2e-view-{run}*"):
            shutil.rmtree(path, ignore_errors=True)


def _apply(place: Place) -> str:
    result = CliRunner().invoke(
        main, ["registry", "apply", "--repo", str(place.repo), "--project", place.project]
    )
    assert result.exit_code == 0, result.output
    return result.output


def _stream_until_live(place: Place) -> None:
    """Run the processor until every view of the project has caught up with the log."""
    from processors.spark import start_stream

    definitions = load_definitions(place.settings, place.project)
    options = ProcessorOptions(name=f"e2e-view-{place.run}", project=place.project)
    handle = start_stream(place.settings, options, ProcessorWiring(definitions))
    ours = replace(
        definitions,
        views=tuple(
            v for v in definitions.views if v.stream and v.stream.source.topic == place.topic
        ),
    )  # the repo's quote and metric views read other topics, computed by other processors
    try:

        def live() -> bool:
            found = view_progress(place.settings, ours, options.name)
            return all(p.end and p.applied == p.end for p in found)

        wait_for(live, 400, "every view to catch up")
    finally:
        handle.stop()


def _oracle(place: Place, trades: pd.DataFrame) -> pd.DataFrame:
    view = load_definitions(place.settings, place.project).view("trade_count_15m")
    return oracle_rows(trades, [view])[view.name][["symbol", "event_us", "trade_count_15m"]]


def _check_chained_view(place: Place, trades: pd.DataFrame) -> None:
    """The chained view: the oracle's (from its own rolling_1m rows), and each bar straight from
    the trades: the volume of [B - 5 min, B) and its last price."""
    definitions = load_definitions(place.settings, place.project)
    views = [definitions.view("rolling_1m"), definitions.view("bars_5m_of_1m")]
    events = source_events(trades.sort_values(["partition", "offset"]))
    oracle = compute_features(views, events).rows["bars_5m_of_1m"]
    got = read_table(place.settings, "bars_5m_of_1m")
    assert len(got) == len(oracle) > 50
    for row in got.itertuples():
        want = oracle[(row.symbol, row.event_us)]
        close = None if pd.isna(row.close_5m) else row.close_5m  # null: a bar without trades
        assert (row.volume_5m, close) == (want.values["volume_5m"], want.values["close_5m"]), row
        assert (row.source_offset_start, row.source_offset_end) == (
            want.first_offset,
            want.last_offset,
        )
        bar = trades[
            (trades.symbol == row.symbol)
            & (trades.event_us >= row.event_us - 300_000_000)
            & (trades.event_us < row.event_us)
        ].sort_values(["event_us", "offset"])
        if len(bar):
            assert row.volume_5m == bar["size"].sum() and close == bar["price"].iloc[-1], row
        else:
            assert row.volume_5m == 0 and close is None, row


def _check_off_exchange_view(place: Place, trades: pd.DataFrame) -> None:
    """The view of filtered columns: the oracle's rows, and each straight from the trades (the
    volume of exchange D and the total in [B - 15 min, B), the largest move there from one
    exchange D price to the symbol's one before it in the log, and the 90th percentile of the
    exchange D sizes)."""
    view = load_definitions(place.settings, place.project).view("off_exchange_15m")
    want = oracle_rows(trades, [view])[view.name]
    got = read_table(place.settings, view.name)
    assert len(got) == len(want) > 300
    columns = [
        "symbol", "event_us", "trf_volume_15m", "volume_15m", "trf_share_15m", "trf_rise_max_15m",
        "trf_size_p90_15m",
    ]  # fmt: skip
    pd.testing.assert_frame_equal(
        got[columns].reset_index(drop=True), want[columns], check_dtype=False
    )
    off = trades["exchange"] == "D"
    assert 0 < off.sum() < len(trades)  # the day has trades on and off exchanges
    in_log_order = trades[off].sort_values(["partition", "offset"])
    move = in_log_order.groupby("symbol")["price"].diff()
    for row in got.sample(40, random_state=1).itertuples():
        window = (
            (trades.symbol == row.symbol)
            & (trades.event_us >= row.event_us - 900_000_000)
            & (trades.event_us < row.event_us)
        )
        assert row.trf_volume_15m == trades[window & off]["size"].sum(), row
        assert row.volume_15m == trades[window]["size"].sum(), row
        moves = move[window[move.index]].dropna()
        sizes = trades[window & off]["size"]
        if len(moves):
            assert row.trf_rise_max_15m == moves.max(), row
        else:
            assert pd.isna(row.trf_rise_max_15m), row
        if len(sizes):
            assert row.trf_size_p90_15m == pytest.approx(sizes.quantile(0.9), rel=1e-12), row
        else:
            assert pd.isna(row.trf_size_p90_15m), row


def _start_server(place: Place) -> subprocess.Popen[bytes]:
    """`featurestore serve` for the project, before the user's change: it follows the registry."""
    # Its output goes to a file, not a pipe nobody reads: a full pipe would stall the server.
    with (place.repo.parent / "serve.log").open("wb") as serve_output:
        return subprocess.Popen(
            [sys.executable, "-m", "featurestore.cli", "serve", "--project", place.project],
            env={**os.environ, "FEATURESTORE_SERVICE__DEFINITIONS_REFRESH_S": "1"},
            stdout=serve_output, stderr=subprocess.STDOUT,
        )  # fmt: skip


def test_a_view_added_to_the_repo_is_backfilled_served_and_exported(place: Place) -> None:
    from featurestore_client import FeatureStoreClient
    from featurestore_client import NotFoundError

    settings = place.settings
    ingest_files(settings, place.topic, [MARKET / "20131007_ibm_Trade_Tick.csv.gz"])
    _apply(place)
    _stream_until_live(place)
    bars_before = read_table(settings, "bars_1m")
    assert len(bars_before) > 10_000
    server = _start_server(place)
    serve_log = place.repo.parent / "serve.log"
    target = f"{settings.grpc.host}:{settings.grpc.port}"
    try:
        with FeatureStoreClient(target, timeout_s=30.0) as client:

            def serves(feature: str) -> bool:
                try:
                    client.get_online_features([feature], entities={"symbol": ["IBM"]})
                except Exception:
                    return False
                return True

            wait_for(lambda: serves("rolling_1m:volume_5m"), 120, "the gRPC server", serve_log)
            with pytest.raises(NotFoundError, match="trade_count_15m"):
                client.get_online_features(
                    ["trade_count_15m:trade_count_15m"], entities={"symbol": ["IBM"]}
                )
            times = [datetime(2013, 10, 7, 15, m, 30, tzinfo=UTC) for m in (0, 20, 45)]
            entities = pd.DataFrame({"symbol": "IBM", "event_timestamp": times})
            before = client.export_training_dataset(
                features=["rolling_1m:volume_5m"], entity_rows=entities
            )  # the server's offline store now holds the definitions of before the change
            assert before.num_rows == 3

            # The user's change: one more file in the repo and a column of the trades source,
            # then `featurestore registry apply`.
            (place.repo / "trade_count.py").write_text(NEW_VIEW)
            trades_py = place.repo / "trades.py"
            text = trades_py.read_text()
            for old, new in SOURCE_EDITS.items():
                assert text.count(old) == 1, old
                text = text.replace(old, new)
            trades_py.write_text(text)
            output = _apply(place)
            assert "trade_count_15m" in output
            listed = CliRunner().invoke(main, ["registry", "list", "--project", place.project])
            assert "trade_count_15m = count(price) window 0:15:00" in listed.output, listed.output
            assert "events: the window-end rows of rolling_1m (chained)" in listed.output
            _stream_until_live(place)

            # Backfilled from the log: equal to the oracle; the other views were not rewritten.
            trades = logged_trades(settings, place.topic)
            want = _oracle(place, trades)
            got = read_table(settings, "trade_count_15m")
            assert len(got) == len(want) > 300
            pd.testing.assert_frame_equal(
                got[["symbol", "event_us", "trade_count_15m"]].reset_index(drop=True), want,
                check_dtype=False,
            )  # fmt: skip
            bars_after = read_table(settings, "bars_1m")
            pd.testing.assert_frame_equal(bars_after, bars_before)
            _check_chained_view(place, trades)
            _check_off_exchange_view(place, trades)

            # Served by the server started before the apply, without a restart: online, read
            # with the Python SDK, and exported point in time over gRPC.
            wait_for(
                lambda: serves("trade_count_15m:trade_count_15m"), 60, "the new view", serve_log
            )
            online = client.get_online_features(
                ["trade_count_15m:trade_count_15m"], entities={"symbol": ["IBM"]}
            ).to_dicts()
            assert online[0]["trade_count_15m:trade_count_15m"] == want["trade_count_15m"].iloc[-1]
            served = client.export_training_dataset(
                features=["trade_count_15m:trade_count_15m"], entity_rows=entities
            ).to_pandas()
        assert "serving the definitions applied to project" in serve_log.read_text()
    finally:
        server.terminate()
        server.wait(30)

    # Exported point in time by the CLI too: the latest row at or before each time.
    path = place.repo.parent / "rows.parquet"
    entities.to_parquet(path)
    out = place.repo.parent / "out.parquet"
    result = CliRunner().invoke(
        main,
        ["export", "--entities", str(path), "--features", "trade_count_15m:trade_count_15m",
         "--project", place.project, "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    exported = pd.read_parquet(out)
    for t, value, over_grpc in zip(
        times, exported["trade_count_15m"], served["trade_count_15m"], strict=True
    ):
        t_us = int(t.timestamp() * 1_000_000)
        expected = want[want["event_us"] <= t_us]["trade_count_15m"].iloc[-1]
        assert value == over_grpc == expected, t

"""The vendor adapter into the real event log: live through breaks, backfill overlap, gap heal.

Only the vendor is simulated (tests/vendor_sim.py, loopback); Kafka, the schema registry and
PostgreSQL are the stack's. Each test writes to topics (and a table) of its own, and counts the
vendor's ids in what Kafka holds.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from collections.abc import Iterator
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time as clock
from datetime import timedelta

import psycopg
import pytest
from click.testing import CliRunner
from psycopg import sql
from pydantic import SecretStr

from featurestore.cli import main
from featurestore.config import Settings
from featurestore.events import AvroDeserializer
from featurestore.events import ConfluentSchemaStore
from featurestore.ingest import IngestOptions
from featurestore.ingest import Ingestor
from featurestore.ingest.vendor import LiveFeed
from featurestore.ingest.vendor import RestClient
from featurestore.ingest.vendor import VendorStream
from featurestore.ingest.vendor import ws_record
from featurestore.ingest.vendor.dedupe import event_id
from featurestore.resilience import Backoff
from tests.integration.ingest.support import read_raw
from tests.vendor_sim import TapeEvent
from tests.vendor_sim import VendorSimulator
from tests.vendor_sim import load_tape

pytestmark = [pytest.mark.integration, pytest.mark.mostly_waits]

DAY = date(2013, 10, 7)
KEY = "sim-key"


def _ids(events: list[TapeEvent]) -> Counter[str]:
    out: Counter[str] = Counter()
    for event in events:
        record = ws_record(event.ws, 0)
        assert record is not None
        out[str(record.fields.get("trade_id") or record.fields.get("quote_id"))] += 1
    return out


def _logged(settings: Settings, topic: str) -> Counter[str]:
    """The event id of every record of ``topic`` (a copy counts twice)."""
    out: Counter[str] = Counter()
    with ConfluentSchemaStore.from_settings(settings.schema_registry) as store:
        decoder = AvroDeserializer(store)
        for _, _, value, _ in read_raw(settings, topic):
            found = event_id(decoder.decode(value))
            assert found is not None
            out[found] += 1
    return out


@pytest.fixture
def topics(unique_name: Callable[[str], str]) -> dict[str, str]:
    return {
        "trade": unique_name("vendor-trades"),
        "quote": unique_name("vendor-quotes"),
        "dead": unique_name("vendor-dead"),
    }


def _env(settings: Settings, sim: VendorSimulator, topics: dict[str, str]) -> dict[str, str]:
    return {
        "FEATURESTORE_VENDOR__API_KEY": KEY,
        "FEATURESTORE_VENDOR__REST_URL": sim.rest_url,
        "FEATURESTORE_VENDOR__WS_URL": sim.ws_url,
        "FEATURESTORE_TOPICS__TRADES": topics["trade"],
        "FEATURESTORE_TOPICS__QUOTES": topics["quote"],
        "FEATURESTORE_TOPICS__DEAD_LETTER": topics["dead"],
        "FEATURESTORE_METRICS__ENABLED": "false",
    }


def test_live_through_breaks_and_an_overlapping_backfill_logs_each_vendor_record_once(
    stack: Settings, topics: dict[str, str]
) -> None:
    tape = load_tape(DAY, ["IBM", "AIG"], clock(9, 30), clock(9, 32), quotes=True)
    expected = _ids(tape)
    with (
        VendorSimulator(tape, api_key=KEY, drops=[500, 1000], lost=150, page_size=300) as sim,
        ConfluentSchemaStore.from_settings(stack.schema_registry) as store,
    ):
        stop = threading.Event()
        feed = LiveFeed(
            VendorStream(
                sim.ws_url,
                SecretStr(KEY),
                ["IBM", "AIG"],
                backoff=Backoff(initial_s=0.05, max_s=0.5),
            ),
            RestClient(sim.rest_url, SecretStr(KEY)),
            ["IBM", "AIG"],
            stop=stop,
        )
        sent: Counter[str] = Counter()

        def counted() -> Iterator:  # type: ignore[type-arg]
            for record in feed:
                sent[str(record.fields.get("trade_id") or record.fields.get("quote_id"))] += 1
                yield record

        def watch() -> None:
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline:
                if sim.finished and feed.stats.gap_backfills == 2 and len(sent) == len(expected):
                    time.sleep(0.5)
                    break
                time.sleep(0.1)
            stop.set()

        ingestor = Ingestor(
            IngestOptions(
                kafka=stack.kafka.connection,
                topics={"trade": topics["trade"], "quote": topics["quote"]},
                dead_letter_topic=topics["dead"],
                partitions=2,
            ),
            store,
        )
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        with ingestor:
            summary = ingestor.run(counted())
        watcher.join()
        assert sim.stats.drops == 2 and sim.stats.connections == 3
        assert feed.stats.gap_backfills == 2 and feed.copies.copies > 0
        assert summary.dead_lettered == 0 and summary.balanced

        # A backfill over the whole range overlaps everything the live feed logged.
        result = CliRunner().invoke(
            main,
            ["ingest", "backfill", "--symbols", "IBM,AIG", "--start", "2013-10-07",
             "--end", "2013-10-07"],
            env=_env(stack, sim, topics),
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert f"copies dropped (already in the log): {len(expected)}" in result.output

    logged = _logged(stack, topics["trade"]) + _logged(stack, topics["quote"])
    assert logged == expected  # every vendor trade and quote exactly once
    assert sum(1 for i in logged if ":q" not in i) == sum(1 for e in tape if e.channel == "T")


def test_backfill_waits_out_rate_limits(stack: Settings, topics: dict[str, str]) -> None:
    tape = load_tape(DAY, ["AIG"], clock(9, 30), clock(9, 35))
    with VendorSimulator(
        tape, api_key=KEY, page_size=100, rate_limit_every=2, retry_after="1"
    ) as sim:
        result = CliRunner().invoke(
            main,
            ["ingest", "backfill", "--symbols", "AIG", "--no-quotes",
             "--start", "2013-10-07T13:30:00", "--end", "2013-10-07T13:35:00"],
            env=_env(stack, sim, topics),
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert sim.stats.rate_limited >= 3
    assert _logged(stack, topics["trade"]) == _ids(tape)


@pytest.fixture
def bars_table(stack: Settings, unique_name: Callable[[str], str]) -> Iterator[str]:
    """A table of the offline bars' key columns, in the stack's PostgreSQL."""
    table = unique_name("vendor_bars").replace("-", "_")
    with psycopg.connect(stack.postgres.dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE TABLE {} (symbol text NOT NULL, event_timestamp timestamptz NOT NULL)")
            .format(sql.Identifier(table))
        )  # fmt: skip
    yield table
    with psycopg.connect(stack.postgres.dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))


def test_the_healer_finds_a_removed_range_and_fills_it_once(
    stack: Settings, topics: dict[str, str], bars_table: str
) -> None:
    """The log lacks five minutes of two symbols (a feed that was away); the bars table, as the
    processors would have written it from that log, lacks them too. The heal finds exactly those
    minutes (and any the symbols did not trade in), backfills them, and a second heal adds nothing.
    """
    start = datetime(2013, 10, 7, 13, 30, tzinfo=UTC)
    removed = (start + timedelta(minutes=4), start + timedelta(minutes=9))
    tape = load_tape(DAY, ["IBM", "AIG"], clock(9, 30), clock(9, 45))
    kept = [e for e in tape if not removed[0] <= _time(e) < removed[1]]
    with VendorSimulator(tape, api_key=KEY, page_size=500) as sim:
        env = {**_env(stack, sim, topics), "FEATURESTORE_VENDOR__BARS_TABLE": bars_table}
        # The log as the live feed left it: everything but the removed minutes.
        for first, last in ((start, removed[0]), (removed[1], start + timedelta(minutes=15))):
            result = CliRunner().invoke(
                main,
                ["ingest", "backfill", "--symbols", "IBM,AIG", "--no-quotes",
                 "--start", first.isoformat(), "--end", last.isoformat()],
                env=env,
            )  # fmt: skip
            assert result.exit_code == 0, result.output
        assert _logged(stack, topics["trade"]) == _ids(kept)
        # The bars table: a row per trade of the log (what the processors write for it).
        with psycopg.connect(stack.postgres.dsn, autocommit=True) as conn, conn.cursor() as cur:
            cur.executemany(
                sql.SQL("INSERT INTO {} VALUES (%s, %s)").format(sql.Identifier(bars_table)),
                [(e.symbol, _time(e)) for e in kept],
            )
        # The log only (the bars are recomputed by the correction: tests/e2e/test_correction.py).
        heal = ["ingest", "heal", "--symbols", "IBM,AIG", "--start", start.isoformat(),
                "--end", (start + timedelta(minutes=15)).isoformat(), "--no-correct"]  # fmt: skip
        # A dry run needs no key and sends nothing.
        dry = CliRunner().invoke(
            main, [*heal, "--dry-run"], env={**env, "FEATURESTORE_VENDOR__API_KEY": ""}
        )
        assert dry.exit_code == 0, dry.output
        assert "IBM: 1 gaps, 5 minutes: 2013-10-07 13:34+5m" in dry.output, dry.output
        assert _logged(stack, topics["trade"]) == _ids(kept)
        result = CliRunner().invoke(main, heal, env=env)
        assert result.exit_code == 0, result.output
        # Both symbols traded in every minute of the window: the removed minutes are the gaps.
        assert _quiet_minutes(tape, start, 15) == {"IBM": [], "AIG": []}
        for symbol in ("IBM", "AIG"):
            assert f"{symbol}: 1 gaps, 5 minutes: 2013-10-07 13:34+5m" in result.output
        assert _logged(stack, topics["trade"]) == _ids(tape)  # filled, each trade once

        again = CliRunner().invoke(main, heal, env=env)
        assert again.exit_code == 0, again.output
        assert "read 0, sent 0" in again.output, again.output  # all copies, dropped
    assert _logged(stack, topics["trade"]) == _ids(tape)


def _time(event: TapeEvent) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=event.sip_ns // 1000)


def _quiet_minutes(
    tape: list[TapeEvent], start: datetime, minutes: int
) -> dict[str, list[datetime]]:
    """Per symbol, the minutes of the window without a trade (gaps the healer finds too)."""
    out: dict[str, list[datetime]] = {}
    for symbol in ("IBM", "AIG"):
        traded = {_time(e).replace(second=0, microsecond=0) for e in tape if e.symbol == symbol}
        out[symbol] = [
            start + timedelta(minutes=i)
            for i in range(minutes)
            if start + timedelta(minutes=i) not in traded
        ]
    return out


def test_the_live_command_as_the_stack_runs_it_stops_on_sigterm_with_all_delivered(
    stack: Settings, topics: dict[str, str]
) -> None:
    """``featurestore ingest live`` (the command ``make run --live`` supervises) in its own
    process: through a break, then SIGTERM; it delivers what it read and says so."""
    import signal
    import subprocess
    import sys

    from featurestore.config import settings_env

    tape = load_tape(DAY, ["AIG"], clock(9, 30), clock(9, 33))
    with VendorSimulator(tape, api_key=KEY, drops=[300], lost=100) as sim:
        env = {**settings_env(stack), **_env(stack, sim, topics), "PATH": "/usr/bin:/bin"}
        process = subprocess.Popen(
            [sys.executable, "-m", "featurestore.cli", "ingest", "live", "--symbols", "AIG",
             "--no-quotes", "--heal-interval", "0"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline and not (sim.finished and sim.stats.drops == 1):
                time.sleep(0.2)
            expected = _ids(tape)
            while time.monotonic() < deadline and _logged_count(stack, topics["trade"]) < len(
                expected
            ):
                time.sleep(0.5)
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0, output
    assert f"read {len(expected)}, sent {len(expected)} to {topics['trade']}" in output, output
    assert "reconnect backfills: 1" in output, output
    assert KEY not in output
    assert _logged(stack, topics["trade"]) == expected


def _logged_count(settings: Settings, topic: str) -> int:
    from tests.live import topic_exists

    return len(read_raw(settings, topic)) if topic_exists(settings, topic) else 0

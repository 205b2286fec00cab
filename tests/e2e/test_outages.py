"""The processor rides through Redis and then PostgreSQL being SIGKILLed under load.

A stack of its own (data folder, Kafka, PostgreSQL, Redis and registry on free ports), so the
shared stack is neither used nor touched. One trade file is in the topic when the processor
starts in the background, as in production. Redis is killed, then PostgreSQL, and while each
is away another file is ingested (so the processor has rows to write whatever its speed: a
processor that had caught up would meet neither outage): the processor stays up (same PID,
nobody restarts it), says NOT_SERVING with the backend and the reason in its ready file while it
waits, and once each server is started again it carries on by itself. At the end the offline
tables equal the independent oracle's rows of everything logged (nothing lost, nothing doubled)
and Redis holds each symbol's latest row.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil
import pytest

from featurestore.apply import apply_definitions
from featurestore.config import Settings
from featurestore.config import settings_env
from featurestore.definitions import Definitions
from featurestore.definitions import market_definitions
from featurestore.processor_files import processor_log
from featurestore.processor_files import ready_file
from featurestore.processor_files import status_file
from featurestore.stack import Stack
from featurestore.stack.process import stop_group
from featurestore.stack.processors import start_processor
from processors.progress import view_progress
from processors.status import read_status
from tests.e2e.processors_support import MARKET
from tests.e2e.processors_support import logged_trades
from tests.e2e.processors_support import oracle_rows
from tests.e2e.processors_support import private_stack
from tests.e2e.processors_support import read_online
from tests.e2e.processors_support import read_table
from tests.e2e.processors_support import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(600)]

FEATURES = {
    "bars_1m": ["open", "high", "low", "close", "volume", "trade_count", "vwap"],
    "rolling_1m": ["vwap_5m", "realized_vol_5m", "price_momentum_1m", "volume_ratio", "sma_20"],
}


@pytest.fixture
def own_stack() -> Iterator[Stack]:
    with private_stack("featurestore-outages-") as stack:
        yield stack


def _ingest_command(topic: str, file: str) -> list[str]:
    return [
        sys.executable, "-m", "featurestore.cli", "ingest", "files", "--topic", topic,
        str(MARKET / file),
    ]  # fmt: skip


def _ingest(settings: Settings, topic: str, file: str) -> None:
    env = {**os.environ, **settings_env(settings)}
    done = subprocess.run(
        _ingest_command(topic, file), env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]


def _kill(stack: Stack, name: str) -> None:
    component = stack.component(name)
    pid = component.process.pid()
    assert pid is not None, name
    os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(psutil.NoSuchProcess):
        psutil.Process(pid).wait(30)
    wait_for(lambda: not component.healthy(), 30, f"{name} to be down")


def _not_serving(settings: Settings, name: str) -> dict[str, str]:
    try:
        ready = json.loads(ready_file(settings, name).read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return dict(ready.get("not_serving") or {})


def _batches(settings: Settings, name: str) -> int:
    return int((read_status(status_file(settings, name)) or {}).get("batch_id", -1))


def _all_stored(settings: Settings, defs: Definitions, name: str) -> bool:
    """Whether every record of the topic is applied and committed in PostgreSQL, every view."""
    return all(p.applied == p.end for p in view_progress(settings, defs, name))


def _explain(
    settings: Settings, defs: Definitions, name: str, feed: subprocess.Popen[bytes], feed_log: Path
) -> str:
    """What a stalled wait saw: each view's progress, the processor's status, the feed."""
    views = "; ".join(f"{p.view}: {p.describe()}" for p in view_progress(settings, defs, name))
    status = read_status(status_file(settings, name)) or {}
    brief = {k: status.get(k) for k in ("batch_id", "finished_at", "lag", "totals")}
    return (
        f"views: {views}\nstatus: {json.dumps(brief)}\nfeed exit: {feed.poll()}\n"
        f"feed output (tail): {feed_log.read_text(errors='replace')[-2000:]}"
    )


def _online_latest(settings: Settings, defs: Definitions, topic: str) -> dict[str, Any]:
    from featurestore.online.base import EntityKey
    from featurestore.online.base import FeatureRef

    refs = [FeatureRef(view, name) for view, names in FEATURES.items() for name in names]
    entities = [EntityKey.of(symbol=s) for s in ("IBM", "AIG")]
    result = read_online(settings, defs, topic, entities, refs)
    return {
        f"{symbol}/{ref}": value.value
        for ref, column in zip(result.refs, result.columns, strict=True)
        for symbol, value in zip(("IBM", "AIG"), column, strict=True)
    }


def test_the_processor_rides_through_redis_then_postgres_going_away(own_stack: Stack) -> None:
    settings = own_stack.settings
    run = uuid.uuid4().hex[:8]
    topic, name = f"outage-trades-{run}", f"outage-{run}"
    _ingest(settings, topic, "20131007_ibm_Trade_Tick.csv.gz")
    defs = market_definitions(
        f"outage_{run}", table_prefix=f"outage_{run}_", source_topic=topic, ttl=timedelta(0)
    )
    apply_definitions(settings, defs)
    log = processor_log(settings, name)
    processor = start_processor(settings, name, defs.project, topic, "--max-offsets", "1500")
    env = {**os.environ, **settings_env(settings)}
    feed: subprocess.Popen[bytes] | None = None
    try:
        wait_for(lambda: _batches(settings, name) >= 1, 240, "the processor's first batches", log)
        outages = {"redis": "20131007_aig_Trade_Tick.csv.gz",
                   "postgres": "20131008_ibm_Trade_Tick.csv.gz"}  # fmt: skip
        for server, file in outages.items():
            _kill(own_stack, server)
            # Under load: trades arrive while the server is away.
            feed_log = log.with_name(f"feed-{server}.log")
            with feed_log.open("wb") as out:
                feed = subprocess.Popen(
                    _ingest_command(topic, file), env=env, stdout=out, stderr=subprocess.STDOUT
                )
            wait_for(lambda s=server: s in _not_serving(settings, name), 60,  # type: ignore[misc]
                     f"the processor to say NOT_SERVING: {server}", log)  # fmt: skip
            assert processor.poll() is None, log.read_text()[-3000:]
            reason = _not_serving(settings, name)[server]
            assert reason, "the reason says what was seen"
            assert own_stack.up([server]).started == [server]
            wait_for(lambda: not _not_serving(settings, name), 120, f"SERVING after {server}", log)
            assert feed.wait(180) == 0, feed_log.read_text(errors="replace")[-2000:]
            # Not "a batch after it came back": the feed may have been read and stepped before
            # the processor touched the server and found it away; its rows wait in memory.
            wait_for(
                lambda: _all_stored(settings, defs, name), 120,
                f"every record stored after {server} came back", log,
                explain=lambda f=feed, fl=feed_log: _explain(settings, defs, name, f, fl),  # type: ignore[misc]
            )  # fmt: skip

        trades = logged_trades(settings, topic)
        want = oracle_rows(trades, [defs.view(view) for view in FEATURES])
        tables = {view: defs.view(view).source.table for view in FEATURES}
        wait_for(
            lambda: all(len(read_table(settings, tables[v])) == len(want[v]) for v in FEATURES),
            300,
            "the tables to hold every row",
            log,
        )
        assert processor.poll() is None, "nobody restarted it: it is the same process"
        for view, features in FEATURES.items():
            got = read_table(settings, tables[view])
            cols = ["symbol", "event_us", *features]
            assert len(got) > 100, view
            pd.testing.assert_frame_equal(
                got[cols].reset_index(drop=True), want[view][cols], check_dtype=False,
                rtol=1e-9, atol=1e-12,
            )  # fmt: skip
        online = _online_latest(settings, defs, topic)
        for view, features in FEATURES.items():
            rows = want[view]
            for symbol in ("IBM", "AIG"):
                last = rows[rows["symbol"] == symbol].iloc[-1]
                for feature in features:
                    value = online[f"{symbol}/{view}:{feature}"]
                    if np.isnan(last[feature]):
                        assert value is None
                    else:
                        assert value == pytest.approx(last[feature], rel=1e-9), (symbol, feature)
    finally:
        if feed is not None and feed.poll() is None:
            feed.kill()
        stop_group(processor)

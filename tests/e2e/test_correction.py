"""A healed gap becomes bars: the late trades dead-lettered by the stream, then the correction.

The IBM trade file of 2013-10-07 goes into a topic without five minutes of it (a feed that was
away), the Kafka engine computes the market views, and then the missing trades are appended (a
heal): the running engine takes them as late. ``processors correct`` recomputes the range from
the log in event-time order. The rollup views are compared with an independent pandas roll-up
of every trade of the file (``tests/unit/processors/test_rollups.py``'s): wrong in the gap
before the correction, equal at every row after it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pandas as pd
import pytest
from click.testing import CliRunner
from confluent_kafka import Consumer
from confluent_kafka import Producer
from confluent_kafka import TopicPartition

from featurestore.apply import apply_definitions
from featurestore.cli import main
from featurestore.config import Settings
from featurestore.config import settings_env
from featurestore.definitions import Definitions
from featurestore.definitions import market_definitions
from featurestore.events import AvroSerializer
from featurestore.events import ConfluentSchemaStore
from featurestore.events import Trade
from featurestore.ingest import wait_for_brokers
from featurestore.topics import TopicSpec
from featurestore.topics import ensure_topics
from processors.correction import HISTORY_LIMIT
from processors.correction import _history
from processors.correction import _log_ends
from processors.correction import _read_events
from processors.kafka_engine import start_consumer
from processors.options import ProcessorOptions
from processors.views import MaterializedViews
from processors.wiring import ProcessorWiring
from tests.e2e.processors_support import MARKET
from tests.e2e.processors_support import clean_up
from tests.e2e.processors_support import ingest_files
from tests.e2e.processors_support import logged_trades
from tests.e2e.processors_support import read_table
from tests.e2e.processors_support import wait_for
from tests.unit.processors.test_rollups import BARS_US
from tests.unit.processors.test_rollups import _bar
from tests.unit.processors.test_rollups import _same
from tests.unit.processors.test_rollups import _values

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(300)]

Record = tuple[int, int, bytes, bytes, int]
"""(partition, offset, key, value, Kafka timestamp ms)."""
GAP = (datetime(2013, 10, 7, 14, 30, tzinfo=UTC), datetime(2013, 10, 7, 14, 35, tzinfo=UTC))


@dataclass
class Healed:
    settings: Settings
    definitions: Definitions
    topic: str
    late: int
    """Trades of the gap, appended after the rest of the day."""


def _raw(settings: Settings, topic: str) -> list[Record]:
    """(partition, offset, key, value, timestamp ms) of every record of ``topic``."""
    consumer = Consumer(
        settings.kafka.connection.consumer(f"t-{uuid.uuid4().hex}", **{"enable.auto.commit": False})
    )
    parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    ends = {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts
    }
    consumer.assign([TopicPartition(topic, p, 0) for p in parts])
    out: list[Record] = []
    while len(out) < sum(ends.values()):
        for m in consumer.consume(10_000, 5.0):
            if m.error() is None:
                part, offset = int(m.partition() or 0), int(m.offset() or 0)
                out.append((part, offset, m.key() or b"", m.value() or b"", m.timestamp()[1]))
    consumer.close()
    return out


def _produce(settings: Settings, topic: str, records: list[Record]) -> None:
    producer = Producer(settings.kafka.connection.producer())
    failed: list[str] = []

    def delivered(error: object, _message: object) -> None:
        if error is not None:
            failed.append(str(error))

    for partition, _, key, value, ts in records:
        producer.produce(
            topic, value, key, partition=partition, timestamp=ts, on_delivery=delivered
        )
        producer.poll(0)
    assert producer.flush(30) == 0 and not failed, failed[:3]


@pytest.fixture(scope="module")
def healed(stack: Settings) -> Iterator[Healed]:
    run = uuid.uuid4().hex[:8]
    source, topic = f"e2e-heal-src-{run}", f"e2e-heal-{run}"
    ingest_files(stack, source, [MARKET / "20131007_ibm_Trade_Tick.csv.gz"])
    times = logged_trades(stack, source).set_index(["partition", "offset"])["event_us"]
    records = sorted(_raw(stack, source))
    gap_us = [int(t.timestamp() * 1_000_000) for t in GAP]
    in_gap = [gap_us[0] <= times[(r[0], r[1])] < gap_us[1] for r in records]
    kept = [r for r, g in zip(records, in_gap, strict=True) if not g]
    late = [r for r, g in zip(records, in_gap, strict=True) if g]
    partitions = max(r[0] for r in records) + 1
    ensure_topics(wait_for_brokers(stack.kafka.connection), [TopicSpec(topic, partitions)])
    with ConfluentSchemaStore.from_settings(stack.schema_registry) as store:
        AvroSerializer.for_topic(store, topic, Trade)  # apply refuses a topic without a schema
    _produce(stack, topic, kept)
    definitions = market_definitions(
        f"e2e_heal_{run}", table_prefix=f"e2e_{run}_heal_", source_topic=topic
    )
    apply_definitions(stack, definitions)
    options = ProcessorOptions(name=f"e2e-heal-{run}", project=definitions.project, topic=topic)
    handle = start_consumer(stack, options, ProcessorWiring(definitions))
    try:
        wait_for(lambda: handle.totals.get("records", 0) >= len(kept), 120, "the day's trades")
        _produce(stack, topic, late)  # the heal: the gap's trades, hours after their time
        wait_for(lambda: handle.totals.get("records", 0) >= len(records), 60, "the healed trades")
        assert handle.totals["dead_letters"] == len(late)  # late for the stream, every one
    finally:
        handle.stop()
    assert len(late) > 50
    yield Healed(stack, definitions, topic, len(late))
    clean_up(stack, [definitions], f"e2e-heal-{run}*", [source, topic])


def _wrong_rows(healed: Healed, view: str) -> list[int]:
    rows = read_table(healed.settings, healed.definitions.view(view).source.table)
    assert len(rows) > 5
    return [
        int(row.event_us)
        for _, row in rows.iterrows()
        if not _same(_values(row), _bar(int(row.event_us), BARS_US[view]))
    ]


def test_the_correction_turns_healed_trades_into_bars(healed: Healed) -> None:
    gap_end_us = int(GAP[1].timestamp() * 1_000_000)
    # Before: the stream's bars of the gap lack the healed trades.
    assert any(t <= gap_end_us for t in _wrong_rows(healed, "ohlcv_1m"))
    bars = healed.definitions.view("bars_1m").source.table
    before = read_table(healed.settings, bars)
    result = CliRunner().invoke(
        main,
        ["processors", "correct", "--project", healed.definitions.project,
         "--topic", healed.topic, "--entities", "IBM",
         "--from", GAP[0].isoformat(), "--to", GAP[1].isoformat()],
        env=settings_env(healed.settings),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "corrected 2013-10-07T14:30:00+00:00" in result.output, result.output
    assert "before them for prev())" in result.output, result.output  # log_return's history
    # After: every row of every rollup view is the bar of the day's trades, gap included.
    for view in BARS_US:
        assert _wrong_rows(healed, view) == [], view
    # The running view has a row per healed trade time now, and kept the others.
    after = read_table(healed.settings, bars)
    gap_us = [int(t.timestamp() * 1_000_000) for t in GAP]
    inside = after[(after.event_us >= gap_us[0]) & (after.event_us < gap_us[1])]
    was = before[(before.event_us >= gap_us[0]) & (before.event_us < gap_us[1])]
    assert len(inside) > len(was)
    early = before[before.event_us < gap_us[0]].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        early, after[after.event_us < gap_us[0]].reset_index(drop=True), check_dtype=False
    )
    fixed = after[after.event_us >= gap_us[0]]
    assert set(fixed.source_topic) == {healed.topic}


def test_a_correction_of_a_project_without_processor_is_refused_by_name(healed: Healed) -> None:
    """Nothing applied for that project: the command says so instead of writing anything."""
    other = market_definitions(
        f"{healed.definitions.project}_none", table_prefix="unused_", source_topic=healed.topic
    )
    result = CliRunner().invoke(
        main,
        ["processors", "correct", "--project", other.project, "--topic", healed.topic,
         "--entities", "IBM", "--from", GAP[0].isoformat(), "--to", GAP[1].isoformat()],
        env=settings_env(healed.settings),
    )  # fmt: skip
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert other.project in result.output or "no processor" in result.output, result.output


@pytest.mark.parametrize(("hour", "minute"), [(12, 0), (14, 40), (8, 0)])
def test_prev_reads_get_the_entity_s_event_before_the_reach(
    healed: Healed, hour: int, minute: int
) -> None:
    """The history a correction reads for ``log_return = ln(price / prev(price))``.

    At 12:00 the trade just before is in the first slice read back. At 14:40 the healed trades
    of 14:30-14:35, appended at the log's end, are among the records read for the range: the
    trade just before 14:40 is still the one taken. Before the day's first trade (08:00 falls
    before it), the log is read back to its start and IBM is left unseeded.
    """
    views = MaterializedViews.resolve(healed.definitions, healed.topic)
    assert views.plan.source.prevs  # the trades' log_return reads prev(price)
    ends = _log_ends(healed.settings, healed.topic)
    lo = datetime(2013, 10, 7, hour, minute, tzinfo=UTC)
    read = _read_events(
        healed.settings, views, ends, {"IBM"}, lo - HISTORY_LIMIT, lo + timedelta(hours=1), at=lo
    )
    earlier = read[read["_event_us"] < int(lo.timestamp() * 1_000_000)]
    history, unseeded = _history(healed.settings, views, ends, {"IBM"}, lo, HISTORY_LIMIT, earlier)
    trades = logged_trades(healed.settings, healed.topic)
    before = trades[trades.event_us < int(lo.timestamp() * 1_000_000)]
    if before.empty:
        assert history.empty and unseeded == ["IBM"]
        return
    assert unseeded == []
    last = before.sort_values(["event_us", "partition", "offset"]).iloc[-1]
    time = views.plan.source.timestamp_field
    assert (history[time].iloc[-1], history["price"].iloc[-1]) == (last.event_us, last.price)

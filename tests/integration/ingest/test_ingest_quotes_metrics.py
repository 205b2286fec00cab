from __future__ import annotations

import gzip
from collections import Counter
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from pathlib import Path

import pytest
from click.testing import CliRunner

from featurestore.cli import main
from featurestore.config import Settings
from featurestore.events import AvroDeserializer
from featurestore.events import ConfluentSchemaStore
from featurestore.events import Metric
from featurestore.events import Quote
from featurestore.events import Trade
from featurestore.events.schemas import bundled_schema
from featurestore.events.schemas import parse_schema_text
from featurestore.ingest import DEAD_LETTER_REASON
from featurestore.ingest import IngestEvent
from featurestore.ingest import Ingestor
from featurestore.ingest import RecordKind
from featurestore.ingest import RecordRejectedError
from featurestore.ingest import SourceRecord
from featurestore.ingest import market_data_dir
from featurestore.ingest import merge_by_event_time
from featurestore.ingest import metric_layout
from featurestore.ingest import open_event_file
from featurestore.ingest.kinds import EVENT_KINDS
from tests.integration.ingest.support import read_raw
from tests.integration.ingest.support import stack_ingestors

pytestmark = pytest.mark.integration

QUOTE_FILE = "20131008_ibm_Quote_Tick.csv.gz"
TRADE_FILE = "20131008_ibm_Trade_Tick.csv.gz"


def head(name: str, lines: int) -> list[str]:
    with gzip.open(market_data_dir() / name, "rt") as handle:
        return [next(handle).rstrip("\n") for _ in range(lines)]


def write_gz(path: Path, lines: list[str]) -> Path:
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def expected(records: Iterable[SourceRecord]) -> tuple[list[IngestEvent], Counter[str]]:
    """What ingest must send and dead-letter, by the same validation, computed here offline."""
    events: list[IngestEvent] = []
    reasons: Counter[str] = Counter()
    for record in records:
        try:
            events.append(EVENT_KINDS[record.kind].validate(record))
        except RecordRejectedError as exc:
            reasons[exc.code] += 1
    return events, reasons


def decode_all(
    stack: Settings, topic: str, full_name: str
) -> tuple[list[IngestEvent], list[bytes | None], set[int]]:
    """Decode every record of a topic with its writer schema (looked up by the id it carries)."""
    events: list[IngestEvent] = []
    keys: list[bytes | None] = []
    ids: set[int] = set()
    with ConfluentSchemaStore.from_settings(stack.schema_registry) as store:
        decoder = AvroDeserializer(store)
        for _, key, value, _ in sorted(read_raw(stack, topic), key=lambda r: r[0]):
            schema_id, _ = decoder.decode_wire(value)
            assert decoder.writer_schema(schema_id).full_name == full_name
            ids.add(schema_id)
            event = decoder.decode(value)
            assert isinstance(event, Trade | Quote | Metric)
            events.append(event)
            keys.append(key)
    return events, keys, ids


@pytest.fixture
def make_ingestor(stack: Settings, unique_name: Callable[[str], str]):
    with stack_ingestors(stack) as make_on_stack:

        def make(kinds: Iterable[RecordKind]) -> Ingestor:
            topics = {kind: unique_name(f"it-{kind}s") for kind in kinds}
            return make_on_stack(topics, unique_name("it-dlq"))

        yield make


def test_a_real_quote_file_slice_every_record_accounted_for(
    stack: Settings, make_ingestor: Callable[..., Ingestor], tmp_path: Path
) -> None:
    lines = head(QUOTE_FILE, 5000)
    bad = {100: "suspicious", 200: "unparsable", 300: "non_positive_price", 400: "negative_size"}
    rows = [line.split(",") for line in lines]
    rows[99][7] = "1"
    rows[199] = ["not", "a", "quote"]
    # The price and the size of the side a row quotes: columns 2-3 (bid) or 4-5 (ask).
    price = {n: 1 if rows[n - 1][1] != "0" else 3 for n in (300, 400)}
    rows[299][price[300]] = "-5"
    rows[399][price[400] + 1] = "-100"
    lines = [",".join(row) for row in rows]
    path = write_gz(tmp_path / QUOTE_FILE, lines)
    want, want_reasons = expected(open_event_file(path))
    assert want_reasons["one_sided"] == 1
    for code in bad.values():
        assert want_reasons[code] >= 1

    ingestor = make_ingestor(["quote"])
    summary = ingestor.run(open_event_file(path))
    (topic,) = summary.topics
    assert summary.read == 5000
    assert (summary.sent, summary.dead_lettered) == (len(want), 5000 - len(want))
    assert dict(summary.reasons) == dict(want_reasons)

    events, keys, schema_ids = decode_all(stack, topic, "featurestore.v1.Quote")
    dead = read_raw(stack, summary.dead_letter_topic)
    assert len(events) + len(dead) == summary.read
    assert events == want  # one key, one partition: the file's order
    assert set(keys) == {b"IBM"}
    assert schema_ids == {ingestor.serializer("quote").schema_id}
    with ConfluentSchemaStore.from_settings(stack.schema_registry) as store:
        writer = parse_schema_text(store.schema_text(schema_ids.pop()))
    assert writer.text == bundled_schema("quote").text
    assert len({q.quote_id for q in events if isinstance(q, Quote)}) == len(events)
    by_line = {int(h["x-source-line"]): (value, h) for _, _, value, h in dead}
    for line, code in bad.items():
        value, headers = by_line[line]
        assert value == lines[line - 1].encode()
        assert headers[DEAD_LETTER_REASON].decode().startswith(f"{code}: ")
        assert headers["x-original-topic"] == topic.encode()


def test_trades_and_quotes_of_one_run_go_to_their_own_topics(
    stack: Settings, make_ingestor: Callable[..., Ingestor], tmp_path: Path
) -> None:
    quotes = write_gz(tmp_path / QUOTE_FILE, head(QUOTE_FILE, 3000))
    trades = write_gz(tmp_path / TRADE_FILE, head(TRADE_FILE, 1000))
    ingestor = make_ingestor(["trade", "quote"])
    summary = ingestor.run(merge_by_event_time(open_event_file(p) for p in (trades, quotes)))
    topics = ingestor.options.topics
    want, _ = expected(merge_by_event_time(open_event_file(p) for p in (trades, quotes)))
    sent = Counter(type(e).__name__ for e in want)
    assert summary.read == 4000
    assert summary.sent_by_topic == {topics["trade"]: sent["Trade"], topics["quote"]: sent["Quote"]}
    assert summary.sent + summary.dead_lettered == summary.read
    got_trades, _, _ = decode_all(stack, topics["trade"], "featurestore.v1.Trade")
    got_quotes, _, _ = decode_all(stack, topics["quote"], "featurestore.v1.Quote")
    assert all(isinstance(e, Trade) for e in got_trades) and len(got_trades) == sent["Trade"]
    assert got_quotes == [e for e in want if isinstance(e, Quote)]
    dead = read_raw(stack, summary.dead_letter_topic)
    assert len(got_trades) + len(got_quotes) + len(dead) == summary.read


METRICS_CSV = """\
host,ts,cpu,region
{rows}
web-1,2024-01-02T14:31:00Z,NaN,eu
,2024-01-02T14:31:01Z,1.0,eu
web-2,2024-01-02 14:31:02,1.0,eu
web-3,2024-01-02T14:31:03Z,lots,us
web-3,2024-01-02T14:31:04Z
"""
METRIC_REASONS = {"not_finite": 1, "missing_field": 1, "naive_time": 1, "wrong_type": 1}


def metrics_csv(path: Path) -> Path:
    rows = [
        f"web-{i % 3 + 1},2024-01-02T14:30:{i:02d}.5Z,{i * 0.25 - 3},{('eu', 'us')[i % 2]}"
        for i in range(50)
    ]
    path.write_text(METRICS_CSV.format(rows="\n".join(rows)))
    return path


def test_a_small_metrics_csv_end_to_end(
    stack: Settings, make_ingestor: Callable[..., Ingestor], tmp_path: Path
) -> None:
    path = metrics_csv(tmp_path / "cpu.csv")
    layout = metric_layout(
        entity_column="host",
        time_column="ts",
        value_column="cpu",
        name="cpu_load",
        tag_columns=["region"],
    )
    want, want_reasons = expected(open_event_file(path, layout=layout))
    ingestor = make_ingestor(["metric"])
    summary = ingestor.run(open_event_file(path, layout=layout))
    (topic,) = summary.topics
    assert (summary.read, summary.sent, summary.dead_lettered) == (55, 50, 5)
    assert dict(summary.reasons) == {**METRIC_REASONS, "unparsable": 1}
    assert dict(want_reasons) == dict(summary.reasons)

    events, keys, schema_ids = decode_all(stack, topic, "featurestore.v1.Metric")
    dead = read_raw(stack, summary.dead_letter_topic)
    assert len(events) + len(dead) == summary.read
    assert schema_ids == {ingestor.serializer("metric").schema_id}
    metrics = [e for e in events if isinstance(e, Metric)]
    assert len(metrics) == 50
    want_metrics = [e for e in want if isinstance(e, Metric)]
    by_id = sorted(metrics, key=lambda m: m.metric_id)
    assert by_id == sorted(want_metrics, key=lambda m: m.metric_id)
    assert set(keys) == {b"web-1", b"web-2", b"web-3"}
    for key, m in zip(keys, metrics, strict=True):
        assert key == m.entity.encode()
        assert m.name == "cpu_load" and set(m.tags) == {"region"}
    reasons = Counter(h[DEAD_LETTER_REASON].decode().split(":")[0] for *_, h in dead)
    assert reasons == Counter(summary.reasons)


def run_cli(args: list[str], env: Mapping[str, str]) -> str:
    result = CliRunner().invoke(main, args, env=dict(env))
    assert result.exit_code == 0, result.output
    return result.output


def test_the_cli_sends_metrics_and_synthetic_metrics(
    stack: Settings, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    topic, dlq = unique_name("it-cli-metrics"), unique_name("it-cli-dlq")
    env = {"FEATURESTORE_TOPICS__METRICS": topic, "FEATURESTORE_TOPICS__DEAD_LETTER": dlq}
    path = metrics_csv(tmp_path / "cpu.csv")
    output = run_cli(
        [
            "ingest",
            "metrics",
            str(path),
            "--entity-column",
            "host",
            "--time-column",
            "ts",
            "--value-column",
            "cpu",
            "--tag-columns",
            "region",
        ],
        env,
    )
    assert f"read 55, sent 50 to {topic}, dead-lettered 5 to {dlq}, failed 0" in output
    output = run_cli(
        [
            "ingest",
            "synthetic-metrics",
            "--entities",
            "5",
            "--count",
            "500",
            "--fast",
            "--start",
            "2024-01-02T14:30:00",
            "--name",
            "cpu_load",
            "--name",
            "mem_used",
        ],
        env,
    )
    assert f"read 500, sent 500 to {topic}, dead-lettered 0 to {dlq}, failed 0" in output
    events, keys, _ = decode_all(stack, topic, "featurestore.v1.Metric")
    assert len(events) == 550
    synthetic = [e for e in events if isinstance(e, Metric) and e.entity.startswith("entity-")]
    assert {m.name for m in synthetic} == {"cpu_load", "mem_used"}
    assert {k for k in keys if k is not None and k.startswith(b"entity-")} == {
        f"entity-{i:04d}".encode() for i in range(1, 6)
    }


def test_the_cli_sends_a_long_table_of_several_metrics_each_row_named(
    stack: Settings, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    topic, dlq = unique_name("it-cli-long"), unique_name("it-cli-long-dlq")
    env = {"FEATURESTORE_TOPICS__METRICS": topic, "FEATURESTORE_TOPICS__DEAD_LETTER": dlq}
    path = tmp_path / "hosts.csv"
    path.write_text(
        "host,ts,metric,value\n"
        "web-1,2024-01-02T14:30:00Z,cpu_load,0.5\n"
        "web-1,2024-01-02T14:30:00Z,mem_used,7.5e9\n"
        "web-2,2024-01-02T14:30:01Z,cpu_load,0.25\n"
        "web-2,2024-01-02T14:30:02Z,,0.75\n"
    )
    args = ["ingest", "metrics", str(path), "--entity-column", "host", "--time-column", "ts",
            "--value-column", "value", "--name-column", "metric"]  # fmt: skip
    output = run_cli(args, env)
    assert f"read 4, sent 3 to {topic}, dead-lettered 1 to {dlq}, failed 0" in output
    events, _, _ = decode_all(stack, topic, "featurestore.v1.Metric")
    assert sorted((m.entity, m.name, m.value) for m in events if isinstance(m, Metric)) == [
        ("web-1", "cpu_load", 0.5),
        ("web-1", "mem_used", 7.5e9),
        ("web-2", "cpu_load", 0.25),
    ]
    (dead,) = read_raw(stack, dlq)
    assert dead[-1][DEAD_LETTER_REASON].decode() == "bad_name: the metric's name is empty"
    refused = CliRunner().invoke(main, [*args, "--name", "cpu"], env=env)
    assert refused.exit_code == 2
    assert "--name and --name-column exclude each other" in refused.output

"""``featurestore replay`` on the test stack: a topic's events and a dead-letter topic read back.

The records are written by the real producers (``featurestore ingest metrics``); the command is
the one an operator runs, through click, against the stack's Kafka and schema registry.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from featurestore.cli import main

pytestmark = pytest.mark.integration

ROWS = """\
host,ts,cpu
web-1,2024-01-02T14:30:00Z,0.5
web-2,2024-01-02T14:30:01Z,0.75
web-1,2024-01-02T14:30:02Z,1.25
web-2,2024-01-02T14:30:03Z,NaN
web-1,2024-01-02 14:30:04,1.0
not,a,metric,row
"""


def _cli(args: list[str], env: dict[str, str]) -> str:
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 0, result.output
    return result.output


def test_replay_reads_back_events_and_dead_letters_with_their_reasons(
    unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    topic, dlq = unique_name("it-replay-metrics"), unique_name("it-replay-dlq")
    env = {"FEATURESTORE_TOPICS__METRICS": topic, "FEATURESTORE_TOPICS__DEAD_LETTER": dlq}
    path = tmp_path / "cpu.csv"
    path.write_text(ROWS)
    ingest = ["ingest", "metrics", str(path), "--entity-column", "host", "--time-column", "ts",
              "--value-column", "cpu"]  # fmt: skip
    assert f"read 6, sent 3 to {topic}, dead-lettered 3 to {dlq}" in _cli(ingest, env)

    events = [json.loads(line) for line in _cli(["replay", topic, "--json"], env).splitlines()]
    # Keyed by entity: in order within each entity's partition.
    assert sorted((e["event"]["entity"], e["event"]["value"], e["type"]) for e in events) == [
        ("web-1", 0.5, "Metric"), ("web-1", 1.25, "Metric"), ("web-2", 0.75, "Metric")
    ]  # fmt: skip
    assert f"{topic}: 3 events decoded" in _cli(["replay", topic], env)

    # The settings' dead-letter topic is read as dead letters without being told.
    letters = [json.loads(line) for line in _cli(["replay", dlq, "--json"], env).splitlines()]
    by_line = {d["origin"]["line"]: d for d in letters}
    assert sorted(by_line) == [5, 6, 7]
    assert {line: d["code"] for line, d in by_line.items()} == {
        5: "not_finite", 6: "naive_time", 7: "unparsable"
    }  # fmt: skip
    assert all(d["origin"]["source"] == "cpu.csv" for d in letters)
    assert by_line[7]["value"] == {"kind": "text", "length": 16, "text": "not,a,metric,row"}

    shown = _cli(["replay", dlq, "--reason", "NAIVE"], env).splitlines()
    assert "ingest of cpu.csv line 6" in shown[1]
    assert shown[-1] == (
        f"{dlq}: 3 dead letters read, 1 shown matching --reason 'NAIVE'"
        " (by reason code: naive_time 1, not_finite 1, unparsable 1)"
    )
    first = _cli(["replay", dlq, "--limit", "1"], env).splitlines()
    assert first[-1].startswith(f"{dlq}: 1 dead letter read, 1 shown, stopped at --limit")


def test_replay_since_starts_at_the_records_appended_from_that_time(
    unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    topic, dlq = unique_name("it-replay-since"), unique_name("it-replay-since-dlq")
    env = {"FEATURESTORE_TOPICS__METRICS": topic, "FEATURESTORE_TOPICS__DEAD_LETTER": dlq}

    def ingest(name: str, rows: str) -> None:
        (tmp_path / name).write_text(rows)
        _cli(["ingest", "metrics", str(tmp_path / name), "--entity-column", "host",
              "--time-column", "ts", "--value-column", "cpu"], env)  # fmt: skip

    ingest("early.csv", ROWS)
    time.sleep(0.05)  # Kafka timestamps are in ms
    since = datetime.now(UTC).isoformat()
    time.sleep(0.05)
    ingest("late.csv", "host,ts,cpu\nweb-9,2024-01-02T15:00:00Z,9.5\nbad\n")

    assert f"{topic}: 4 events decoded" in _cli(["replay", topic], env)
    # An event's Kafka timestamp is its event time (early.csv's are 14:30:00 to 14:30:02).
    late = _cli(["replay", topic, "--json", "--since", "2024-01-02T14:30:01.5Z"], env).splitlines()
    assert sorted((e["event"]["entity"], e["event"]["value"]) for e in map(json.loads, late)) == [
        ("web-1", 1.25), ("web-9", 9.5)
    ]  # fmt: skip
    # A dead letter's is when it was dead-lettered.
    letters = _cli(["replay", dlq, "--json", "--since", since], env).splitlines()
    assert [json.loads(x)["origin"]["source"] for x in letters] == ["late.csv"]
    # After the last record: nothing. A time without an offset is refused by name.
    after = _cli(["replay", topic, "--since", "2999-01-01T00:00Z"], env)
    assert f"{topic}: 0 events decoded" in after
    naive = CliRunner().invoke(main, ["replay", topic, "--since", "2024-01-02T15:00"], env=env)
    assert naive.exit_code == 2 and "needs a UTC offset" in naive.output

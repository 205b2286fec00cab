"""The Kafka engine's pure parts: where partitions start, a poll's records, options, settings."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from confluent_kafka import OFFSET_BEGINNING
from confluent_kafka import OFFSET_END
from confluent_kafka import KafkaError
from confluent_kafka import TopicPartition

from featurestore.cli.processors import _options
from featurestore.config import load_settings
from featurestore.errors import ConfigurationError
from processors.kafka_engine import consumer_config
from processors.kafka_engine import group_records
from processors.kafka_engine import start_positions
from processors.options import ProcessorOptions


def _offsets(positions: list[TopicPartition]) -> dict[int, int]:
    return {p.partition: p.offset for p in positions}


def test_stored_offsets_win_and_the_others_start_where_starting_offsets_says() -> None:
    stored = {0: 120, 2: 7}
    earliest = start_positions("t", [0, 1, 2, 3], stored, "earliest")
    assert _offsets(earliest) == {0: 120, 1: OFFSET_BEGINNING, 2: 7, 3: OFFSET_BEGINNING}
    assert {p.topic for p in earliest} == {"t"}
    latest = start_positions("t", [3, 1], stored, "latest")
    assert _offsets(latest) == {1: OFFSET_END, 3: OFFSET_END}


def test_json_starting_offsets_as_spark_takes_them() -> None:
    text = '{"t": {"0": 5, "1": -2, "2": -1}}'
    got = start_positions("t", [0, 1, 2, 3], {0: 9}, text)
    assert _offsets(got) == {0: 9, 1: OFFSET_BEGINNING, 2: OFFSET_END, 3: OFFSET_BEGINNING}


@pytest.mark.parametrize("bad", ["newest", '{"t": [1, 2]}', "{not json"])
def test_bad_starting_offsets_are_refused_naming_the_option(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="--starting-offsets"):
        start_positions("t", [0], {}, bad)


@dataclass
class _Message:
    """What ``Consumer.consume`` returns, as far as the engine reads it."""

    part: int
    at: int
    err: KafkaError | None = None

    def error(self) -> KafkaError | None:
        return self.err

    def partition(self) -> int:
        return self.part

    def offset(self) -> int:
        return self.at

    def key(self) -> bytes:
        return f"k{self.part}".encode()

    def value(self) -> bytes:
        return f"v{self.at}".encode()

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_000 + self.at)


def test_a_poll_becomes_each_partitions_records_in_log_order() -> None:
    polled = [_Message(2, 10), _Message(0, 5), _Message(2, 11), _Message(0, 6), _Message(1, 3)]
    polled.insert(2, _Message(3, -1, KafkaError(KafkaError._MSG_TIMED_OUT)))
    records, errors = group_records(polled)
    assert [int(r.partition[0]) for r in records] == [0, 1, 2]
    assert [r.offset.tolist() for r in records] == [[5, 6], [3], [10, 11]]
    assert records[2].values == [b"v10", b"v11"]
    assert records[0].timestamp_ms.tolist() == [1005, 1006]
    assert [e.code() for e in errors] == [KafkaError._MSG_TIMED_OUT]


def test_the_consumer_commits_nothing_and_reads_through_the_stores_kafka_connection() -> None:
    settings = load_settings({"FEATURESTORE_KAFKA__BOOTSTRAP_SERVERS": "k1:9092,k2:9092"})
    options = ProcessorOptions(name="features", engine="kafka", partitions=(0, 1))
    config = consumer_config(settings, options)
    assert config["bootstrap.servers"] == "k1:9092,k2:9092"
    assert config["enable.auto.commit"] is False
    assert config["group.id"] == "featurestore-processor-features-p0-1"
    latest = consumer_config(settings, ProcessorOptions(engine="kafka", starting_offsets="latest"))
    assert latest["auto.offset.reset"] == "latest"


def test_the_kafka_engine_takes_no_spark_master_nor_executors() -> None:
    with pytest.raises(ConfigurationError, match="--engine spark"):
        ProcessorOptions(engine="kafka", master="spark://127.0.0.1:7077")
    with pytest.raises(ConfigurationError, match="--step-on executors"):
        ProcessorOptions(engine="kafka", on_executors=True)
    with pytest.raises(ConfigurationError, match="--poll-ms"):
        ProcessorOptions(engine="kafka", poll_ms=0)
    with pytest.raises(ConfigurationError, match="--commit-ms -1"):
        ProcessorOptions(engine="kafka", commit_ms=-1)


def test_the_engine_comes_from_the_setting_and_a_cluster_master_implies_spark() -> None:
    kafka = load_settings({})
    assert _options("features", kafka).engine == kafka.processors.engine == "kafka"
    spark = load_settings(
        {"FEATURESTORE_PROCESSORS__ENGINE": "spark", "FEATURESTORE_PROCESSORS__POLL_MS": "2"}
    )
    assert _options("features", spark).engine == "spark"
    assert _options("features", spark).poll_ms == 2.0
    assert _options("features", kafka).commit_ms == kafka.processors.commit_ms == 1000
    every_batch = load_settings({"FEATURESTORE_PROCESSORS__COMMIT_MS": "0"})
    assert _options("features", every_batch).commit_ms == 0
    assert _options("features", kafka, commit_ms=250).commit_ms == 250
    assert _options("features", kafka, master="spark://h:7077").engine == "spark"
    assert _options("features", kafka, step_on="executors").engine == "spark"
    assert _options("features", spark, engine="kafka").engine == "kafka"

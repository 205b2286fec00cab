"""A 3-broker KRaft cluster of the stack's own: replication, Java's partitioning, a lost broker.

The cluster is this module's own (a data folder under pytest's tmp, free loopback ports, small
heaps), started and stopped through :class:`~featurestore.stack.Stack`; the shared stack is
never touched. Only the jars are shared, as ``test_recovery`` does.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import psutil
import pytest
from confluent_kafka import Consumer
from confluent_kafka import KafkaError
from confluent_kafka import KafkaException
from confluent_kafka import Producer
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import ConfigResource

from featurestore.config import Settings
from featurestore.ingest.kafka import EventProducer
from featurestore.ingest.kafka import producer_config
from featurestore.schema_registry.errors import StoreError
from featurestore.schema_registry.kafka_log import KafkaRecordLog
from featurestore.stack import Stack
from featurestore.stack.jars import jar_dir
from featurestore.topics import TopicSpec
from featurestore.topics import ensure_topics
from tests.own_stack import own_stack
from tests.ports import free_port_block

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@dataclass
class Cluster:
    settings: Settings
    stack: Stack
    admin: AdminClient = field(init=False)

    def __post_init__(self) -> None:
        self.admin = AdminClient({"bootstrap.servers": self.settings.kafka.bootstrap})

    def topic(self, prefix: str, partitions: int) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        ensure_topics(self.admin, [TopicSpec(name, partitions)])
        return name

    def partitions(self, topic: str) -> dict[int, tuple[int, list[int]]]:
        """partition -> (leader, in-sync replicas), once the broker asked knows the topic.

        A broker learns of a new topic from the controller a moment after its creation.
        """
        deadline = time.monotonic() + 10
        while True:
            metadata = self.admin.list_topics(topic, timeout=10).topics[topic]
            if metadata.partitions or time.monotonic() > deadline:
                return {p.id: (p.leader, sorted(p.isrs)) for p in metadata.partitions.values()}
            time.sleep(0.2)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base = free_port_block(6)  # node n: broker base + 2(n-1), controller base + 1 + 2(n-1)
    env = {
        "FEATURESTORE_KAFKA__BROKERS": "3",
        "FEATURESTORE_KAFKA__PORT": str(base),
        "FEATURESTORE_KAFKA__CONTROLLER_PORT": str(base + 1),
        "FEATURESTORE_KAFKA__HEAP": "256m",
    }
    names = ["kafka", "kafka-2", "kafka-3"]
    with own_stack(tmp_path_factory.mktemp("kafka-cluster"), env, names) as stack:
        assert [node.name for node in stack.kafka_nodes] == names
        yield Cluster(stack.settings, stack)
    assert all(node.process.pid() is None for node in stack.kafka_nodes)


def test_event_topics_are_replicated_three_times_two_in_sync(cluster: Cluster) -> None:
    topics = cluster.settings.topics
    names = [topics.trades, topics.quotes, topics.metrics, topics.dead_letter]
    metadata = cluster.admin.list_topics(timeout=10)
    assert sorted(metadata.brokers) == [1, 2, 3]
    for name in names:
        known = cluster.admin.list_topics(name, timeout=10).topics[name]
        assert known.error is None, (name, known.error)
        partitions = known.partitions.values()
        assert partitions and all(len(p.replicas) == 3 for p in partitions), name
    for name in names:  # the broker asked may not know a topic just created yet
        entries = _topic_configs(cluster.admin, name)
        assert entries["min.insync.replicas"].value == "2", name
        assert entries["retention.ms"].value == "-1", name


def test_a_shell_that_did_not_export_the_brokers_sees_all_three(cluster: Cluster) -> None:
    """``stack up`` kept the shape in the data folder: a new terminal's ``stack status`` (and so
    ``stack down``) covers every node, where it once saw ``kafka`` alone and left two running."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEATURESTORE_")}
    env |= {
        "FEATURESTORE_DATA_DIR": str(cluster.settings.data_dir),
        "FEATURESTORE_KAFKA__PORT": str(cluster.settings.kafka.port),
        "FEATURESTORE_KAFKA__CONTROLLER_PORT": str(cluster.settings.kafka.controller_port),
    }
    command = [sys.executable, "-m", "featurestore.cli", "stack", "status"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    rows = [line.split() for line in done.stdout.splitlines()]
    kafka = {row[0]: row[1] for row in rows if row and row[0].startswith("kafka")}
    assert kafka == {"kafka": "healthy", "kafka-2": "healthy", "kafka-3": "healthy"}, done.stdout
    assert "also running" not in done.stdout, done.stdout


def _topic_configs(admin: AdminClient, topic: str, timeout_s: float = 30.0) -> Any:
    """A new topic's configuration, once the broker asked knows the topic (metadata of a topic
    just created reaches the brokers one after the other)."""
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return admin.describe_configs([resource])[resource].result(timeout=10)
        except KafkaException as exc:
            unknown = exc.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART
            if not unknown or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_the_schema_log_is_replicated_as_configured(cluster: Cluster) -> None:
    kafka = cluster.settings.kafka.connection
    default = KafkaRecordLog(kafka, f"_schemas-{uuid.uuid4().hex[:8]}")
    two = KafkaRecordLog(kafka, f"_schemas-{uuid.uuid4().hex[:8]}", replication_factor=2)
    for log in (default, two):
        log.ensure_topic()
    for log, replicas, in_sync in ((default, 3, "2"), (two, 2, "1")):
        partitions = cluster.partitions(log.topic)
        assert list(partitions) == [0]
        assert len(partitions[0][1]) == replicas
        entries = _topic_configs(cluster.admin, log.topic)
        assert entries["min.insync.replicas"].value == in_sync
        assert entries["cleanup.policy"].value == "compact"
    too_many = KafkaRecordLog(kafka, f"_schemas-{uuid.uuid4().hex[:8]}", replication_factor=4)
    with pytest.raises(StoreError, match=r"REPLICATION_FACTOR.*needs at least 4"):
        too_many.ensure_topic()


def test_java_console_producer_and_ours_put_each_key_in_the_same_partition(
    cluster: Cluster,
) -> None:
    java = shutil.which("java")
    assert java is not None, "Java 17 is needed by the stack's Kafka"
    partitions = 16
    topic = cluster.topic("partitioner", partitions)
    keys = [f"SYM{i}" for i in range(1500)] + [f"entity/{i}/ü€" for i in range(500)]
    bootstrap = cluster.settings.kafka.bootstrap

    lines = "".join(f"{key}\tjava\n" for key in keys).encode()
    jars = jar_dir(cluster.settings, "kafka")
    console = subprocess.run(
        [
            java, "-Xmx128m", "-cp", f"{jars}/*", "org.apache.kafka.tools.ConsoleProducer",
            "--bootstrap-server", bootstrap, "--topic", topic,
            "--property", "parse.key=true", "--property", "key.separator=\t",
            "--producer-property", "acks=all",
        ],
        input=lines,
        capture_output=True,
        timeout=90,
    )  # fmt: skip
    assert console.returncode == 0, console.stderr.decode()[-3000:]

    ours = EventProducer(producer_config(cluster.settings.kafka.connection))
    # Control: librdkafka's default partitioner (CRC32), which this comparison must tell apart.
    crc = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for key in keys:
        ours.produce(topic, b"ours", key=key.encode())
        crc.produce(topic, b"crc32", key=key.encode())
    assert ours.flush(30) == 0 and ours.report.total_failed == 0
    assert crc.flush(30) == 0

    placed: dict[bytes, dict[str, int]] = {b"java": {}, b"ours": {}, b"crc32": {}}
    for message in _read_all(bootstrap, topic, partitions, expected=3 * len(keys)):
        placed[message[0]][message[1]] = message[2]
    assert len(placed[b"java"]) == len(placed[b"ours"]) == len(keys)
    differing = [key for key in keys if placed[b"ours"][key] != placed[b"java"][key]]
    assert differing == []
    assert len(set(placed[b"java"].values())) == partitions
    crc_differing = sum(placed[b"crc32"][key] != placed[b"java"][key] for key in keys)
    assert crc_differing > len(keys) // 2, "the comparison cannot tell partitioners apart"


def _read_all(
    bootstrap: str, topic: str, partitions: int, expected: int
) -> list[tuple[bytes, str, int]]:
    """(value, key, partition) of the first ``expected`` records of ``topic``."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "cluster-test", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    records: list[tuple[bytes, str, int]] = []
    deadline = time.monotonic() + 60
    try:
        while len(records) < expected and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error() is not None:
                continue
            key = (message.key() or b"").decode()
            records.append((message.value() or b"", key, message.partition() or 0))
    finally:
        consumer.close()
    assert len(records) == expected
    return records


@dataclass
class _Consumed:
    """What a consumer thread read so far, in order."""

    values: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _consume(
    bootstrap: str, topic: str, partitions: int, into: _Consumed, stop: threading.Event
) -> None:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"cluster-test-{uuid.uuid4().hex[:6]}",
            "enable.auto.commit": False,
            "log_level": 0,
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    try:
        while not stop.is_set():
            message = consumer.poll(0.2)
            if message is None:
                continue
            error = message.error()
            if error is None:
                into.values.append((message.value() or b"").decode())
            elif error.code() != KafkaError._PARTITION_EOF:
                into.errors.append(error.str())
    finally:
        consumer.close()


def test_a_broker_killed_under_load_loses_nothing_and_rejoins(cluster: Cluster) -> None:
    partitions = 6
    topic = cluster.topic("failover", partitions)
    bootstrap = cluster.settings.kafka.bootstrap
    assert all(len(isr) == 3 for _, isr in cluster.partitions(topic).values())

    consumed = _Consumed()
    stop = threading.Event()
    reader = threading.Thread(target=_consume, args=(bootstrap, topic, partitions, consumed, stop))
    reader.start()
    producer = EventProducer(
        producer_config(cluster.settings.kafka.connection, delivery_timeout_s=60.0)
    )
    keys = [f"E{i:03d}" for i in range(60)]
    sent: list[str] = []

    def produce_for(seconds: float, per_second: int = 2000) -> None:
        began = time.monotonic()
        while time.monotonic() - began < seconds:
            for _ in range(per_second // 50):
                key = keys[len(sent) % len(keys)]
                value = f"{key}:{len(sent)}"
                producer.produce(topic, value.encode(), key=key.encode())
                sent.append(value)
            producer.poll(0.02)

    try:
        produce_for(4.0)
        # The broker leading the most partitions: its leaderships must move under load.
        leaders = Counter(leader for leader, _ in cluster.partitions(topic).values())
        victim = cluster.stack.kafka_nodes[leaders.most_common(1)[0][0] - 1]
        pid = victim.process.pid()
        assert pid is not None
        sent_before_kill = len(sent)
        os.kill(pid, signal.SIGKILL)
        psutil.Process(pid).wait(10)
        produce_for(10.0)
        assert producer.flush(60) == 0
        assert producer.report.total_failed == 0, producer.report.errors
        assert producer.report.count(topic) == len(sent)
        assert len(sent) - sent_before_kill > 10_000, "producing must go on with a broker down"
        assert all(leader != victim.node for leader, _ in cluster.partitions(topic).values())

        # Every acknowledged record is read once, each key's in the order it was sent.
        deadline = time.monotonic() + 60
        while len(consumed.values) < len(sent) and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(1.0)  # anything beyond what was sent would show up now
    finally:
        stop.set()
        reader.join(30)
    assert Counter(consumed.values) == Counter(sent)
    last: dict[str, int] = {}
    for value in consumed.values:
        key, n = value.split(":")
        assert int(n) > last.get(key, -1), f"{key} read out of order"
        last[key] = int(n)

    # The broker comes back and catches up: every partition in sync on 3 brokers again.
    assert cluster.stack.up([victim.name]).started == [victim.name]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if all(len(isr) == 3 for _, isr in cluster.partitions(topic).values()):
            break
        time.sleep(1.0)
    assert all(isr == [1, 2, 3] for _, isr in cluster.partitions(topic).values())

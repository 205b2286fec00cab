"""Closing an EventProducer whose broker is away: bounded, what was queued counted failed, and
the client's threads released (they live as long as the client, which the garbage collector may
find late: its callbacks and it refer to each other)."""

from __future__ import annotations

from pathlib import Path

from featurestore.ingest import EventProducer
from featurestore.ingest import producer_config
from featurestore.kafka_connection import KafkaConnection
from featurestore.stack.process import wait_until
from tests.ports import free_port


def _threads() -> int:
    return sum(1 for _ in Path("/proc/self/task").iterdir())


def test_closing_with_the_broker_away_purges_what_is_queued_and_ends_the_clients_threads() -> None:
    before = _threads()
    producer = EventProducer(producer_config(KafkaConnection(f"127.0.0.1:{free_port()}")))
    for i in range(3):
        producer.produce("nowhere", b"value", key=f"k{i}".encode())
    assert _threads() > before  # librdkafka's own

    assert producer.close(timeout_s=0.5) == 3
    assert producer.report.total_failed == 3
    assert producer.report.count("nowhere") == 0
    assert wait_until(lambda: _threads() <= before, 10), (before, _threads())
    assert producer.close(timeout_s=0.5) == 0  # once only

"""A Kafka broker killed with SIGKILL comes back with its data on the next start."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import psutil
import pytest
from confluent_kafka import Consumer
from confluent_kafka import Producer
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient

from featurestore.topics import TopicSpec
from featurestore.topics import ensure_topics
from tests.own_stack import own_stack
from tests.ports import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_kafka_recovers_after_sigkill(tmp_path: Path) -> None:
    # An isolated broker of its own (own data folder and ports), so the shared stack is untouched.
    env = {
        "FEATURESTORE_KAFKA__PORT": str(free_port()),
        "FEATURESTORE_KAFKA__CONTROLLER_PORT": str(free_port()),
        "FEATURESTORE_KAFKA__HEAP": "256m",
    }
    with own_stack(tmp_path / "stack", env, ["kafka"]) as stack:
        settings = stack.settings
        topic = f"recovery-{uuid.uuid4().hex[:8]}"
        ensure_topics(AdminClient(settings.kafka.connection.admin()), [TopicSpec(topic, 1)])
        producer = Producer(settings.kafka.connection.producer(**{"acks": "all"}))
        for i in range(100):
            producer.produce(topic, key=b"k", value=str(i).encode())
        assert producer.flush(20) == 0

        pid = stack.kafka.process.pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        psutil.Process(pid).wait(10)
        assert stack.kafka.process.pid() is None

        began = time.monotonic()
        result = stack.up(["kafka"])
        assert result.started == ["kafka"], "a killed broker must be started again"
        assert time.monotonic() - began < 120

        consumer = Consumer(
            settings.kafka.connection.consumer("recovery", **{"enable.auto.commit": False})
        )
        consumer.assign([TopicPartition(topic, 0, 0)])
        values: list[int] = []
        deadline = time.monotonic() + 30
        while len(values) < 100 and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                values.append(int(msg.value() or b"-1"))
        consumer.close()
        assert values == list(range(100))
    assert stack.kafka.process.pid() is None

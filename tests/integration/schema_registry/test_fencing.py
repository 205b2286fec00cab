"""The writer's role on the registry's log is fenced by Kafka: a leader that lost it cannot
write, and what it left half-written is never read (the stack's Kafka, a topic of the test's own).

This is what keeps ids unique when a leader is not dead but only paused (a long GC, a network
partition) while another takes over: its late writes fail instead of landing beside the new
leader's.
"""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Producer

from featurestore.config import Settings
from featurestore.schema_registry.compatibility import CompatibilityLevel
from featurestore.schema_registry.errors import NotLeaderError
from featurestore.schema_registry.kafka_log import KafkaRecordLog
from featurestore.schema_registry.records import ConfigEntry
from featurestore.schema_registry.records import ConfigKey
from featurestore.schema_registry.records import LeaderEntry
from featurestore.schema_registry.records import LeaderKey
from featurestore.schema_registry.records import LogRecord
from featurestore.schema_registry.records import encode_record

pytestmark = pytest.mark.integration


def leader(name: str, generation: int) -> LogRecord:
    return LogRecord(LeaderKey(), LeaderEntry(f"http://{name}", name, generation))


def level(subject: str) -> LogRecord:
    return LogRecord(ConfigKey(subject), ConfigEntry(CompatibilityLevel.FULL))


def test_a_deposed_writer_is_fenced_and_its_open_transaction_never_read(stack: Settings) -> None:
    topic = f"_schemas-fence-{uuid.uuid4().hex[:8]}"
    first = KafkaRecordLog(stack.kafka.connection, topic, timeout_s=20)
    second = KafkaRecordLog(stack.kafka.connection, topic, timeout_s=20)
    first.ensure_topic()
    try:
        first.open_writer(leader("first", 1))
        first.append([level("before")])

        # A transaction left open by the writer's id, as by a leader that died mid-write.
        half = Producer(
            stack.kafka.connection.producer(**{"transactional.id": first.transactional_id})
        )
        half.init_transactions(20)  # also fences `first`, as a new leader does
        half.begin_transaction()
        key, value = encode_record(level("half-written"))
        half.produce(topic, key=key, value=value)
        assert half.flush(20) == 0

        end = second.open_writer(leader("second", 2))  # aborts the open transaction
        with pytest.raises(NotLeaderError):
            first.append([level("late")])
        assert not first.writing
        assert second.append([level("after")]) > end

        subjects = [
            record.key.subject
            for record in KafkaRecordLog(stack.kafka.connection, topic, timeout_s=20).read_all()
            if isinstance(record.key, ConfigKey)
        ]
        assert subjects == ["before", "after"]
    finally:
        first.close()
        second.close()

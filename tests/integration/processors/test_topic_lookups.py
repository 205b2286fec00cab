"""The processors' topic lookups against the live Kafka: a topic they were told to read that does
not exist is the user's setting (ConfigurationError naming it), and an existing one gives every
partition and its end offset."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from featurestore.config import Settings
from featurestore.errors import ConfigurationError
from featurestore.topics import TopicSpec
from featurestore.topics import ensure_topics
from processors.claims import topic_partitions
from processors.correction import _log_ends

pytestmark = pytest.mark.integration


def test_a_missing_topic_is_a_configuration_error_naming_it(stack: Settings) -> None:
    topic = f"it-no-such-topic-{uuid.uuid4().hex[:8]}"
    with pytest.raises(ConfigurationError, match=f"topic '{topic}' does not exist"):
        topic_partitions(stack, topic)
    with pytest.raises(ConfigurationError, match=f"topic '{topic}' does not exist"):
        _log_ends(stack, topic)


def test_an_existing_topic_gives_every_partition_and_its_end(stack: Settings) -> None:
    topic = f"it-topic-lookups-{uuid.uuid4().hex[:8]}"
    admin = AdminClient(stack.kafka.connection.admin())
    ensure_topics(admin, [TopicSpec(topic, 3)])
    try:
        producer = Producer(stack.kafka.connection.producer())
        for i in range(5):
            producer.produce(topic, b"x", partition=i % 2)  # 3 on partition 0, 2 on 1, 0 on 2
        assert producer.flush(10) == 0
        assert topic_partitions(stack, topic) == [0, 1, 2]
        assert _log_ends(stack, topic) == {0: 3, 1: 2, 2: 0}
    finally:
        admin.delete_topics([topic])[topic].result(10)

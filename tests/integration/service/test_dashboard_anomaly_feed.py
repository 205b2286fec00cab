"""The dashboard's anomaly feed outlives the gRPC server: not up yet when it starts, then restarted.

The SDK's stream gives up after a few reconnects; the feed reopens it from its last token, so every
anomaly arrives exactly once. A real server on a fixed loopback port, the stack's Kafka and
schema registry.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from featurestore_client import FeatureStoreClient
from featurestore_client import RetryPolicy

from featurestore.config import Settings
from featurestore.config import TopicSettings
from featurestore.dashboard._market import AnomalyFeed
from featurestore.service.testing import ServerThread
from featurestore.stack.process import wait_until
from tests.integration.service.anomaly_data import BASE_TIME
from tests.integration.service.anomaly_data import AnomalyProducer
from tests.integration.service.anomaly_data import anomaly_record
from tests.ports import free_port

pytestmark = pytest.mark.integration


def _produce(producer: AnomalyProducer, ids: range) -> None:
    for i in ids:
        producer.send(anomaly_record(i, "AAA", 0.9))
    producer.flush()


def test_the_feed_reconnects_after_the_sdk_gives_up_and_misses_nothing(
    stack: Settings, new_topic: Callable[..., str], start_server: Callable[..., ServerThread]
) -> None:
    topic = new_topic("anomalies")
    producer = AnomalyProducer(stack, topic)
    port = free_port()
    client = FeatureStoreClient(
        f"127.0.0.1:{port}",
        retry=RetryPolicy(max_attempts=2, initial_backoff_s=0.01, stream_reconnect_window_s=0),
    )
    history = datetime.now(UTC) - BASE_TIME + timedelta(days=1)
    feed = AnomalyFeed(client, history, RetryPolicy(initial_backoff_s=0.05, max_backoff_s=0.5))
    try:
        # nothing serves yet: the SDK's stream fails for good, the feed says so and keeps trying
        assert wait_until(lambda: feed.error is not None, 10), "the feed never reported the outage"
        _produce(producer, range(0, 10))
        server = start_server(topics=TopicSettings(anomalies=topic), port=port)

        def ids() -> list[str]:
            return [a.anomaly_id for a in feed.since(BASE_TIME)]

        assert wait_until(lambda: len(ids()) >= 10 and feed.error is None, 30), (ids(), feed.error)

        server.stop()
        assert wait_until(lambda: feed.error is not None, 10), "the feed never saw the restart"
        _produce(producer, range(10, 20))
        start_server(topics=TopicSettings(anomalies=topic), port=port)
        assert wait_until(lambda: len(ids()) >= 20 and feed.error is None, 30), (ids(), feed.error)
        assert ids() == [f"a{i:05d}" for i in range(20)]  # each once, in the log's order
    finally:
        feed.close()
        client.close()
        producer.close()

"""StreamAnomalies delivery latency: an anomaly published to Kafka -> received by subscribers.

A topic of this run's own (4 partitions) and a server child process reading it. Anomalies are
produced with the store's Avro serializer at about 100 per second, each stamped with its publish
time in ``detected_at``; subscribers (raw gRPC streams, in threads of this process) subtract it
from the time they receive the message. Measured with 1 subscriber and with 8 at once (each has
its own Kafka consumer on the server), everything on loopback, same clock.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime

import grpc

from bench.bench_online import _start_child
from bench.stats import markdown_table, percentiles_ms
from featurestore.config import Settings, TopicSettings
from featurestore.events import Anomaly, AvroSerializer, ConfluentSchemaStore
from featurestore.topics import TopicSpec, ensure_topics

COUNT, RATE = 300, 100.0
METHOD = "/featurestore.v1.AnomalyService/StreamAnomalies"


def _subscribe(
    channel: grpc.Channel, latencies: list[float], ready: threading.Event, done: threading.Event
) -> None:
    from featurestore._proto.v1 import anomaly_service_pb2

    request = anomaly_service_pb2.StreamAnomaliesRequest()
    request.latest.SetInParent()
    stream = channel.unary_stream(
        METHOD,
        request_serializer=anomaly_service_pb2.StreamAnomaliesRequest.SerializeToString,
        response_deserializer=anomaly_service_pb2.StreamAnomaliesResponse.FromString,
    )(request)
    try:
        for message in stream:
            if not message.HasField("anomaly"):
                ready.set()  # the first checkpoint: the subscription is in place
                continue
            received = time.time()
            sent = message.anomaly.detected_at.ToDatetime(tzinfo=UTC).timestamp()
            latencies.append(received - sent)
            if len(latencies) == COUNT:
                break
    finally:
        stream.cancel()
        done.set()


def _round(settings: Settings, target: str, topic: str, subscribers: int) -> list[float]:
    from confluent_kafka import Producer

    serializer = AvroSerializer.for_topic(
        ConfluentSchemaStore.from_settings(settings.schema_registry), topic, Anomaly
    )
    producer = Producer(settings.kafka.connection.producer(**{"linger.ms": 0}))
    per_subscriber: list[list[float]] = [[] for _ in range(subscribers)]
    with grpc.insecure_channel(target) as channel:
        flags = [(threading.Event(), threading.Event()) for _ in range(subscribers)]
        threads = [
            threading.Thread(target=_subscribe, args=(channel, out, ready, done), daemon=True)
            for out, (ready, done) in zip(per_subscriber, flags, strict=True)
        ]
        for thread in threads:
            thread.start()
        for ready, _ in flags:
            if not ready.wait(60):
                raise RuntimeError("a subscription did not start within 60 s")
        for i in range(COUNT):
            now = datetime.now(UTC)
            event = Anomaly(f"bench-{i}", f"S{i % 20:02d}", now, 1.0, "bench", "1", now)
            producer.produce(topic, serializer.encode(event), event.symbol.encode())
            producer.poll(0)
            time.sleep(1 / RATE)
        producer.flush(30)
        for _, done in flags:
            done.wait(60)
    return [x for out in per_subscriber for x in out]


def run(settings: Settings) -> str:
    from confluent_kafka.admin import AdminClient

    topic = f"bench-anomalies-{uuid.uuid4().hex[:8]}"
    admin = AdminClient(settings.kafka.connection.admin())
    ensure_topics(admin, [TopicSpec(topic, 4)])
    child = None
    rows = []
    try:
        child, port = _start_child(
            "serve-features",
            settings.model_copy(update={"topics": TopicSettings(anomalies=topic)}),
            "bench_unused",
        )
        for subscribers in (1, 8):
            latencies = _round(settings, f"127.0.0.1:{port}", topic, subscribers)
            pct = percentiles_ms(latencies)
            missing = subscribers * COUNT - len(latencies)
            rows.append([subscribers, len(latencies), missing, pct["p50"], pct["p90"], pct["p99"]])
    finally:
        if child is not None:
            child.terminate()
            child.wait(15)
        for future in admin.delete_topics([topic], operation_timeout=30).values():
            future.result(30)
    return "\n\n".join(
        [
            "## StreamAnomalies delivery latency",
            __doc__.strip().split("\n\n")[1].replace("\n", " "),
            markdown_table(
                ["subscribers", "received", "missing", "p50 ms", "p90 ms", "p99 ms"], rows
            ),
        ]
    )


if __name__ == "__main__":
    from featurestore.config import load_settings

    print(run(load_settings()))

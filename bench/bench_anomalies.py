"""The streaming anomaly detector on injected shapes, and StreamAnomalies delivery latency.

Detector (no servers): :func:`models.anomaly.evaluation.evaluate_shapes` on 40 seeded series of
720 steps per shape (three anomalies each), seasonal series with a 60-step cycle; beside it in
the same run, the same detector without its seasonal profile (``season=0``) and a plain rolling
z-score (mean and standard deviation of the previous 60 values, flag at |z| >= 5) -- the
"robust online z-score" it was chosen over. Throughput: rows a second through ``score_frame``
(the scorer's path) on 100 entities x 1,440 minutes.

Latency: a topic of this run's own (4 partitions) and a server child process reading it.
Anomalies are produced with the store's Avro serializer at about 100 per second, each stamped
with its publish time in ``detected_at``; subscribers (raw gRPC streams, in threads of this
process) subtract it from the time they receive the message. Measured with 1 subscriber and
with 8 at once (each has its own Kafka consumer on the server), everything on loopback, same
clock.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC
from datetime import datetime
from typing import Any

import grpc

from bench.bench_online import _start_child
from bench.stats import doc_paragraph
from bench.stats import markdown_table
from bench.stats import percentiles_ms
from featurestore.config import Settings
from featurestore.config import TopicSettings
from featurestore.events import Anomaly
from featurestore.events import AvroSerializer
from featurestore.events import ConfluentSchemaStore
from featurestore.kafka_connection import create_client
from featurestore.topics import TopicSpec
from featurestore.topics import ensure_topics
from models.anomaly.shapes import Series

COUNT, RATE = 300, 100.0
SERIES, STEPS, SEASON = 40, 720, 60
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

    with ConfluentSchemaStore.from_settings(settings.schema_registry) as store:
        serializer = AvroSerializer.for_topic(store, topic, Anomaly)
    producer = create_client(Producer, settings.kafka.connection.producer(**{"linger.ms": 0}))
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


def _rolling_zscore(one: Series, window: int = 60, threshold: float = 5.0) -> tuple[Any, Any]:
    """The baseline: |z| against the previous ``window`` values' mean and std."""
    import numpy as np
    import pandas as pd

    values = pd.Series(one.values)
    past = values.shift(1).rolling(window, min_periods=window // 2)
    z = (values - past.mean()) / past.std()
    scored = z.notna().to_numpy()
    return (np.abs(z.fillna(0.0).to_numpy()) >= threshold), scored


def _throughput() -> tuple[int, float]:
    import numpy as np
    import pandas as pd

    from models.anomaly.detector import DetectorParams
    from models.anomaly.model import DetectorConfig
    from models.anomaly.model import score_frame

    rng = np.random.default_rng(0)
    entities, minutes = 100, 1440
    rows = pd.DataFrame(
        {
            "entity": np.repeat([f"e{i}" for i in range(entities)], minutes),
            "event_timestamp": np.tile(
                pd.date_range("2024-01-01", periods=minutes, freq="min", tz="UTC"), entities
            ),
            "value_mean_1m": 100 + rng.normal(0, 1, entities * minutes),
        }
    )
    config = DetectorConfig("v", "entity", ("value_mean_1m",), DetectorParams(season=SEASON))
    began = time.perf_counter()
    scored = sum(1 for _ in score_frame(config, rows, {}))
    return len(rows), (time.perf_counter() - began) / max(scored, 1) * len(rows)


def detector_section() -> str:
    """The detector's precision and recall per shape, beside its two baselines; throughput."""
    import os

    from models.anomaly.detector import DetectorParams
    from models.anomaly.evaluation import evaluate_shapes
    from models.anomaly.evaluation import results_markdown

    kw: dict[str, Any] = {"series": SERIES, "steps": STEPS, "season": SEASON}
    detector = evaluate_shapes(DetectorParams(season=SEASON), **kw)
    flat = evaluate_shapes(DetectorParams(season=0), **kw)
    zscore = evaluate_shapes(DetectorParams(), flagger=_rolling_zscore, **kw)
    rows, seconds = _throughput()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return "\n\n".join(
        [
            "## Streaming anomaly detector: precision and recall per injected shape",
            doc_paragraph(__doc__, 1),
            "Command: `python -m bench.bench_anomalies --detector` (or `featurestore anomalies"
            f" evaluate`); load average at the end: {load}.",
            "#### The detector (Holt-Winters + CUSUM, season 60)",
            results_markdown(detector),
            "#### Baseline: the same detector without the seasonal profile (season 0)",
            results_markdown(flat),
            "#### Baseline: rolling z-score of the previous 60 values, |z| >= 5",
            results_markdown(zscore),
            f"Throughput through the scorer's path: {rows:,} rows in {seconds:.2f} s"
            f" ({rows / seconds:,.0f} rows/s, one core).",
        ]
    )


def run(settings: Settings) -> str:
    from confluent_kafka.admin import AdminClient

    topic = f"bench-anomalies-{uuid.uuid4().hex[:8]}"
    admin = create_client(AdminClient, settings.kafka.connection.admin())
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
            detector_section(),
            "## StreamAnomalies delivery latency",
            doc_paragraph(__doc__, 2),
            markdown_table(
                ["subscribers", "received", "missing", "p50 ms", "p90 ms", "p99 ms"], rows
            ),
        ]
    )


if __name__ == "__main__":
    import sys

    if "--detector" in sys.argv:
        print(detector_section())  # no servers needed
    else:
        from featurestore.config import load_settings

        print(run(load_settings()))

"""Filtered columns: what reading one metric of a stream that carries several costs a processor.

A view of one metric reads a computed column such as ``when(name == 'cpu_load', value)``: the
decoder reads the ``name`` field of every record as the code of its text, and the engine
evaluates the column and aggregates it. This measures, in this process and without a server,
the processor's two stages per record (decoding with the records' writer schema, then every
view's engine, :func:`processors.features.process_chain`) over the same Metric records, six
ways side by side.

``rolling only``: ``metric_rolling_1m`` of ``registry/`` alone (no text read).

``+ view, plain columns``: a second view over two computed columns without a text (``value``,
``value / 1e9``), what a second view costs by itself.

``+ view, filtered columns``: the same view over ``when(name == 'cpu_load', value)`` and
``when(name == 'mem_used', value / 1e9)``, with ``name`` read from every record.

``+ changes, prev``: the filtered view with one more column, ``cpu - prev(cpu)``, and its sum
over each minute.

``+ changes, prev_nonnull``: the same with ``cpu - prev_nonnull(cpu)`` (the change since the
host's previous CPU reading, whatever came between).

``+ p95 over 5 minutes``: the last with one more aggregation, the 95th percentile of ``cpu``
over 5 minutes (the state keeps every CPU value of the window).

The difference between the second and third ways is the filter's own cost; between the fourth
and fifth, what skipping nulls costs over a plain ``prev()``; between the last two, a
percentile's. The records are Avro-encoded with the bundled ``metric.avsc`` (every field, tags
included), ``FILTERS_ENTITIES`` (500) entities reporting three metrics in turn,
``FILTERS_RECORDS`` (200,000) of them in batches of ``FILTERS_BATCH`` (10,000) in event-time
order, ``FILTERS_ROUNDS`` (7) rounds of every way, each round in its own shuffled order (the way
run before another shifts its time); the table gives the median over rounds of the
microseconds per record.
"""

from __future__ import annotations

import os
import random
import statistics
import time
from dataclasses import replace
from datetime import UTC
from datetime import datetime
from datetime import timedelta

from bench.stats import doc_paragraph
from bench.stats import markdown_table
from featurestore.config import Settings
from featurestore.definitions import FeatureView
from featurestore.definitions import stream_definitions
from featurestore.definitions.model import AggFunction
from featurestore.definitions.model import Aggregation
from featurestore.definitions.model import Feature
from featurestore.definitions.model import StreamComputation
from featurestore.definitions.model import ValueType
from featurestore.events import AvroSerializer
from featurestore.events import InMemorySchemaStore
from featurestore.events import Metric
from featurestore.events.schemas import bundled_schema
from processors.decode import EventDecoder
from processors.decode import KafkaRecords
from processors.decode import decode_records
from processors.features import PartitionFeatureState
from processors.features import ViewChain
from processors.features import compile_topic
from processors.features import process_chain

__all__ = ["run"]

OWN_STACK = True
"""No server: the harness starts none for it."""

NAMES = ("cpu_load", "mem_used", "disk_io")
MINUTE = timedelta(minutes=1)
T0 = datetime(2026, 12, 7, tzinfo=UTC)


def _ways() -> dict[str, list[FeatureView]]:
    """The views of each way, all over the metrics topic."""
    rolling = stream_definitions({"metrics": "metrics"}, "bench").view("metric_rolling_1m")
    assert rolling.stream is not None
    source = replace(rolling.stream.source, avro_schema=bundled_schema("metric").text)

    def host_view(columns: dict[str, str], percentile: bool = False) -> list[FeatureView]:
        shared = replace(source, columns=columns)
        aggregations: tuple[Aggregation, ...] = (
            Aggregation("cpu", AggFunction.MEAN, 5 * MINUTE, MINUTE, "cpu_mean_5m"),
            Aggregation("cpu", AggFunction.COUNT, MINUTE, MINUTE, "cpu_count_1m"),
            Aggregation("mem", AggFunction.LAST, 5 * MINUTE, MINUTE, "mem_last_5m"),
        )
        if "cpu_change" in columns:
            change = Aggregation("cpu_change", AggFunction.SUM, MINUTE, MINUTE, "cpu_change_1m")
            aggregations = (*aggregations, change)
        if percentile:
            p95 = Aggregation("cpu", AggFunction.P95, 5 * MINUTE, MINUTE, "cpu_p95_5m")
            aggregations = (*aggregations, p95)
        host = replace(
            rolling,
            name="host_load_1m",
            features=tuple(
                Feature(a.name, ValueType.INT64 if a.name == "cpu_count_1m" else ValueType.FLOAT64)
                for a in aggregations
            ),
            stream=StreamComputation(source=shared, aggregations=aggregations, tile=MINUTE),
        )
        assert rolling.stream is not None
        kept = replace(rolling, stream=replace(rolling.stream, source=shared))
        return [kept, host]

    filtered = {
        "cpu": "when(name == 'cpu_load', value)",
        "mem": "when(name == 'mem_used', value / 1e9)",
    }
    return {
        "rolling only": [replace(rolling, stream=replace(rolling.stream, source=source))],
        "+ view, plain columns": host_view({"cpu": "value", "mem": "value / 1e9"}),
        "+ view, filtered columns": host_view(filtered),
        "+ changes, prev": host_view({**filtered, "cpu_change": "cpu - prev(cpu)"}),
        "+ changes, prev_nonnull": host_view({**filtered, "cpu_change": "cpu - prev_nonnull(cpu)"}),
        "+ p95 over 5 minutes": host_view(
            {**filtered, "cpu_change": "cpu - prev_nonnull(cpu)"}, percentile=True
        ),
    }


def _records(
    count: int, entities: int, batch: int
) -> tuple[InMemorySchemaStore, list[KafkaRecords]]:
    store = InMemorySchemaStore()
    writer = AvroSerializer.for_topic(store, "metrics", Metric)
    batches = []
    for start in range(0, count, batch):
        metrics = [
            Metric(
                f"host-{i % entities:04d}", T0 + timedelta(milliseconds=i), float(i % 997) / 997,
                f"m:{i}", name=NAMES[(i // entities) % len(NAMES)],
            )
            for i in range(start, min(start + batch, count))
        ]  # fmt: skip
        batches.append(
            KafkaRecords.of(
                [m.entity.encode() for m in metrics],
                [writer.encode(m) for m in metrics],
                [0] * len(metrics),
                list(range(start, start + len(metrics))),
                [int(m.event_time.timestamp() * 1000) for m in metrics],
            )
        )
    return store, batches


def _round(
    store: InMemorySchemaStore, batches: list[KafkaRecords], views: list[FeatureView]
) -> tuple[float, float]:
    """Seconds decoding and seconds in the engine, over every batch."""
    plan = compile_topic(views, join_key="entity")
    decoder = EventDecoder(store, plan.source)
    run, states = ViewChain((plan,)), [PartitionFeatureState()]
    decode_s = engine_s = 0.0
    for records in batches:
        began = time.perf_counter()
        decoded = decode_records(records, decoder, plan.source)
        decoded_at = time.perf_counter()
        process_chain(run, states, decoded.events)
        decode_s += decoded_at - began
        engine_s += time.perf_counter() - decoded_at
        assert not decoded.dead
    return decode_s, engine_s


def run(settings: Settings | None = None) -> str:
    """Measure the ways in turn and write the section."""
    del settings  # no server
    count = int(os.environ.get("FILTERS_RECORDS", "200000"))
    entities = int(os.environ.get("FILTERS_ENTITIES", "500"))
    batch = int(os.environ.get("FILTERS_BATCH", "10000"))
    rounds = int(os.environ.get("FILTERS_ROUNDS", "7"))
    store, batches = _records(count, entities, batch)
    ways = _ways()
    timings: dict[str, list[tuple[float, float]]] = {name: [] for name in ways}
    order = random.Random(7)
    for _ in range(rounds):
        # Each round in its own order: which way runs after which shifts a way's time by up
        # to 0.8 µs per record here (allocator and cache state), more than some differences.
        for name in order.sample(list(ways), len(ways)):
            timings[name].append(_round(store, batches, ways[name]))
    rows = []
    base = statistics.median(d + e for d, e in timings["+ view, plain columns"])
    for name, runs in timings.items():
        decode = statistics.median(d for d, _ in runs) / count * 1e6
        engine = statistics.median(e for _, e in runs) / count * 1e6
        total = statistics.median(d + e for d, e in runs)
        rows.append(
            (name, f"{decode:.2f}", f"{engine:.2f}", f"{total / count * 1e6:.2f}",
             f"{total / base:.2f}x")
        )  # fmt: skip
    table = markdown_table(
        ["way", "decode µs/record", "engine µs/record", "total µs/record", "vs plain columns"],
        rows,
    )
    ways_list = "\n".join(f"- {doc_paragraph(__doc__, n)}" for n in (2, 3, 4, 5, 6, 7))
    return "\n\n".join(
        [
            doc_paragraph(__doc__, 1),
            ways_list,
            doc_paragraph(__doc__, 8),
            f"{count:,} records, {entities} entities, batches of {batch:,}, median of {rounds}"
            f" rounds:",
            table,
        ]
    )


if __name__ == "__main__":
    print(run())

"""A view of one metric of a stream that carries several: texts compared in computed columns.

Metric events of two names (and others, a non-ASCII one among them, which the columnar reader
leaves to fastavro) are encoded with the bundled schema, decoded by the processors' decoder,
and computed by the engine; the oracle computes the same views from the events' texts. The
columns ``when(name == 'cpu_load', value)`` and the like must keep each view to its metric.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from featurestore.definitions.model import AggFunction
from featurestore.definitions.model import Aggregation
from featurestore.definitions.model import Definitions
from featurestore.definitions.model import Entity
from featurestore.definitions.model import Feature
from featurestore.definitions.model import FeatureView
from featurestore.definitions.model import SourceTable
from featurestore.definitions.model import StreamComputation
from featurestore.definitions.model import StreamSource
from featurestore.definitions.model import ValueType
from featurestore.errors import ConfigurationError
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
from processors.features.frame import compute_frame
from tests.unit.processors.oracle import SourceEvent
from tests.unit.processors.oracle import compute_features

T0 = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
SCHEMA = bundled_schema("metric").text
COLUMNS = {
    "cpu": "when(name == 'cpu_load', value)",
    "mem": "when('mem_used' == name, value / 1024)",
    "other": "when(name != 'cpu_load' and name != 'mem_used', 1)",
    "hot": "name == 'cpu_load' and value > 0.8",
    "cpu_change": "cpu - prev_nonnull(cpu)",
}
NAMES = ("cpu_load", "mem_used", "disk_io", "cpu_lóad")  # the last is read one by one


def _source() -> StreamSource:
    return StreamSource(
        name="metrics",
        topic="metrics",
        timestamp_field="event_time",
        entity_field="entity",
        watermark_delay=timedelta(seconds=5),
        id_field="metric_id",
        columns=COLUMNS,
        avro_schema=SCHEMA,
    )


def _view(name: str, aggregations: list[Aggregation]) -> FeatureView:
    return FeatureView(
        name=name,
        entities=("host",),
        features=tuple(
            Feature(
                a.name, ValueType.INT64 if a.function is AggFunction.COUNT else ValueType.FLOAT64
            )
            for a in aggregations
        ),
        ttl=timedelta(0),
        source=SourceTable(name),
        stream=StreamComputation(source=_source(), aggregations=tuple(aggregations), tile=MINUTE),
    )


VIEWS = [
    _view(
        "cpu_1m",
        [
            Aggregation("cpu", AggFunction.COUNT, MINUTE, MINUTE, "cpu_count_1m"),
            Aggregation("cpu", AggFunction.MEAN, MINUTE, MINUTE, "cpu_mean_1m"),
            Aggregation("cpu", AggFunction.MAX, 5 * MINUTE, MINUTE, "cpu_max_5m"),
            Aggregation("hot", AggFunction.SUM, 5 * MINUTE, MINUTE, "cpu_hot_5m"),
            Aggregation("cpu_change", AggFunction.SUM, MINUTE, MINUTE, "cpu_change_1m"),
            Aggregation("cpu_change", AggFunction.COUNT, MINUTE, MINUTE, "cpu_changes_1m"),
        ],
    ),
    _view(
        "mem_1m",
        [
            Aggregation("mem", AggFunction.LAST, MINUTE, MINUTE, "mem_last_1m"),
            Aggregation("mem", AggFunction.COUNT, MINUTE, MINUTE, "mem_count_1m"),
            Aggregation("other", AggFunction.SUM, MINUTE, MINUTE, "other_1m"),
        ],
    ),
]


def _metrics(n: int = 400, seed: int = 7) -> list[Metric]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        at = T0 + timedelta(seconds=float(np.round(i * 2.5 + rng.uniform(0, 2), 3)))
        name = NAMES[int(rng.choice(4, p=[0.45, 0.35, 0.15, 0.05]))]
        value = float(np.round(rng.uniform(0, 1) if name != "mem_used" else rng.uniform(0, 8e6), 4))
        out.append(Metric(f"h{i % 3}", at, value, f"id-{i}", name=name))
    return out


def _oracle_rows(
    metrics: list[Metric],
) -> dict[str, dict[tuple[str, int], dict[str, float | None]]]:
    events = [
        SourceEvent(
            m.entity, int(m.event_time.timestamp() * 1e6), 1_000 + i, 0, i, m.metric_id,
            {"value": m.value, "name": m.name},
        )
        for i, m in enumerate(metrics)
    ]  # fmt: skip
    result = compute_features(VIEWS, events)
    return {v: {k: dict(r.values) for k, r in rows.items()} for v, rows in result.rows.items()}


def _same(got: object, want: float | None) -> bool:
    if want is None:
        return got is None or bool(pd.isna(got))
    return got is not None and float(got) == pytest.approx(want, rel=1e-12)  # type: ignore[arg-type]


def _decoded_batches(
    metrics: list[Metric], size: int
) -> tuple[list[KafkaRecords], InMemorySchemaStore]:
    """``metrics`` as Kafka records of one partition, ``size`` records a batch."""
    store = InMemorySchemaStore()
    store.register("metrics-value", SCHEMA)
    writer = AvroSerializer.for_topic(store, "metrics", Metric)
    batches = []
    for at in range(0, len(metrics), size):
        chunk = metrics[at : at + size]
        offsets = list(range(at, at + len(chunk)))
        batches.append(
            KafkaRecords.of(
                [m.entity.encode() for m in chunk],
                [writer.encode(m) for m in chunk],
                [0] * len(chunk),
                offsets,
                [1_000 + o for o in offsets],
            )
        )
    return batches, store


@pytest.mark.parametrize("batch_size", [400, 37])
def test_decoded_metrics_give_each_view_its_own_metric(batch_size: int) -> None:
    """All in one batch, or in batches across which ``prev_nonnull`` reads the state."""
    metrics = _metrics()
    batches, store = _decoded_batches(metrics, batch_size)
    plan = compile_topic(VIEWS, join_key="host")
    assert dict(plan.source.texts) == {"name": ("cpu_load", "mem_used")}
    run = ViewChain((plan,))
    states = [PartitionFeatureState()]
    outputs = []
    codes: list[float] = []
    for records in batches:
        decoded = decode_records(records, EventDecoder(store, plan.source), plan.source)
        assert decoded.dead == []
        codes.extend(decoded.events.fields["name"].tolist())
        outputs.append(process_chain(run, states, decoded.events))
    assert {NAMES[0]: 0.0, NAMES[1]: 1.0, NAMES[2]: -1.0, NAMES[3]: -1.0} == {
        m.name: float(c) for m, c in zip(metrics, codes, strict=True)
    }
    want = _oracle_rows(metrics)
    for view in VIEWS:
        got: dict[tuple[str, int], dict[str, object]] = {}
        for out in outputs:
            rows = out.rows.get(view.name)
            if rows is None:
                continue
            for r in range(len(rows["event_us"])):
                got[(str(rows["entity"][r]), int(rows["event_us"][r]))] = {
                    f: rows[f][r] for f in view.feature_names
                }
        assert got.keys() == want[view.name].keys(), view.name
        for key, values in want[view.name].items():
            for feature, value in values.items():
                assert _same(got[key][feature], value), (view.name, key, feature)
    cpu = want["cpu_1m"]
    closed = max(t for _, t in cpu)  # the minutes up to the last row's are closed
    assert sum(v["cpu_count_1m"] or 0 for v in cpu.values()) == sum(
        m.name == "cpu_load" and m.event_time.timestamp() * 1e6 < closed for m in metrics
    )  # every cpu_load observation of a closed minute counted once, nothing else
    assert any(v["cpu_hot_5m"] for v in cpu.values())
    # Every cpu_load observation after a host's first has a change, whatever came between.
    assert sum(v["cpu_changes_1m"] or 0 for v in cpu.values()) == sum(
        m.name == "cpu_load" and m.event_time.timestamp() * 1e6 < closed for m in metrics
    ) - len({m.entity for m in metrics if m.name == "cpu_load"})


def test_a_frame_of_metrics_computes_what_the_stream_does() -> None:
    metrics = _metrics(120, seed=3)
    frame = pd.DataFrame(
        {
            "entity": [m.entity for m in metrics],
            "event_time": [m.event_time for m in metrics],
            "value": [m.value for m in metrics],
            "name": [m.name for m in metrics],
            "metric_id": [m.metric_id for m in metrics],
        }
    )
    definitions = Definitions(
        project="p",
        entities=(Entity("host", "host"),),
        views=tuple(VIEWS),
        services=(),
    )
    frames = compute_frame(definitions, frame, complete=False)
    want = _oracle_rows(metrics)
    rows = frames["mem_1m"]
    assert len(rows) == len(want["mem_1m"])
    for r in rows.to_dict("records"):
        key = (r["host"], int(r["event_timestamp"].timestamp() * 1e6))
        assert _same(r["mem_count_1m"], want["mem_1m"][key]["mem_count_1m"])
        assert _same(r["mem_last_1m"], want["mem_1m"][key]["mem_last_1m"])
    # A frame of decoded events (a correction reads the log so) holds the codes: the same rows.
    source = compile_topic(VIEWS, join_key="host").source
    coded = frame.assign(name=source.text_codes("name", frame["name"].tolist()))
    again = compute_frame(definitions, coded, complete=False)
    for view in VIEWS:
        pd.testing.assert_frame_equal(
            again[view.name].drop(columns="created_timestamp"),
            frames[view.name].drop(columns="created_timestamp"),
        )


def test_a_derived_feature_does_not_compare_texts() -> None:
    view = _view("d", [Aggregation("cpu", AggFunction.MEAN, MINUTE, MINUTE, "cpu_mean_1m")])
    assert view.stream is not None
    stream = StreamComputation(
        source=view.stream.source, aggregations=view.stream.aggregations, tile=MINUTE,
        derived={"odd": "cpu_mean_1m == 'x'"},
    )  # fmt: skip
    bad = FeatureView(
        name="d", entities=("host",),
        features=(Feature("cpu_mean_1m"), Feature("odd")), ttl=timedelta(0),
        source=SourceTable("d"), stream=stream,
    )  # fmt: skip
    with pytest.raises(ConfigurationError, match="compares 'cpu_mean_1m' with a text"):
        compile_topic([bad], join_key="host")


def test_a_frame_without_a_field_the_views_read_is_refused_naming_it() -> None:
    from featurestore.errors import ValidationError

    frame = pd.DataFrame({"entity": ["h"], "event_time": [T0], "value": [1.0], "metric_id": ["a"]})
    definitions = Definitions(
        project="p", entities=(Entity("host", "host"),), views=tuple(VIEWS), services=()
    )
    with pytest.raises(ValidationError, match="the events have no column 'name', which the views"):
        compute_frame(definitions, frame)


def test_texts_are_coded_alike_read_many_at_a_time_or_one_by_one() -> None:
    """Texts that are prefixes of each other, one byte apart, empty or not ASCII, and a null:
    the columnar reader's byte comparison gives the codes of the texts themselves."""
    from featurestore.events.codec import METRIC_CODEC
    from featurestore.events.schemas import parse_schema_text

    texts = ["", "cpu", "cpu_load", "cpu_loaf", "é"]
    column = " or ".join(f"name == '{t}'" for t in texts)
    source = replace(_source(), columns={"any": f"when({column}, value)"})
    view = _view("v", [Aggregation("any", AggFunction.COUNT, MINUTE, MINUTE, "n")])
    assert view.stream is not None
    plan = compile_topic([replace(view, stream=replace(view.stream, source=source))], "host")
    assert dict(plan.source.texts) == {"name": tuple(sorted(texts))}
    store = InMemorySchemaStore()
    writer = AvroSerializer.for_topic(store, "metrics", Metric)
    raw = json.loads(SCHEMA)
    for f in raw["fields"]:
        if f["name"] == "name":
            f["type"], f["default"] = ["null", "string"], None
    nullable = parse_schema_text(json.dumps(raw))
    nullable_writer = AvroSerializer(
        METRIC_CODEC, nullable, store.register("metrics-value", nullable.text)
    )
    names = ["", "cpu", "cpu_load", "cpu_loa", "cpu_loaf", "cpu_load2", "é", "x", "cpu_loae"]
    metrics = [
        Metric("h", T0 + timedelta(seconds=i), 1.0, f"id-{i}", name=n) for i, n in enumerate(names)
    ]
    values = [writer.encode(m) for m in metrics]
    null = Metric("h", T0 + timedelta(seconds=len(names)), 1.0, "id-null")
    values.append(nullable_writer.encode_wire({**METRIC_CODEC.to_wire(null), "name": None}))
    n = len(values)
    records = KafkaRecords.of([b"h"] * n, values, [0] * n, list(range(n)), [1_000] * n)
    decoded = decode_records(records, EventDecoder(store, plan.source), plan.source)
    assert decoded.dead == []
    want = plan.source.text_codes("name", [*names, None])
    np.testing.assert_array_equal(decoded.events.fields["name"], want)
    assert want[names.index("cpu_load")] == sorted(texts).index("cpu_load")
    assert want[names.index("é")] == sorted(texts).index("é")  # read one by one


def test_a_column_that_does_not_parse_is_named_by_the_plan() -> None:
    source = replace(_source(), columns={**COLUMNS, "bad": "when(name == 'cpu', )"})
    view = _view("v", [Aggregation("cpu", AggFunction.COUNT, MINUTE, MINUTE, "n")])
    assert view.stream is not None
    bad = replace(view, stream=replace(view.stream, source=source))
    with pytest.raises(ConfigurationError, match=r"^source 'metrics' column 'bad': cannot parse"):
        compile_topic([bad], "host")

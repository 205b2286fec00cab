"""PredictionLog records written column-wise: the same bytes as fastavro's serializer."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import numpy as np
import pytest

from featurestore.events import AvroDeserializer
from featurestore.events import AvroSerializer
from featurestore.events import InMemorySchemaStore
from featurestore.events import to_micros
from featurestore.events.model import PredictionLog
from featurestore.prediction_log.encoding import PredictionLogEncoder
from featurestore.prediction_log.encoding import PredictionRows
from featurestore.prediction_log.encoding import avro_long

T0 = datetime(2026, 12, 2, 15, 0, 0, 123456, tzinfo=UTC)
NAMES = ("bars_1m:close", "rolling_1m:vwap_5m", "bars_1m:volume")


def _events(rows: PredictionRows, model: tuple[str, str]) -> list[PredictionLog]:
    """The events the rows describe, built the slow way."""
    out = []
    for i, request_id in enumerate(rows.request_ids):
        at = rows.feature_times[i]
        out.append(
            PredictionLog(
                request_id=request_id,
                model_name=model[0],
                model_version=model[1],
                entity={
                    k: str(v) for k, v in zip(rows.join_keys, rows.entity_values[i], strict=True)
                },
                prediction=float(rows.scores[i]),
                request_time=T0,
                response_time=T0 + timedelta(microseconds=rows.response_time - rows.request_time),
                features={
                    name: float(rows.values[i, j]) if rows.valid[i, j] else None
                    for j, name in enumerate(NAMES)
                },
                feature_time=None
                if at is None
                else T0 + timedelta(microseconds=at - to_micros(T0)),
            )
        )
    return out


def _rows(valid: np.ndarray, join_keys: tuple[str, ...], entities: list[tuple[object, ...]]):
    n = len(entities)
    rng = np.random.default_rng(7)
    values = rng.normal(size=(n, len(NAMES))) * 1e3
    values[~valid] = np.nan
    scores = rng.random(n)
    scores[-1:] = np.nan  # a model may answer NaN (a sequence too short)
    start = to_micros(T0)
    return PredictionRows(
        request_ids=[f"{i:032x}" for i in range(n)],
        join_keys=join_keys,
        entity_values=entities,
        values=values,
        valid=valid,
        scores=scores,
        feature_times=[None if i % 3 == 2 else start - 60_000_000 * (i % 2) for i in range(n)],
        request_time=start,
        response_time=start + 1234,
    )


@pytest.mark.parametrize(
    ("join_keys", "entities"),
    [
        (("symbol",), [("AAPL",), ("IBM",), ("ÄÖ-ünïcode",), ("X" * 70,)]),
        (("exchange", "symbol"), [("P", "AAPL"), ("N", 7), ("Q", ""), ("P", "IBM")]),
    ],
)
@pytest.mark.parametrize("missing", [False, True])
def test_records_equal_the_serializers_bytes(join_keys, entities, missing):
    valid = np.ones((len(entities), len(NAMES)), dtype=bool)
    if missing:
        valid[0, 1] = valid[2, :] = valid[3, 0] = False
    rows = _rows(valid, join_keys, entities)
    store = InMemorySchemaStore()
    serializer = AvroSerializer.for_topic(store, "predictions", PredictionLog)
    encoder = PredictionLogEncoder(serializer.schema_id, "direction-ü", "12", NAMES)
    got = encoder.encode(rows)
    want = [serializer.encode(event) for event in _events(rows, ("direction-ü", "12"))]
    assert got == want
    decoded = [AvroDeserializer(store).decode(record) for record in got]
    assert [e.entity for e in decoded] == [  # type: ignore[union-attr]
        dict(zip(join_keys, map(str, values), strict=True)) for values in entities
    ]


def test_no_rows_and_no_features():
    store = InMemorySchemaStore()
    serializer = AvroSerializer.for_topic(store, "predictions", PredictionLog)
    assert (
        PredictionLogEncoder(serializer.schema_id, "m", "1", NAMES).encode(
            _rows(np.ones((0, 3), dtype=bool), ("symbol",), [])
        )
        == []
    )
    encoder = PredictionLogEncoder(serializer.schema_id, "m", "1", ())
    start = to_micros(T0)
    rows = PredictionRows(
        ["a" * 32], ("symbol",), [("IBM",)], np.zeros((1, 0)), np.ones((1, 0), dtype=bool),
        np.array([0.5]), [None], start, start,
    )  # fmt: skip
    event = PredictionLog("a" * 32, "m", "1", {"symbol": "IBM"}, 0.5, T0, T0, {}, None)
    assert encoder.encode(rows) == [serializer.encode(event)]


def test_values_of_the_wrong_shape_are_refused():
    encoder = PredictionLogEncoder(1, "m", "1", NAMES)
    rows = _rows(np.ones((2, 3), dtype=bool), ("symbol",), [("A",), ("B",)])
    bad = PredictionRows(**{**rows.__dict__, "values": np.zeros((2, 2))})
    with pytest.raises(ValueError, match=r"values: \(2, 2\) for 2 rows of 3 features"):
        encoder.encode(bad)


@pytest.mark.parametrize("n", [0, 1, -1, 63, -64, 64, 2**40, -(2**62)])
def test_avro_long_is_fastavros(n):
    import io

    from fastavro import schemaless_writer

    buffer = io.BytesIO()
    schemaless_writer(buffer, "long", n)
    assert avro_long(n) == buffer.getvalue()

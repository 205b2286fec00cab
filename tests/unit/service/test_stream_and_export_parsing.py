"""Pure parts of StreamAnomalies and ExportTrainingDataset: tokens, filters, requests, IPC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from featurestore._proto.v1 import dataset_service_pb2
from featurestore.errors import ValidationError
from featurestore.events import Anomaly
from featurestore.service.anomaly_stream import AnomalyFilter
from featurestore.service.arrow_ipc import IpcPieces
from featurestore.service.datasets import job_from_proto
from featurestore.service.stream_position import StreamPosition

T = datetime(2024, 5, 1, tzinfo=UTC)


def test_token_round_trip_holds_every_partition() -> None:
    position = StreamPosition("anomalies", {0: 5, 1: 0, 2: 17})
    position.advance(1, 41)
    again = StreamPosition.from_token(position.token(), "anomalies")
    assert again.next_offsets == {0: 5, 1: 42, 2: 17}


@pytest.mark.parametrize(
    "token", ["", "v1.", "v1.!!!", "v2.eyJ0IjoiYSJ9", StreamPosition("x", {0: -1}).token()]
)
def test_bad_tokens_name_the_field(token: str) -> None:
    with pytest.raises(ValidationError, match="resume_token") as info:
        StreamPosition.from_token(token, "x")
    assert info.value.field == "resume_token"


def test_token_of_another_topic_is_refused() -> None:
    with pytest.raises(ValidationError, match="'other'"):
        StreamPosition.from_token(StreamPosition("other", {0: 1}).token(), "anomalies")


def test_filter() -> None:
    anomaly = Anomaly("a", "IBM", T, 0.7, "m", "1", T)
    assert AnomalyFilter().accepts(anomaly)
    assert not AnomalyFilter(symbols=frozenset({"AAPL"})).accepts(anomaly)
    assert AnomalyFilter(min_score=0.7).accepts(anomaly)
    assert not AnomalyFilter(min_score=0.71).accepts(anomaly)
    assert not AnomalyFilter(not_before=T + timedelta(seconds=1)).accepts(anomaly)


def _grid_request(**changes: object) -> dataset_service_pb2.ExportTrainingDatasetRequest:
    request = dataset_service_pb2.ExportTrainingDatasetRequest(feature_service="svc")
    request.time_grid.symbols.extend(["A", "B"])
    request.time_grid.start_time.FromDatetime(T)
    request.time_grid.end_time.FromDatetime(T + timedelta(minutes=10))
    request.time_grid.step.FromTimedelta(timedelta(minutes=3))
    for name, value in changes.items():
        setattr(request, name, value)
    return request


def test_grid_rows() -> None:
    job = job_from_proto(_grid_request(), max_rows=100)
    table = job.entities
    assert table.column("symbol").to_pylist() == ["A"] * 4 + ["B"] * 4
    times = table.column("event_timestamp").to_pylist()
    assert times[:4] == [T + timedelta(minutes=m) for m in (0, 3, 6, 9)]
    assert job.labels is None and job.batch_rows > 0
    with pytest.raises(ValidationError, match="time_grid: 8 entity rows, more than 7"):
        job_from_proto(_grid_request(), max_rows=7)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda r: r.time_grid.step.FromTimedelta(timedelta(0)), "time_grid.step"),
        (lambda r: r.time_grid.end_time.FromDatetime(T), "time_grid.end_time"),
        (lambda r: r.time_grid.symbols.append(" "), "time_grid.symbols[2]"),
        (lambda r: r.label_horizon.FromTimedelta(timedelta(0)), "label_horizon"),
        (lambda r: setattr(r, "batch_rows", -1), "batch_rows"),
        (lambda r: r.ClearField("feature_selector"), "features"),
        (lambda r: r.features.features.extend(["bars_1m:close", "close"]), "features"),
        (lambda r: r.ClearField("entity_rows"), "entity_rows"),
        (lambda r: setattr(r, "entity_rows_arrow", b"nope"), "entity_rows_arrow"),
    ],
)
def test_bad_export_requests_name_the_field(mutate: object, field: str) -> None:
    request = _grid_request()
    mutate(request)  # type: ignore[operator]
    with pytest.raises(ValidationError) as info:
        job_from_proto(request, max_rows=100)
    assert info.value.field == field
    assert str(info.value).startswith(field)


def test_ipc_pieces_make_one_stream_and_respect_batch_rows() -> None:
    table = pa.table({"k": pa.array(["x", "y", "z"]).dictionary_encode(), "v": [1.0, 2.0, 3.0]})
    pieces = IpcPieces(table.schema, batch_rows=2)
    parts = [pieces.schema_piece()]
    rows = []
    for batch in table.to_batches():
        for data, n in pieces.batch_pieces(batch):
            parts.append(data)
            rows.append(n)
    parts.append(pieces.end_piece())
    assert rows == [2, 1]
    with pa.ipc.open_stream(b"".join(parts)) as reader:
        back = reader.read_all()
    assert back.column("k").to_pylist() == ["x", "y", "z"]
    assert back.schema.field("k").type == pa.string()

"""Pure parts of StreamAnomalies and ExportTrainingDataset: tokens, filters, requests, IPC."""

from __future__ import annotations

import base64
import re
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pyarrow as pa
import pytest

from featurestore._proto.v1 import dataset_service_pb2
from featurestore.errors import ValidationError
from featurestore.events import Anomaly
from featurestore.service.anomaly_stream import AnomalyFilter
from featurestore.service.arrow_ipc import IpcPieces
from featurestore.service.arrow_ipc import read_ipc_table
from featurestore.service.datasets import job_from_proto
from featurestore.service.stream_position import StreamPosition

T = datetime(2024, 5, 1, tzinfo=UTC)


def test_token_round_trip_holds_every_partition() -> None:
    position = StreamPosition("anomalies", {0: 5, 1: 0, 2: 17})
    position.advance(1, 41)
    again = StreamPosition.from_token(position.token(), "anomalies")
    assert again.next_offsets == {0: 5, 1: 42, 2: 17}


def _b64_token(payload: bytes) -> str:
    return "v1." + base64.urlsafe_b64encode(payload).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "token",
    [
        "",
        "v1.",
        "v1.!!!",
        "v2.eyJ0IjoiYSJ9",
        StreamPosition("x", {0: -1}).token(),
        StreamPosition("x", {0: 2**63}).token(),
        StreamPosition("x", {2**31: 0}).token(),
        _b64_token(b"[" * 1500 + b"]" * 1500),  # deeper than json's recursion limit
    ],
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


def test_grid_step_longer_than_int64_microseconds_is_one_row_a_symbol() -> None:
    request = _grid_request()
    request.time_grid.step.FromTimedelta(timedelta(seconds=10**13))
    table = job_from_proto(request, max_rows=100).entities
    assert table.column("event_timestamp").to_pylist() == [T, T]


def _entities(rows: int) -> pa.Table:
    return pa.table(
        {
            "symbol": pa.array(["A"] * rows, pa.string()),
            "event_timestamp": pa.array([T] * rows, pa.timestamp("us", tz="UTC")),
        }
    )


def _ipc(table: pa.Table, compression: str | None = None) -> bytes:
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression=compression)
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table, max_chunksize=40)
    return bytes(sink.getvalue().to_pybytes())


@pytest.mark.parametrize(
    ("features", "message"),
    [
        (
            ["bars_1m:close", "rolling_1m:sma_5", "bars_1m:close"],
            "features[2]: 'bars_1m:close' is named twice (first at [0])",
        ),
        (["bars_1m:close", " bars_1m:close"], "features[1]: 'bars_1m:close' is named twice"),
    ],
)
def test_an_export_naming_a_feature_twice_is_refused(features: list[str], message: str) -> None:
    """It was taken silently, one column for the two names; Feast and GetOnlineFeatures refuse."""
    request = _grid_request()
    request.features.features.extend(features)
    with pytest.raises(ValidationError, match=f"^{re.escape(message)}"):
        job_from_proto(request, max_rows=100)


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
        (lambda r: setattr(r, "entity_rows_arrow", _ipc(_entities(101))), "entity_rows_arrow"),
        (lambda r: setattr(r, "entity_rows_arrow", _ipc(_entities(0))), "entity_rows_arrow"),
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


@pytest.mark.parametrize("compression", [None, "lz4", "zstd"])
def test_entity_rows_arrow_is_read_whole_and_checked_before_decoding(
    compression: str | None,
) -> None:
    entities = _entities(100)
    assert read_ipc_table(_ipc(entities, compression), "rows", max_rows=100).equals(entities)
    with pytest.raises(ValidationError, match=r"^rows: 100 rows, more than 99$"):
        read_ipc_table(_ipc(entities, compression), "rows", max_rows=99)


def test_a_compressed_stream_that_decodes_too_large_is_refused_undecoded() -> None:
    # 257 MiB of zeros in one cell: about 9 KB compressed. Decoded, it would be 257 MiB.
    big = pa.table({"symbol": pa.array([b"\0" * (257 << 20)], pa.binary())})
    data = _ipc(big, "zstd")
    del big
    assert len(data) < 100_000
    with pytest.raises(ValidationError, match=r"^rows: decodes to \d+ bytes, more than 268435456"):
        read_ipc_table(data, "rows", max_rows=10)


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[:-40],  # cut short
        lambda data: data[:200] + b"\xff" * 64 + data[264:],  # metadata overwritten
        lambda data: data.replace(b"event_timestamp", b"event_timestamq"),  # harmless
    ],
)
def test_damaged_streams_are_a_validation_error_or_read(damage: object) -> None:
    data = damage(_ipc(_entities(100), "zstd"))  # type: ignore[operator]
    try:
        read_ipc_table(data, "rows", max_rows=100)
    except ValidationError as exc:
        assert exc.field == "rows"

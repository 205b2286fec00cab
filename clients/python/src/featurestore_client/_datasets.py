"""ExportTrainingDataset: the request, and the Arrow IPC pieces put back together."""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Sequence
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import TYPE_CHECKING
from typing import Any

from featurestore_client._convert import listed
from featurestore_client._proto.v1 import dataset_service_pb2

if TYPE_CHECKING:
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

__all__ = ["export_request", "read_pieces"]


def _entity_ipc(entity_rows: Any) -> bytes:
    import pyarrow as pa

    table = entity_rows
    if not isinstance(table, pa.Table):
        table = pa.Table.from_pandas(entity_rows, preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def _aware(name: str, when: datetime) -> datetime:
    if when.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")
    return when.astimezone(UTC)


def export_request(
    features: Sequence[str] | None,
    feature_service: str | None,
    entity_rows: Any,
    grid: tuple[Sequence[str], datetime, datetime, timedelta] | None,
    label_horizon: timedelta | None,
    batch_rows: int,
    full_feature_names: bool,
) -> dataset_service_pb2.ExportTrainingDatasetRequest:
    """An ExportTrainingDatasetRequest."""
    request = dataset_service_pb2.ExportTrainingDatasetRequest(
        batch_rows=batch_rows, full_feature_names=full_feature_names
    )
    if feature_service is not None:
        request.feature_service = feature_service
    else:
        request.features.features.extend(listed("features", features or ()))
    if entity_rows is not None:
        request.entity_rows_arrow = _entity_ipc(entity_rows)
    elif grid is not None:
        symbols, start, end, step = grid
        request.time_grid.symbols.extend(listed("symbols", symbols))
        request.time_grid.start_time.FromDatetime(_aware("start_time", start))
        request.time_grid.end_time.FromDatetime(_aware("end_time", end))
        request.time_grid.step.FromTimedelta(step)
    if label_horizon is not None:
        request.label_horizon.FromTimedelta(label_horizon)
    return request


def read_pieces(responses: Iterable[dataset_service_pb2.ExportTrainingDatasetResponse]) -> pa.Table:
    """Concatenate the pieces into one Arrow IPC stream and read it as a table."""
    import pyarrow as pa

    data = b"".join(r.arrow_ipc for r in responses)
    with pa.ipc.open_stream(data) as reader:
        return reader.read_all()

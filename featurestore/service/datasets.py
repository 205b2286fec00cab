"""DatasetService: the point-in-time export of the offline store, streamed as Arrow IPC.

The join is :class:`featurestore.offline.PostgresOfflineStore` (its public API only); labels, when
asked for, come from the same query inside PostgreSQL (:class:`featurestore.offline.LabelSpec`:
only bars strictly after t). The offline store is built on the first call (reading the
definitions imports Feast, seconds) and kept.

Each export holds PostgreSQL connections (the store's ``parallelism``), worker threads and up to
``parallelism + 1`` chunks of rows in memory, so a server runs at most ``max_exports`` at once;
one more is refused at once with RESOURCE_EXHAUSTED (retry later), before its entity rows are
read. An export whose client cancels, passes its deadline or goes away, or that a stopping server
cancels, has its queries cancelled in PostgreSQL at once
(:meth:`featurestore.offline.postgres.JoinedBatches.cancel`), not when its chunks in flight end.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import AsyncGenerator
from collections.abc import AsyncIterator
from collections.abc import Callable
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from dataclasses import dataclass
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING
from typing import Protocol
from typing import runtime_checkable

import grpc
import numpy as np
import pyarrow as pa

from featurestore._proto.v1 import dataset_service_pb2
from featurestore._proto.v1 import dataset_service_pb2_grpc
from featurestore.config import Settings
from featurestore.definitions import Definitions
from featurestore.errors import FeatureStoreError
from featurestore.errors import ValidationError
from featurestore.offline import LabelSpec
from featurestore.offline import OfflineStore
from featurestore.offline import TrainingRequest
from featurestore.service.arrow_ipc import IpcPieces
from featurestore.service.arrow_ipc import read_ipc_table
from featurestore.service.convert import duration_from_proto
from featurestore.service.convert import timestamp_from_proto

if TYPE_CHECKING:
    from featurestore.offline import PostgresOfflineStore

__all__ = [
    "DatasetServicer",
    "ExportJob",
    "ExportsBusyError",
    "OfflineAccess",
    "job_from_proto",
]

DEFAULT_BATCH_ROWS = 10_000
_TS = "event_timestamp"


@dataclass(frozen=True)
class ExportJob:
    """One export, validated."""

    request: TrainingRequest
    entities: pa.Table
    labels: LabelSpec | None
    batch_rows: int


def _grid(grid: dataset_service_pb2.EntityTimeGrid, max_rows: int) -> pa.Table:
    if not grid.symbols:
        raise ValidationError(
            "time_grid.symbols: give at least one symbol", field="time_grid.symbols"
        )
    for i, symbol in enumerate(grid.symbols):
        if not symbol.strip():
            where = f"time_grid.symbols[{i}]"
            raise ValidationError(f"{where}: must not be empty", field=where)
    for name in ("start_time", "end_time", "step"):
        if not grid.HasField(name):
            raise ValidationError(f"time_grid.{name}: required", field=f"time_grid.{name}")
    start = timestamp_from_proto(grid.start_time, "time_grid.start_time")
    end = timestamp_from_proto(grid.end_time, "time_grid.end_time")
    step = duration_from_proto(grid.step, "time_grid.step")
    if step <= timedelta(0):
        raise ValidationError("time_grid.step: must be positive", field="time_grid.step")
    if end <= start:
        raise ValidationError(
            "time_grid.end_time: must be after time_grid.start_time", field="time_grid.end_time"
        )
    per_symbol = math.ceil((end - start) / step)
    if per_symbol * len(grid.symbols) > max_rows:
        raise ValidationError(
            f"time_grid: {per_symbol * len(grid.symbols)} entity rows, more than {max_rows}",
            field="time_grid",
        )
    start_us = int(start.timestamp() * 1_000_000)
    # A step past the end makes one row a symbol; clamped, it cannot overflow int64 microseconds.
    step_us = min(step, end - start) // timedelta(microseconds=1)
    times = start_us + step_us * np.arange(per_symbol, dtype=np.int64)
    return pa.table(
        {
            "symbol": pa.array(np.repeat(np.array(list(grid.symbols), dtype=object), per_symbol)),
            _TS: pa.array(np.tile(times, len(grid.symbols)), pa.timestamp("us", tz="UTC")),
        }
    )


def job_from_proto(
    request: dataset_service_pb2.ExportTrainingDatasetRequest, *, max_rows: int
) -> ExportJob:
    """Validate a request; ValidationError naming the field at fault."""
    selector = request.WhichOneof("feature_selector")
    if selector == "feature_service":
        if not request.feature_service:
            raise ValidationError("feature_service: must not be empty", field="feature_service")
        training = TrainingRequest(
            feature_service=request.feature_service, full_feature_names=request.full_feature_names
        )
    elif selector == "features" and request.features.features:
        training = TrainingRequest(
            features=list(request.features.features), full_feature_names=request.full_feature_names
        )
    else:
        raise ValidationError(
            "features: name at least one feature, or a feature_service", field="features"
        )
    rows = request.WhichOneof("entity_rows")
    if rows == "entity_rows_arrow":
        entities = read_ipc_table(request.entity_rows_arrow, "entity_rows_arrow", max_rows=max_rows)
        if entities.num_rows == 0:
            raise ValidationError("entity_rows_arrow: holds no rows", field="entity_rows_arrow")
    elif rows == "time_grid":
        entities = _grid(request.time_grid, max_rows)
    else:
        raise ValidationError(
            "entity_rows: give entity_rows_arrow or a time_grid", field="entity_rows"
        )
    labels = None
    if request.HasField("label_horizon"):
        horizon = duration_from_proto(request.label_horizon, "label_horizon")
        if horizon <= timedelta(0):
            raise ValidationError("label_horizon: must be positive", field="label_horizon")
        labels = LabelSpec(horizon=horizon)
        training = replace(training, labels=labels)
    if request.batch_rows < 0:
        raise ValidationError("batch_rows: must not be negative", field="batch_rows")
    return ExportJob(training, entities, labels, request.batch_rows or DEFAULT_BATCH_ROWS)


class ExportsBusyError(FeatureStoreError):
    """The server runs as many exports as it is configured for; retry later."""

    retryable = True
    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED


@runtime_checkable
class _Cancellable(Protocol):
    def cancel(self) -> None: ...


class OfflineAccess:
    """The offline store of one project, built on first use, and the bars labels are made from."""

    def __init__(
        self,
        settings: Settings,
        project: str,
        *,
        load: Callable[[Settings, str], Definitions] | None = None,
    ) -> None:
        """Build the store on first use; ``load`` reads its definitions (default: the kept ones)."""
        self._settings = settings
        self._project = project
        self._load = load
        self._definitions: Definitions | None = None
        self._store: PostgresOfflineStore | None = None
        self._lock = asyncio.Lock()

    async def store(self) -> tuple[OfflineStore, Definitions]:
        """The offline store and the definitions it joins with."""
        async with self._lock:
            if self._definitions is None:
                self._definitions = await asyncio.to_thread(self._read_definitions)
            if self._store is None:
                from featurestore.offline import PostgresOfflineStore

                self._store = PostgresOfflineStore.from_settings(self._settings, self._definitions)
            return self._store, self._definitions

    async def use(self, definitions: Definitions) -> None:
        """Join with ``definitions`` from now on (applied since); exports under way keep theirs."""
        async with self._lock:
            self._definitions = definitions
            if self._store is not None:
                self._store = self._store.with_definitions(definitions)

    async def aclose(self) -> None:
        """Close the store's kept connections (a later export opens new ones)."""
        async with self._lock:
            if self._store is not None:
                await asyncio.to_thread(self._store.close)

    def _read_definitions(self) -> Definitions:
        if self._load is not None:
            return self._load(self._settings, self._project)
        from featurestore.definitions.snapshot import cached_definitions

        # The kept definitions while the registry is unchanged: reading them through Feast
        # imports it in the server (~17 s of CPU), longer than a caller's first export waits.
        # Feast's SQLAlchemy and Feast errors are translated (featurestore.error_maps).
        return cached_definitions(self._settings, self._project)


class DatasetServicer(dataset_service_pb2_grpc.DatasetServiceServicer):
    """ExportTrainingDataset: validate, join in worker threads, stream Arrow IPC pieces."""

    def __init__(self, offline: OfflineAccess, *, max_rows: int, max_exports: int) -> None:
        """Export from ``offline``, refusing requests of more than ``max_rows`` entity rows.

        At most ``max_exports`` run at once (``service.max_concurrent_exports``); one more is
        refused (RESOURCE_EXHAUSTED).
        """
        if max_exports < 1:
            raise ValueError("max_exports must be positive")
        self._offline = offline
        self._max_rows = max_rows
        self._max_exports = max_exports
        self._running = 0

    async def ExportTrainingDataset(  # noqa: N802  (the generated base class names it)
        self,
        request: dataset_service_pb2.ExportTrainingDatasetRequest,
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[dataset_service_pb2.ExportTrainingDatasetResponse]:
        """Stream the point-in-time join of the request's entity rows as Arrow IPC pieces."""
        if self._running >= self._max_exports:
            raise ExportsBusyError(
                f"the server is running {self._running} exports, the most it runs at once;"
                " retry later"
            )
        self._running += 1
        try:
            # Closed here, not left to the collector: the slot is free once its queries are.
            async with aclosing(self._export(request)) as responses:
                async for response in responses:
                    yield response
        finally:
            self._running -= 1

    async def _export(
        self, request: dataset_service_pb2.ExportTrainingDatasetRequest
    ) -> AsyncGenerator[dataset_service_pb2.ExportTrainingDatasetResponse, None]:
        job = job_from_proto(request, max_rows=self._max_rows)
        if job.labels is not None and "symbol" not in job.entities.column_names:
            raise ValidationError(
                "label_horizon: labels need a 'symbol' column in the entity rows",
                field="label_horizon",
            )
        store, _ = await self._offline.store()
        loop = asyncio.get_running_loop()
        # One thread per export: the join generator is advanced and closed on the same thread.
        thread = ThreadPoolExecutor(1, thread_name_prefix="export")
        batches: Iterator[pa.RecordBatch] | None = None
        pieces: IpcPieces | None = None

        try:
            batches = await loop.run_in_executor(
                thread, store.iter_batches, job.entities, job.request
            )
            while True:
                batch: pa.RecordBatch | None = await loop.run_in_executor(
                    thread, next, batches, None
                )
                if batch is None:
                    break
                if pieces is None:
                    pieces = IpcPieces(batch.schema, job.batch_rows)
                    yield dataset_service_pb2.ExportTrainingDatasetResponse(
                        arrow_ipc=pieces.schema_piece()
                    )
                for data, rows in pieces.batch_pieces(batch):
                    yield dataset_service_pb2.ExportTrainingDatasetResponse(
                        arrow_ipc=data, row_count=rows
                    )
            if pieces is not None:
                yield dataset_service_pb2.ExportTrainingDatasetResponse(
                    arrow_ipc=pieces.end_piece()
                )
        except BaseException:
            # Cancelled, past its deadline, the client gone, the server stopping: the export
            # thread may be waiting for a chunk, so its queries are cancelled from another
            # thread (a round trip to PostgreSQL), not waited for here.
            if isinstance(batches, _Cancellable):
                threading.Thread(target=batches.cancel, name="export-cancel", daemon=True).start()
            raise
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                thread.submit(close)
            thread.shutdown(wait=False)

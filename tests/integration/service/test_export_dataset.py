"""ExportTrainingDataset on the real PostgreSQL: Arrow IPC pieces, grid, labels, errors."""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import Callable
from datetime import timedelta

import grpc
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from featurestore_client import FeatureStoreClient
from featurestore_client import InvalidArgumentError
from featurestore_client import NotFoundError
from featurestore_client import RetryPolicy
from featurestore_client import UnavailableError

from featurestore._proto.v1 import dataset_service_pb2
from featurestore._proto.v1 import dataset_service_pb2_grpc
from featurestore.config import PostgresSettings
from featurestore.offline import LabelSpec
from featurestore.offline import PostgresOfflineStore
from featurestore.offline import TrainingRequest
from featurestore.offline import add_forward_labels
from featurestore.service.datasets import OfflineAccess
from featurestore.service.testing import ServerThread
from tests.integration.service.offline_data import MINUTES
from tests.integration.service.offline_data import T0
from tests.integration.service.offline_data import Offline
from tests.ports import free_port

pytestmark = pytest.mark.integration

NO_RETRY = RetryPolicy(max_attempts=1)


@pytest.fixture
def server(offline: Offline, start_server: Callable[..., ServerThread]) -> ServerThread:
    # Definitions are read from the Feast registry, as in production (the project is this run's).
    access = OfflineAccess(offline.settings, offline.definitions.project)
    return start_server(offline=access)


def test_grid_with_labels_streams_the_point_in_time_join(
    server: ServerThread, offline: Offline
) -> None:
    start, end, step = (
        T0 + pd.Timedelta(minutes=5),
        T0 + pd.Timedelta(minutes=50),
        timedelta(seconds=30),
    )
    features = ["bars_1m:close", "rolling_1m:vwap_5m"]
    with FeatureStoreClient(server.target, retry=NO_RETRY, timeout_s=120) as client:
        table = client.export_training_dataset(
            features,
            symbols=["AAA", "BBB"],
            start_time=start.to_pydatetime(),
            end_time=end.to_pydatetime(),
            step=step,
            label_horizon=timedelta(minutes=5),
            batch_rows=50,
        )
    assert table.num_rows == 2 * 90
    assert table.column_names == [
        "symbol", "event_timestamp", "close", "vwap_5m", "forward_return", "direction"
    ]  # fmt: skip
    assert table.schema.field("direction").type == pa.int8()
    # The same join through the offline store's own API, and the labels' own function.
    frame = table.to_pandas()
    with PostgresOfflineStore(offline.settings.postgres.dsn, offline.definitions) as store:
        direct = store.to_pandas(
            frame[["symbol", "event_timestamp"]], TrainingRequest(features=features)
        )
    pd.testing.assert_series_equal(frame["close"], direct["close"], check_names=False)
    pd.testing.assert_series_equal(frame["vwap_5m"], direct["vwap_5m"], check_names=False)
    labels = add_forward_labels(
        frame[["symbol", "event_timestamp"]], offline.bars, LabelSpec(horizon=timedelta(minutes=5))
    )
    np.testing.assert_allclose(frame["forward_return"], labels["forward_return"], equal_nan=True)
    # The label's definition is the offline module's (add_forward_labels, compared above); here
    # only what any definition keeps: the feature at T0+10m is the bar ending then, prices rise
    # in this data so the label is positive, and direction is the return's sign.
    row = frame[(frame.symbol == "AAA") & (frame.event_timestamp == T0 + pd.Timedelta(minutes=10))]
    assert row["close"].item() == 110.0
    assert row["forward_return"].item() > 0
    assert row["direction"].item() == 1
    assert frame[frame.symbol == "BBB"]["vwap_5m"].isna().all()  # no rolling rows for BBB
    # Past the data's end the label is null: nothing after the last bar is made up.
    late = frame[frame.event_timestamp >= T0 + pd.Timedelta(minutes=MINUTES + 1)]
    assert late["forward_return"].isna().all()


def test_inline_entity_rows_feature_service_and_pieces(
    server: ServerThread, offline: Offline
) -> None:
    entity_rows = pd.DataFrame(
        {
            "symbol": ["BBB", "AAA", "ZZZ"],
            "event_timestamp": [T0 + pd.Timedelta(minutes=m) for m in (3.5, 20, 7)],
            "row_id": [10, 11, 12],
        }
    )
    with FeatureStoreClient(server.target, retry=NO_RETRY, timeout_s=120) as client:
        table = client.export_training_dataset(
            feature_service="market_features_v1",
            entity_rows=entity_rows,
            full_feature_names=True,
        )
    frame = table.to_pandas()
    assert list(frame["row_id"]) == [10, 11, 12]  # entity row order and columns kept
    assert list(frame["bars_1m__close"][:2]) == [203.0, 120.0]
    assert np.isnan(frame["bars_1m__close"][2])
    assert "rolling_1m__vwap_5m" in frame.columns

    # Raw: the first message is the schema alone; the pieces concatenate into one IPC stream.
    request = dataset_service_pb2.ExportTrainingDatasetRequest(batch_rows=1)
    request.features.features.append("bars_1m:close")
    sink = pa.BufferOutputStream()
    rows = pa.Table.from_pandas(entity_rows, preserve_index=False)
    with pa.ipc.new_stream(sink, rows.schema) as writer:
        writer.write_table(rows)
    request.entity_rows_arrow = sink.getvalue().to_pybytes()
    with grpc.insecure_channel(server.target) as channel:
        stub = dataset_service_pb2_grpc.DatasetServiceStub(channel)  # type: ignore[no-untyped-call]
        pieces = list(stub.ExportTrainingDataset(request, timeout=60))
    assert pieces[0].row_count == 0
    assert pa.ipc.read_schema(pa.py_buffer(pieces[0].arrow_ipc)).names[-1] == "close"
    assert [p.row_count for p in pieces[1:]] == [1, 1, 1, 0]
    with pa.ipc.open_stream(b"".join(p.arrow_ipc for p in pieces)) as reader:
        assert reader.read_all().num_rows == 3


def test_bad_requests_name_the_field(server: ServerThread) -> None:
    start = T0.to_pydatetime()
    with FeatureStoreClient(server.target, retry=NO_RETRY, timeout_s=120) as client:
        with pytest.raises(NotFoundError, match="no_such_feature"):
            client.export_training_dataset(
                ["bars_1m:no_such_feature"], symbols=["AAA"], start_time=start,
                end_time=start + timedelta(minutes=1), step=timedelta(seconds=30),
            )  # fmt: skip
        with pytest.raises(NotFoundError, match="no_such_service"):
            client.export_training_dataset(
                feature_service="no_such_service", symbols=["AAA"], start_time=start,
                end_time=start + timedelta(minutes=1), step=timedelta(seconds=30),
            )  # fmt: skip
        with pytest.raises(InvalidArgumentError, match=r"time_grid\.step"):
            client.export_training_dataset(
                ["bars_1m:close"], symbols=["AAA"], start_time=start,
                end_time=start + timedelta(minutes=1), step=timedelta(0),
            )  # fmt: skip
        with pytest.raises(InvalidArgumentError, match=r"time_grid\.end_time"):
            client.export_training_dataset(
                ["bars_1m:close"], symbols=["AAA"], start_time=start,
                end_time=start, step=timedelta(seconds=1),
            )  # fmt: skip
        with pytest.raises(InvalidArgumentError, match="event_timestamp"):
            client.export_training_dataset(
                ["bars_1m:close"], entity_rows=pd.DataFrame({"symbol": ["AAA"], "t": [start]})
            )
        with pytest.raises(InvalidArgumentError, match="label_horizon"):
            client.export_training_dataset(
                ["bars_1m:close"], symbols=["AAA"], start_time=start,
                end_time=start + timedelta(minutes=1), step=timedelta(seconds=30),
                label_horizon=timedelta(minutes=-1),
            )  # fmt: skip
    request = dataset_service_pb2.ExportTrainingDatasetRequest(entity_rows_arrow=b"junk")
    request.features.features.append("bars_1m:close")
    with grpc.insecure_channel(server.target) as channel:
        stub = dataset_service_pb2_grpc.DatasetServiceStub(channel)  # type: ignore[no-untyped-call]
        with pytest.raises(grpc.RpcError) as info:
            list(stub.ExportTrainingDataset(request, timeout=30))
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert (info.value.details() or "").startswith("entity_rows_arrow:")


def test_postgres_down_is_unavailable(
    offline: Offline, start_server: Callable[..., ServerThread]
) -> None:
    port = free_port()
    down = offline.settings.model_copy(update={"postgres": PostgresSettings(port=port)})
    access = OfflineAccess(down, "unused", load=lambda _s, _p: offline.definitions)
    server = start_server(offline=access)
    client = FeatureStoreClient(server.target, retry=NO_RETRY, timeout_s=30)
    with client, pytest.raises(UnavailableError, match="offline store"):
        client.export_training_dataset(
            ["bars_1m:close"],
            entity_rows=pd.DataFrame({"symbol": ["AAA"], "event_timestamp": [T0]}),
        )


def test_closing_the_offline_access_closes_the_connections_it_kept(offline: Offline) -> None:
    """The server closes its offline store when it stops: the connections kept between exports
    are closed, not left to the garbage collector ("deleted while still open")."""
    access = OfflineAccess(
        offline.settings, offline.definitions.project, load=lambda _s, _p: offline.definitions
    )
    entities = pd.DataFrame({"symbol": ["AAA"], "event_timestamp": [T0]})

    async def export_then_close(access: OfflineAccess) -> None:
        store, _ = await access.store()
        await asyncio.to_thread(
            store.to_pandas, entities, TrainingRequest(features=["bars_1m:close"])
        )
        await access.aclose()

    gc.collect()  # what earlier tests left to the collector is theirs
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        asyncio.run(export_then_close(access))
        del access
        gc.collect()
    left_open = [str(w.message) for w in caught if "still open" in str(w.message)]
    assert not left_open

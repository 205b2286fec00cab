"""Predict's idempotency key on the real Kafka, PostgreSQL, Redis and MLflow.

A call repeated with the same ``idempotency-key`` (as an SDK retries a call whose answer it never
received) answers the same prediction ids, on the row path and on the general path (inline
features); the server's prediction log writes both calls' records to Kafka, and the recorder keeps
one row per id in the predictions table. A malformed key is INVALID_ARGUMENT naming it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC
from datetime import datetime

import grpc
import psycopg
import pytest
from psycopg import sql

from featurestore._proto.v1 import prediction_service_pb2
from featurestore._proto.v1 import prediction_service_pb2_grpc
from featurestore.config import Settings
from featurestore.config import TopicSettings
from featurestore.offline.predictions import PredictionTable
from featurestore.offline.tables import table_identifier
from featurestore.online import EntityKey
from featurestore.online import FeatureRow
from featurestore.service.testing import ServerThread
from tests.integration.service.mlflow_models import RegisteredModels
from tests.integration.service.predictions_recorder import run_recorder

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)
KEY = "idempotency-key"


def _request(model: str, inline: bool) -> prediction_service_pb2.PredictRequest:
    request = prediction_service_pb2.PredictRequest(model_name=model)
    for symbol in ("AAPL", "IBM"):
        request.entities["symbol"].values.add().string_value = symbol
    if inline:  # the general path: a feature given, the others read from Redis
        request.inline_features["bars_1m:close"].values.add().double_value = 1.0
        request.inline_features["bars_1m:close"].values.add().double_value = 2.0
    return request


def _ids(
    stub: prediction_service_pb2_grpc.PredictionServiceStub,
    request: prediction_service_pb2.PredictRequest,
    key: str | None,
) -> list[str]:
    metadata = () if key is None else ((KEY, key),)
    response = stub.Predict(request, timeout=60, metadata=metadata)
    return [p.request_id for p in response.predictions]


def _table_ids(stack: Settings, table: PredictionTable) -> list[str]:
    with psycopg.connect(stack.postgres.dsn) as conn:
        rows = conn.execute(
            sql.SQL("SELECT prediction_id FROM {}").format(table_identifier(table.table))
        ).fetchall()
    return [row[0] for row in rows]


def test_a_call_repeated_with_its_key_is_one_row_per_prediction(
    stack: Settings,
    predictions_topic: str,
    prediction_table: PredictionTable,
    models: RegisteredModels,
    start_server: Callable[..., ServerThread],
    write_rows: Callable[[list[FeatureRow]], None],
) -> None:
    write_rows([
        FeatureRow("bars_1m", EntityKey.of(symbol=s), NOW, {"close": 190.0, "volume": 7.0})
        for s in ("AAPL", "IBM")
    ])  # fmt: skip
    server = start_server(topics=TopicSettings(predictions=predictions_topic))
    row_key, general_key = uuid.uuid4().hex, uuid.uuid4().hex
    with grpc.insecure_channel(server.target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)  # type: ignore[no-untyped-call]
        row_path = [_ids(stub, _request(models.name, False), row_key) for _ in range(2)]
        general = [_ids(stub, _request(models.name, True), general_key) for _ in range(2)]
        unkeyed = [_ids(stub, _request(models.name, False), None) for _ in range(2)]
    assert row_path[0] == row_path[1] and len(set(row_path[0])) == 2
    assert general[0] == general[1] and len(set(general[0])) == 2
    assert unkeyed[0] != unkeyed[1]
    server.stop()  # flushes the server's prediction log to Kafka

    # Kafka holds every call's records (12); the table one row per id (8).
    group = f"recorder-{uuid.uuid4().hex[:8]}"
    assert run_recorder(stack, predictions_topic, prediction_table, group, events=12) == 8
    expected = {*row_path[0], *general[0], *unkeyed[0], *unkeyed[1]}
    assert sorted(_table_ids(stack, prediction_table)) == sorted(expected)


@pytest.mark.parametrize(
    ("key", "says"),
    [
        ("k" * 256, "metadata idempotency-key: at most 255 characters, got 256"),
        ("", "metadata idempotency-key: must not be empty"),
    ],
    ids=["too long", "empty"],
)
def test_a_malformed_key_is_invalid_argument_naming_it(
    models: RegisteredModels, start_server: Callable[..., ServerThread], key: str, says: str
) -> None:
    server = start_server()
    with grpc.insecure_channel(server.target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)  # type: ignore[no-untyped-call]
        with pytest.raises(grpc.RpcError) as raised:
            _ids(stub, _request(models.name, False), key)
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details() == says

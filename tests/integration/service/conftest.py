"""A live server on port 0 over the stack's real Redis, with a Feast project of its own."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from featurestore.config import GrpcSettings
from featurestore.config import RedisSettings
from featurestore.config import ServiceSettings
from featurestore.config import Settings
from featurestore.config import TopicSettings
from featurestore.offline.predictions import PredictionTable
from featurestore.online import FeatureRow
from featurestore.online import RedisOnlineStore
from featurestore.online import StaticCatalog
from featurestore.online.testing import delete_project_keys
from featurestore.online.testing import market_catalog
from featurestore.service.datasets import OfflineAccess
from featurestore.service.testing import ServerThread
from featurestore.telemetry import Telemetry
from tests.integration.prediction_schema import prediction_schema
from tests.integration.service.anomaly_data import create_topic
from tests.integration.service.anomaly_data import delete_topic
from tests.integration.service.mlflow_models import RegisteredModels
from tests.integration.service.mlflow_models import delete_model
from tests.integration.service.mlflow_models import register_models
from tests.integration.service.offline_data import Offline
from tests.integration.service.offline_data import offline_tables

PREDICTION_HORIZON = timedelta(minutes=2)
"""How far ahead the model of ``models`` predicts, in the ``prediction_table`` fixture's table."""


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    """Prometheus metrics of a test's own (its server's RPC counts and latencies)."""
    telemetry = Telemetry.prometheus()
    yield telemetry
    telemetry.close()


@pytest.fixture(scope="module")
def offline(stack: Settings) -> Iterator[Offline]:
    """This module's offline tables (:func:`offline_tables`), dropped after its tests."""
    with offline_tables(stack) as tables:
        yield tables


@pytest.fixture
def catalog(stack: Settings) -> Iterator[StaticCatalog]:
    project = f"fs_svc_{uuid.uuid4().hex[:10]}"
    yield market_catalog(project)
    delete_project_keys(stack.redis, project)


@pytest.fixture
def write_rows(stack: Settings, catalog: StaticCatalog) -> Callable[[list[FeatureRow]], None]:
    def write(rows: list[FeatureRow]) -> None:
        async def main() -> None:
            store = RedisOnlineStore.from_settings(stack.redis, catalog)
            try:
                await store.write(rows)
            finally:
                await store.close()

        asyncio.run(main())

    return write


@pytest.fixture
def start_server(stack: Settings, catalog: StaticCatalog) -> Iterator[Callable[..., ServerThread]]:
    """``start_server(redis=..., topics=..., port=..., telemetry=..., **service_settings)``."""
    started: list[ServerThread] = []
    given: list[OfflineAccess] = []

    def start(
        redis: RedisSettings | None = None,
        telemetry: Any = None,
        topics: TopicSettings | None = None,
        port: int = 0,
        update: dict[str, Any] | None = None,
        offline: OfflineAccess | None = None,
        **service: Any,
    ) -> ServerThread:
        settings = stack.model_copy(
            update={
                "grpc": GrpcSettings(port=port),
                "redis": redis or stack.redis,
                "topics": topics or stack.topics,
                "service": ServiceSettings(**service),
                **(update or {}),
            }
        )
        server = ServerThread(settings, catalog, telemetry=telemetry, offline=offline)
        started.append(server)
        if offline is not None:
            given.append(offline)
        return server

    yield start
    for server in started:
        server.stop(grace_s=0)
    for offline in given:  # a server closes only the offline store it built itself
        asyncio.run(offline.aclose())


@pytest.fixture(scope="session")
def models(stack: Settings) -> Iterator[RegisteredModels]:
    """Two versions of a model registered in the stack's MLflow (alias champion -> 1).

    Registered once for the session (logging two models costs seconds, and far more on a loaded
    machine); a test that moves the alias moves it back.
    """
    registered = register_models(stack, f"fs-test-{uuid.uuid4().hex[:8]}")
    yield registered
    delete_model(stack, registered.name)


@pytest.fixture
def new_topic(stack: Settings, unique_name: Callable[[str], str]) -> Iterator[Callable[..., str]]:
    """Creates topics named after the test (``new_topic("anomalies", partitions=3)``).

    Every topic it created is deleted after the test.
    """
    created: list[str] = []

    def create(prefix: str, partitions: int = 3) -> str:
        name = unique_name(prefix)
        create_topic(stack, name, partitions)
        created.append(name)
        return name

    yield create
    for name in created:
        delete_topic(stack, name)


@pytest.fixture
def predictions_topic(new_topic: Callable[..., str]) -> str:
    """A predictions topic of the test's own, of two partitions (deleted after the test)."""
    return new_topic("predictions", partitions=2)


@pytest.fixture
def prediction_table(stack: Settings, models: RegisteredModels) -> Iterator[PredictionTable]:
    """A predictions table in a schema of the test's own (dropped after), beside the bars table
    its outcomes read (empty); ``models``' model predicts :data:`PREDICTION_HORIZON` ahead."""
    with prediction_schema(stack, "pt", {models.name: PREDICTION_HORIZON}) as table:
        yield table

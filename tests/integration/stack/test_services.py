"""The services of ``make run``: started in the background, healthy, stopped by their PID."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from featurestore.config import Settings
from featurestore.definitions import PROJECT
from featurestore.definitions.snapshot import cached_definitions
from featurestore.errors import NotFoundError
from featurestore.stack.base import Component
from featurestore.stack.base import port_open
from featurestore.stack.process import wait_until
from featurestore.stack.scorer import AnomalyScorerService
from featurestore.stack.service import GrpcService
from tests.ports import free_port

pytestmark = pytest.mark.integration


def keep_definitions(settings: Settings) -> None:
    """What a service finds when the stack applied the definitions (or after its first start).

    Read from Feast here, in the test process (which has usually imported Feast already), so
    the service starts as a restart does, without Feast's import (17 s of CPU).
    """
    with contextlib.suppress(NotFoundError):  # nothing applied: the server serves none
        cached_definitions(settings, PROJECT)


@contextlib.contextmanager
def _started(service: Component) -> Iterator[None]:
    """The service launched and healthy (its own PID) for the block, stopped after it."""
    service.prepare()
    pid = service.launch()
    try:
        healthy = wait_until(service.healthy, timeout=service.start_timeout)
        assert healthy, service.process.log_tail()
        assert service.process.pid() == pid
        yield
    finally:
        assert service.stop()


def test_grpc_service_starts_serves_health_and_stops(stack: Settings, tmp_path: Path) -> None:
    grpc_settings = stack.grpc.model_copy(update={"port": free_port()})
    settings = stack.model_copy(update={"grpc": grpc_settings, "data_dir": tmp_path})
    keep_definitions(settings)
    service = GrpcService(settings)
    assert not service.healthy()
    with _started(service):
        assert service.status().healthy
    assert service.process.pid() is None
    assert not port_open(grpc_settings.host, grpc_settings.port)


def test_scorer_service_starts_once_a_champion_exists_and_stops(
    stack: Settings, tmp_path: Path
) -> None:
    from featurestore.apply import apply_definitions
    from featurestore.definitions import stream_definitions
    from models.bootstrap import ensure_first_models

    # What `make run` does before it starts the services: the scorer reads the views from the
    # registry and needs a champion. Every stream's views: an apply removes the views it lacks.
    topics = stack.topics
    streams = {"trades": topics.trades, "quotes": topics.quotes, "metrics": topics.metrics}
    apply_definitions(stack, stream_definitions(streams))
    ensure_first_models(stack, kinds=("anomaly",))
    settings = stack.model_copy(update={"data_dir": tmp_path})
    keep_definitions(settings)
    service = AnomalyScorerService(settings)
    with _started(service):
        assert "scoring with models:/featurestore-anomaly/" in service.process.log_tail()
    assert service.process.pid() is None

"""A live server on port 0 over the in-memory online store: the service without external servers."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

import pytest

from featurestore.config import GrpcSettings
from featurestore.config import ServiceSettings
from featurestore.config import Settings
from featurestore.online import OnlineStore
from featurestore.online.testing import InMemoryOnlineStore
from featurestore.online.testing import market_catalog
from featurestore.service.testing import ServerThread


@pytest.fixture
def start_server() -> Iterator[Callable[..., ServerThread]]:
    """Starts servers (stopped at teardown): ``start_server(store=..., **service_settings)``."""
    started: list[ServerThread] = []

    def start(
        store: OnlineStore | None = None, telemetry: Any = None, **service: Any
    ) -> ServerThread:
        catalog = market_catalog()
        settings = Settings(grpc=GrpcSettings(port=0), service=ServiceSettings(**service))
        chosen = store or InMemoryOnlineStore(catalog)
        server = ServerThread(
            settings,
            catalog,
            store_factory=lambda: chosen,
            telemetry=telemetry,
            probes={},  # no backends here: health follows none
        )
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop(grace_s=0)

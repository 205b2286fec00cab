"""A second server on a port in use is refused, naming the address and the settings."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from featurestore.config import GrpcSettings
from featurestore.config import Settings
from featurestore.errors import ConfigurationError
from featurestore.online.testing import InMemoryOnlineStore
from featurestore.online.testing import market_catalog
from featurestore.service.server import create_server
from featurestore.service.testing import ServerThread


def test_a_second_server_on_a_port_in_use_is_refused(
    start_server: Callable[..., ServerThread],
) -> None:
    # gRPC's default (SO_REUSEPORT) let both bind: the second took part of the first's calls.
    first = start_server()
    catalog = market_catalog()
    settings = Settings(grpc=GrpcSettings(port=first.port))

    async def second() -> None:
        handle, _ = await create_server(
            settings, catalog, store=InMemoryOnlineStore(catalog), probes={}
        )
        await handle.stop(0)

    with pytest.raises(ConfigurationError) as info:
        asyncio.run(second())
    assert str(info.value).startswith(
        f"gRPC server: cannot listen on 127.0.0.1:{first.port} (FEATURESTORE_GRPC__HOST,"
    )

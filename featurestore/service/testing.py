"""A server on a background thread, for tests and benchmarks that use blocking clients."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from collections.abc import Coroutine
from collections.abc import Mapping
from concurrent.futures import Future
from typing import Any
from typing import TypeVar

from featurestore.config import Settings
from featurestore.online import FeatureCatalog
from featurestore.online import OnlineStore
from featurestore.service.datasets import OfflineAccess
from featurestore.service.health import Probe
from featurestore.service.server import ServiceServer
from featurestore.service.server import create_server
from featurestore.service.server import new_event_loop
from featurestore.service.telemetry import Telemetry

__all__ = ["ServerThread", "finish_loop"]

T = TypeVar("T")


class ServerThread:
    """Runs :func:`create_server` on an event loop of its own thread; ``target`` is its address."""

    def __init__(
        self,
        settings: Settings,
        catalog: FeatureCatalog,
        *,
        store_factory: Callable[[], OnlineStore] | None = None,
        telemetry: Telemetry | None = None,
        offline: OfflineAccess | None = None,
        probes: Mapping[str, Probe] | None = None,
    ) -> None:
        """Start the server on a thread of its own; returns once it serves."""
        self._loop = new_event_loop(settings.service.event_loop)
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

        async def start() -> tuple[ServiceServer, int]:
            store = store_factory() if store_factory else None
            handle, port = await create_server(
                settings, catalog, store=store, telemetry=telemetry, offline=offline,
                probes=probes,
            )  # fmt: skip
            await handle.start()
            return handle, port

        self.handle, self.port = self.run(start())
        self.target = f"{settings.grpc.host}:{self.port}"

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float = 30.0) -> T:
        """Run a coroutine on the server's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Run a coroutine on the server's loop without waiting."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def stop(self, grace_s: float | None = 1.0) -> None:
        """Stop the server gracefully, then the loop and the thread (only once)."""
        if self._loop.is_closed():
            return
        try:
            self.run(self.handle.stop(grace_s), timeout_s=(grace_s or 0) + 30)
        finally:
            try:
                self.run(finish_loop(), timeout_s=30)
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()


async def finish_loop() -> None:
    """Leave the loop as ``asyncio.run`` leaves its own before closing it.

    The tasks left are cancelled (and waited for), the async generators closed and the default
    executor shut down.
    """
    loop = asyncio.get_running_loop()
    current = asyncio.current_task()
    left = [task for task in asyncio.all_tasks() if task is not current]
    for task in left:
        task.cancel()
    await asyncio.gather(*left, return_exceptions=True)
    await loop.shutdown_asyncgens()
    await loop.shutdown_default_executor()

"""The server's health: NOT_SERVING, with the reason, while a backend it needs is away.

The server itself never stops for a backend: a call that needs one that is away fails with
UNAVAILABLE, and works again as soon as it is back (each client reconnects by itself). What
changes is what ``grpc.health.v1`` says, so that a load balancer or an operator knows:

- each service's own name is NOT_SERVING while one of *its* backends (:data:`NEEDS`) is away:
  ``FeatureService`` needs Redis; ``PredictionService`` Redis and MLflow; ``AnomalyService``
  Kafka and the registry; ``DatasetService`` PostgreSQL;
- the server as a whole (the empty name) is NOT_SERVING while any of them is away.

A Check answered NOT_SERVING carries the reasons in its trailing metadata
(``featurestore-not-serving``: ``redis: <what was seen>; ...``), since the health protocol's
reply has no field for them; the log says when each backend goes and comes back.

:class:`DependencyWatch` probes every backend each ``interval_s`` (each probe bounded by
``timeout_s``) in a task of the server's event loop. Probes are plain async callables that
raise when their backend does not answer, so tests may give their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import urllib.request
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

import grpc
from grpc_health.v1 import health
from grpc_health.v1 import health_pb2

from featurestore.config import Settings
from featurestore.kafka_connection import create_client
from featurestore.resilience import Health
from featurestore.resilience import Outage

if TYPE_CHECKING:
    import redis.asyncio

__all__ = ["NEEDS", "DependencyWatch", "Probe", "ReasonedHealthServicer", "backend_probes"]

logger = logging.getLogger(__name__)

Probe = Callable[[], Awaitable[None]]
"""Returns when its backend answers; raises (anything) when it does not."""

NEEDS: Mapping[str, tuple[str, ...]] = {
    "featurestore.v1.FeatureService": ("redis",),
    "featurestore.v1.PredictionService": ("redis", "mlflow"),
    "featurestore.v1.AnomalyService": ("kafka", "schema-registry"),
    "featurestore.v1.DatasetService": ("postgres",),
}
"""The backends each service's calls need."""

REASON_KEY = "featurestore-not-serving"
"""Trailing metadata of a NOT_SERVING Check: the backends away, with what was seen."""

_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class ReasonedHealthServicer(health.aio.HealthServicer):  # type: ignore[misc]  # untyped
    """grpc's health servicer, whose NOT_SERVING answers say why (trailing metadata)."""

    def __init__(self) -> None:
        """Start with no backend away."""
        super().__init__()
        self.health = Health()
        """The backends away now, kept by :class:`DependencyWatch`."""

    async def Check(  # noqa: N802 - gRPC's method name
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> health_pb2.HealthCheckResponse:
        """The service's status, and why when it is NOT_SERVING (trailing metadata)."""
        reply: health_pb2.HealthCheckResponse = await super().Check(request, context)
        if reply.status == _NOT_SERVING:
            reasons = self.health.reasons()
            wanted = NEEDS.get(request.service, tuple(reasons))
            text = "; ".join(f"{name}: {reasons[name]}" for name in wanted if name in reasons)
            if text:
                context.set_trailing_metadata(((REASON_KEY, text.encode("ascii", "replace")),))
        return reply


class DependencyWatch:
    """Probes the backends and keeps the health service's statuses in step with them."""

    def __init__(
        self,
        servicer: ReasonedHealthServicer,
        probes: Mapping[str, Probe],
        *,
        interval_s: float = 2.0,
        timeout_s: float = 2.0,
    ) -> None:
        """Probe ``probes`` every ``interval_s`` and set ``servicer``'s statuses."""
        self.servicer = servicer
        self.probes = dict(probes)
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def check_once(self) -> None:
        """Probe every backend once and set the statuses."""
        names = list(self.probes)
        results = await asyncio.gather(*(self._probe(name) for name in names))
        health = self.servicer.health
        for name, failure in zip(names, results, strict=True):
            if failure is None:
                health.up(name)
            else:
                health.down(Outage(name, failure))
        if self._stopping:
            return  # graceful shutdown has set NOT_SERVING everywhere: leave it so
        away = health.reasons()
        for service, needs in NEEDS.items():
            down = any(name in away for name in needs)
            await self.servicer.set(service, _NOT_SERVING if down else _SERVING)
        await self.servicer.set("", _NOT_SERVING if away else _SERVING)

    async def _probe(self, name: str) -> str | None:
        try:
            await asyncio.wait_for(self.probes[name](), self.timeout_s)
        except TimeoutError:
            return f"no answer within {self.timeout_s:g} s"
        except Exception as exc:
            return " ".join(str(exc).split())[:300] or type(exc).__name__
        return None

    async def _run(self) -> None:
        while True:
            try:
                await self.check_once()
            except Exception:  # a bug in a probe must not end the watch
                logger.exception("health probes failed")
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        """Probe in the background from now on (call on the server's loop)."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="health-watch")

    async def stop(self) -> None:
        """Stop probing."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def backend_probes(settings: Settings, timeout_s: float = 2.0) -> dict[str, Probe]:
    """A probe per backend the server's calls use, from ``settings``."""
    import psycopg
    from confluent_kafka.admin import AdminClient

    # Tried again at least every second while the brokers are away (librdkafka's backoff grows
    # to 10 s): health says SERVING soon after they are back.
    admin = create_client(
        AdminClient, settings.kafka.connection.admin(**{"reconnect.backoff.max.ms": 1000})
    )
    dsn = settings.postgres.dsn
    redis_probe = _redis_probe(settings, timeout_s)

    async def postgres_probe() -> None:
        conn = await psycopg.AsyncConnection.connect(dsn, connect_timeout=max(1, int(timeout_s)))
        await conn.close()

    async def kafka_probe() -> None:
        # One broker's answer is not enough: a topic listing needs the cluster's metadata.
        await asyncio.to_thread(admin.list_topics, timeout=timeout_s)

    def http(url: str, headers: Mapping[str, str] | None = None) -> Probe:
        async def probe() -> None:
            await asyncio.to_thread(_get, url, timeout_s, headers or {})

        return probe

    return {
        "redis": redis_probe,
        "postgres": postgres_probe,
        "kafka": kafka_probe,
        # A route that needs the credentials: a wrong password shows as the reason.
        "schema-registry": http(
            f"{settings.schema_registry.url}/subjects", settings.schema_registry.auth_header
        ),
        "mlflow": http(f"{settings.mlflow.tracking_uri}/health"),
    }


def _redis_probe(settings: Settings, timeout_s: float) -> Probe:
    """PING the server; on a cluster, some node must say ``cluster_state:ok``.

    Not only the first node of a cluster: it may be the master that died while its replica
    serves its slots. Each probe opens its connections and closes them before it returns, as the
    PostgreSQL probe does: a probe holds nothing open that the server would have to close when
    it stops (nor a caller that took one probe out of :func:`backend_probes`).

    The clients are closed by :func:`_closed`, not by ``async with``: a probe cancelled when the
    server stops must not leave a socket open after the server's loop is closed.
    """
    import redis.asyncio as aioredis

    cfg = settings.redis

    def client(host: str, port: int, **kwargs: Any) -> aioredis.Redis:
        return aioredis.Redis(
            host=host,
            port=port,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            **kwargs,
            **cfg.client_kwargs(),
        )

    if not cfg.cluster:

        async def ping() -> None:
            node = client(cfg.host, cfg.port, db=cfg.db)
            try:
                await node.ping()  # type: ignore[misc]  # redis-py types ping for both clients
            finally:
                await _closed(node)

        return ping
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    async def state(host: str, port: int) -> str:
        # No retry: a node away answers at once, not after backoffs.
        node = client(host, port, retry=Retry(NoBackoff(), 0))
        try:
            info = await node.execute_command("CLUSTER", "INFO")  # type: ignore[no-untyped-call]
        finally:
            await _closed(node)
        if isinstance(info, dict):  # parsed by redis-py
            info = f"cluster_state:{info.get('cluster_state')}"
        text = info.decode() if isinstance(info, bytes) else str(info)
        return "ok" if "cluster_state:ok" in text else "cluster_state not ok"

    async def any_node_ok() -> None:
        """The first node that says ok will do: a dead node must not hold the answer back."""
        tasks = [asyncio.ensure_future(state(*node)) for node in cfg.startup_nodes]
        seen: list[str] = []
        try:
            for done in asyncio.as_completed(tasks):
                try:
                    if await done == "ok":
                        return
                    seen.append("cluster_state not ok")
                except (OSError, aioredis.RedisError) as exc:
                    seen.append(str(exc))
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        raise ConnectionError(f"no Redis Cluster node says cluster_state:ok ({seen[0]})")

    return any_node_ok


async def _closed(node: redis.asyncio.Redis) -> None:
    """Close a redis-py client's connections, also when the probe is cancelled meanwhile.

    redis-py closes a pool's connections in the tasks of a ``gather``; a cancel that arrives
    then cancels them before they run, and the socket stays open (``async with`` is no better:
    its ``__aexit__`` closes under ``asyncio.shield``, in a task that outlives the probe). The
    close runs to its end in a task of its own, and the cancel goes on after it.
    """
    closing = asyncio.ensure_future(node.aclose())
    try:
        await asyncio.shield(closing)
    except asyncio.CancelledError:
        await closing
        raise


def _get(url: str, timeout_s: float, headers: Mapping[str, str]) -> None:
    request = urllib.request.Request(url, headers=dict(headers))
    with urllib.request.urlopen(request, timeout=timeout_s) as reply:
        reply.read()

"""The gRPC server: a testable factory (:func:`create_server`) apart from :func:`serve`.

Health (``grpc.health.v1``) and reflection are served next to the store's services. Every method
handler is wrapped once, at registration, with telemetry, authentication and error mapping
(:mod:`featurestore.service.wrapping`); the server runs no per-call interceptors.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from functools import partial
from typing import TypeVar

import grpc
from grpc_health.v1 import health
from grpc_health.v1 import health_pb2
from grpc_health.v1 import health_pb2_grpc

from featurestore._proto.v1 import anomaly_service_pb2
from featurestore._proto.v1 import anomaly_service_pb2_grpc
from featurestore._proto.v1 import dataset_service_pb2
from featurestore._proto.v1 import dataset_service_pb2_grpc
from featurestore._proto.v1 import feature_service_pb2
from featurestore._proto.v1 import prediction_service_pb2
from featurestore.config import ServiceSettings
from featurestore.config import Settings
from featurestore.definitions import Definitions
from featurestore.definitions.snapshot import KeptDefinitions
from featurestore.errors import ConfigurationError
from featurestore.events import Anomaly
from featurestore.events import ConfluentSchemaStore
from featurestore.events import PredictionLog
from featurestore.online import FeatureCatalog
from featurestore.online import OnlineStore
from featurestore.online import RedisOnlineStore
from featurestore.online.catalog import LiveCatalog
from featurestore.online.catalog import catalog_from_definitions
from featurestore.service.anomalies import AnomalyServicer
from featurestore.service.auth import TokenCheck
from featurestore.service.datasets import DatasetServicer
from featurestore.service.datasets import OfflineAccess
from featurestore.service.definitions_follow import DefinitionsFollow
from featurestore.service.features import FEATURE_SERVICE
from featurestore.service.features import FeatureServicer
from featurestore.service.features import feature_method_handlers
from featurestore.service.health import DependencyWatch
from featurestore.service.health import Probe
from featurestore.service.health import ReasonedHealthServicer
from featurestore.service.health import backend_probes
from featurestore.service.models import ServedModels
from featurestore.service.predict_read import PredictReader
from featurestore.service.prediction_log_process import PredictionLogProcess
from featurestore.service.predictions import PREDICTION_SERVICE
from featurestore.service.predictions import PredictionServicer
from featurestore.service.predictions import prediction_method_handlers
from featurestore.service.raw_features import RawFeatureReader
from featurestore.service.reflection import add_reflection
from featurestore.service.sequence_history import SequenceStates
from featurestore.service.telemetry import PredictionLogCounters
from featurestore.service.telemetry import RpcTelemetry
from featurestore.service.telemetry import Telemetry
from featurestore.service.topic_stream import TopicSubscriptions
from featurestore.service.wrapping import MethodWrapper
from featurestore.service.wrapping import WrappingRegistrar
from featurestore.telemetry import process_telemetry

__all__ = [
    "SERVICE_NAMES",
    "ServiceServer",
    "create_server",
    "keepalive_options",
    "new_event_loop",
    "run_server",
    "serve",
]

logger = logging.getLogger(__name__)

E = TypeVar("E")

SERVICE_NAMES = (
    feature_service_pb2.DESCRIPTOR.services_by_name["FeatureService"].full_name,
    prediction_service_pb2.DESCRIPTOR.services_by_name["PredictionService"].full_name,
    anomaly_service_pb2.DESCRIPTOR.services_by_name["AnomalyService"].full_name,
    dataset_service_pb2.DESCRIPTOR.services_by_name["DatasetService"].full_name,
)


@dataclass
class ServiceServer:
    """A grpc.aio server with the resources it owns, closed when it stops."""

    server: grpc.aio.Server
    health: health.aio.HealthServicer
    grace_s: float
    watch: DependencyWatch | None = None
    """Keeps the health statuses NOT_SERVING while a backend is away (:mod:`.health`)."""
    follow: DefinitionsFollow | None = None
    """Serves the definitions applied since the start (:mod:`.definitions_follow`)."""
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    """Called after the server stopped, to release backends."""
    drainers: list[Callable[[], None]] = field(default_factory=list)
    """Called when stopping begins, to end open-ended calls (streams) so that clients resume."""
    warmers: list[Callable[[], Awaitable[object]]] = field(default_factory=list)
    """Run in the background by :meth:`warm_up` (models loaded ahead of the first call)."""
    _warming: list[asyncio.Task[object]] = field(default_factory=list, init=False)

    async def start(self) -> None:
        """Start serving and report SERVING."""
        await self.server.start()
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        if self.watch is not None:
            await self.watch.check_once()  # a backend away at start: NOT_SERVING from the start
            self.watch.start()
        if self.follow is not None:
            self.follow.start()

    def warm_up(self) -> None:
        """Run the :attr:`warmers` in the background.

        ``featurestore serve`` does, once serving; the servers of tests and benchmarks load what
        their calls need.
        """
        loop = asyncio.get_running_loop()
        self._warming = [loop.create_task(_logged(warm())) for warm in self.warmers]

    async def stop(self, grace_s: float | None = None) -> None:
        """Refuse new calls, let in-flight ones finish (up to the grace period), then close."""
        for task in self._warming:
            task.cancel()
        if self.follow is not None:
            await self.follow.stop()
        if self.watch is not None:
            await self.watch.stop()
        await self.health.enter_graceful_shutdown()
        for drain in self.drainers:
            drain()
        await self.server.stop(self.grace_s if grace_s is None else grace_s)
        for close in self.closers:
            await close()

    async def wait_for_termination(self) -> None:
        """Wait until the server has stopped."""
        await self.server.wait_for_termination()


async def _logged(warm: Awaitable[object]) -> object:
    """``warm``'s result; a failure is logged, not left in a task nobody awaits."""
    try:
        return await warm
    except Exception:
        logger.exception("warming up the server failed (calls load what they need)")
        return None


def keepalive_options(service: ServiceSettings) -> list[tuple[str, int]]:
    """The server's gRPC options for pings: the clients' pings it allows, and its own."""
    timeout_ms = int(service.keepalive_timeout_s * 1000)
    return [
        # Clients ping open calls to find connections that died silently (the SDK after 30 s
        # without a frame): allow it down to every 10 s. With gRPC's default (5 min) the fourth
        # such ping on a quiet stream (the first is free, then 2 strikes are allowed) ends it
        # with GOAWAY "too many pings".
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        # And it pings them (ServiceSettings.keepalive_s); grpcio times a ping out after
        # http2.ping_timeout_ms, and stops after 2 pings without data unless told not to.
        ("grpc.keepalive_time_ms", int(service.keepalive_s * 1000)),
        ("grpc.keepalive_timeout_ms", timeout_ms),
        ("grpc.http2.ping_timeout_ms", timeout_ms),
        ("grpc.http2.max_pings_without_data", 0),
    ]


async def create_server(
    settings: Settings,
    catalog: FeatureCatalog,
    *,
    store: OnlineStore | None = None,
    telemetry: Telemetry | None = None,
    offline: OfflineAccess | None = None,
    probes: Mapping[str, Probe] | None = None,
    definitions: KeptDefinitions | None = None,
) -> tuple[ServiceServer, int]:
    """Build the server bound to ``settings.grpc`` (port 0 picks a free one); not started.

    ``definitions``: those ``catalog`` was built from, with the registry digest they were read
    at (:func:`~featurestore.definitions.snapshot.kept_definitions`). Given, the server follows
    the registry (``service.definitions_refresh_s``): what ``registry apply`` changes is served,
    online and in exports, without a restart.

    Returns the server and the port it is bound to. Backends come from ``settings``: the Redis
    online store (unless ``store`` is given), Kafka and the schema registry (anomalies, the
    prediction log), MLflow (models) and PostgreSQL (exports, of ``catalog.project``, unless
    ``offline`` is given). None of them is contacted here: a backend that is down makes only the
    calls that need it fail, with UNAVAILABLE, and health says NOT_SERVING with the reason
    (probing the backends of ``settings``, or ``probes``: an empty mapping probes nothing).
    What the server opened it closes when it stops.
    """
    service = settings.service
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", service.max_request_bytes),
            *keepalive_options(service),
            # gRPC shares a port between servers by default (SO_REUSEPORT): a second server
            # started on a port in use would take half its connections, silently. Refuse it.
            ("grpc.so_reuseport", 0),
        ]
    )
    closers: list[Callable[[], Awaitable[None]]] = []
    if telemetry is None:
        # Spans only (``serve`` passes the process's telemetry, with its metrics endpoint).
        telemetry = Telemetry.build(settings.tracing, prometheus=False, service="featurestore-grpc")
        closers.append(partial(asyncio.to_thread, telemetry.close))
    rpc_telemetry = RpcTelemetry(telemetry)
    tracer = rpc_telemetry.tracer
    wrapper = MethodWrapper(
        rpc_telemetry, TokenCheck(service.token_grants()) if service.auth else None
    )
    registrar = WrappingRegistrar(server, wrapper)

    live = None
    if definitions is not None and service.definitions_refresh_s > 0:
        catalog = live = LiveCatalog(catalog)
    online = store
    raw = None
    predict_reader = None
    if online is None:
        redis_store = RedisOnlineStore.from_settings(
            settings.redis,
            catalog,
            timeout_s=service.backend_timeout_s,
            tracer=tracer,
            cache_rows=service.online_cache_rows,
            counts=rpc_telemetry.counters.row_cache,
        )
        raw = RawFeatureReader(
            redis_store.rows,
            catalog,
            max_entities=service.max_entities,
            memo_bytes=service.online_response_memo_bytes,
            counters=rpc_telemetry.counters,
        )
        predict_reader = PredictReader(redis_store.rows, catalog)
        online = redis_store
        closers.append(redis_store.close)
    schemas = ConfluentSchemaStore.from_settings(settings.schema_registry)
    models = ServedModels(
        settings.mlflow.tracking_uri,
        alias_ttl_s=service.model_alias_ttl_s,
        timeout_s=service.backend_timeout_s,
    )
    prediction_log = PredictionLogProcess(
        settings, settings.topics.predictions, traced=tracer is not None
    )
    closers += [prediction_log.close, models.close, partial(asyncio.to_thread, schemas.close)]
    if telemetry.registry is not None:
        telemetry.registry.register(PredictionLogCounters(prediction_log))

    def subscriptions_to(topic: str, event_type: type[E], what: str) -> TopicSubscriptions[E]:
        # Capped apart: each topic serves up to max_stream_subscriptions streams.
        return TopicSubscriptions(
            settings.kafka.connection,
            topic,
            schemas,
            event_type,
            what=what,
            max_subscriptions=service.max_stream_subscriptions,
            timeout_s=max(service.backend_timeout_s, 5.0),
            tracer=tracer,
        )

    subscriptions = subscriptions_to(settings.topics.anomalies, Anomaly, "anomaly")
    prediction_subscriptions = subscriptions_to(
        settings.topics.predictions, PredictionLog, "prediction"
    )
    registrar.add_service(
        FEATURE_SERVICE,
        feature_method_handlers(
            FeatureServicer(online, catalog, max_entities=service.max_entities, raw=raw)
        ),
    )
    if offline is None:
        offline = OfflineAccess(settings, catalog.project)
        closers.append(offline.aclose)
    registrar.add_service(
        PREDICTION_SERVICE,
        prediction_method_handlers(
            PredictionServicer(
                online,
                models,
                prediction_log,
                max_entities=service.max_entities,
                metrics=telemetry.registry,
                subscriptions=prediction_subscriptions,
                reader=predict_reader,
                histories=SequenceStates(offline, settings.postgres.dsn),
                catalog=catalog,
            )
        ),
    )
    anomaly_service_pb2_grpc.add_AnomalyServiceServicer_to_server(  # type: ignore[no-untyped-call]
        AnomalyServicer(subscriptions), registrar
    )
    dataset_service_pb2_grpc.add_DatasetServiceServicer_to_server(  # type: ignore[no-untyped-call]
        DatasetServicer(
            offline,
            max_rows=service.max_export_rows,
            max_exports=service.max_concurrent_exports,
        ),
        registrar,
    )
    health_servicer = ReasonedHealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, registrar)
    add_reflection(registrar, (*SERVICE_NAMES, health.SERVICE_NAME))

    host = settings.grpc.host
    # "::" (every IPv6 and, on Linux, IPv4 address) or an IPv6 address needs brackets.
    address = f"[{host}]:{settings.grpc.port}" if ":" in host else f"{host}:{settings.grpc.port}"
    try:
        if service.tls_cert_file is not None and service.tls_key_file is not None:
            credentials = grpc.ssl_server_credentials(
                [(service.tls_key_file.read_bytes(), service.tls_cert_file.read_bytes())]
            )
            port = server.add_secure_port(address, credentials)
        else:
            port = server.add_insecure_port(address)
    except RuntimeError:  # grpcio's only word: "Failed to bind to address ..."
        for close in reversed(closers):
            await close()
        raise ConfigurationError(
            f"gRPC server: cannot listen on {address} (FEATURESTORE_GRPC__HOST,"
            " FEATURESTORE_GRPC__PORT): another process holds the port, or the address is not"
            " one of this host's"
        ) from None
    watch = DependencyWatch(health_servicer, backend_probes(settings) if probes is None else probes)
    follow = None
    if live is not None and definitions is not None:
        follow = _follow_registry(settings, definitions, live, offline, (raw, predict_reader))
    handle = ServiceServer(
        server, health_servicer, service.shutdown_grace_s, watch, follow, closers
    )
    handle.drainers += [wrapper.drain, subscriptions.drain, prediction_subscriptions.drain]
    if service.preload_champions:
        handle.warmers.append(models.preload_champions)
    return handle, port


def _follow_registry(
    settings: Settings,
    kept: KeptDefinitions,
    catalog: LiveCatalog,
    offline: OfflineAccess,
    readers: tuple[RawFeatureReader | None, PredictReader | None],
) -> DefinitionsFollow:
    """Follow the registry: new definitions replace the catalog and the export's definitions."""
    for reader in readers:
        if reader is not None:
            catalog.on_change(reader.forget_plans)

    async def use(definitions: Definitions) -> None:
        catalog.replace(catalog_from_definitions(definitions))
        await offline.use(definitions)

    return DefinitionsFollow.of(settings, kept, use)


async def serve(
    settings: Settings, catalog: FeatureCatalog, definitions: KeptDefinitions | None = None
) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully (metrics on their own port).

    ``definitions``: those ``catalog`` was built from, to follow the registry from
    (:func:`create_server`).
    """
    service = settings.service
    telemetry = process_telemetry(settings, "grpc", settings.metrics.grpc_port)
    handle, port = await create_server(
        settings, catalog, telemetry=telemetry, definitions=definitions
    )
    await handle.start()
    handle.warm_up()
    logger.info(
        "serving on %s:%d (tls=%s, bearer tokens=%s)",
        settings.grpc.host, port, service.tls, service.auth,
    )  # fmt: skip
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    logger.info("stopping: finishing in-flight calls (up to %.1f s)", service.shutdown_grace_s)
    await handle.stop()
    telemetry.close()


def new_event_loop(kind: str = "uvloop") -> asyncio.AbstractEventLoop:
    """A new event loop of the configured kind (:attr:`ServiceSettings.event_loop`).

    grpc.aio runs on any asyncio loop; on uvloop the server spends less CPU per
    GetOnlineFeatures call (figures in bench/RESULTS.md).
    """
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run_server(
    settings: Settings, catalog: FeatureCatalog, definitions: KeptDefinitions | None = None
) -> None:
    """:func:`serve` on a new event loop of the configured kind, until it stops."""
    with asyncio.Runner(loop_factory=lambda: new_event_loop(settings.service.event_loop)) as runner:
        runner.run(serve(settings, catalog, definitions))

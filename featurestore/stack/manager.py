"""Start, stop and inspect the whole local stack, in dependency order."""

from __future__ import annotations

import time
from collections.abc import Callable
from collections.abc import Collection
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace

from featurestore.config import Settings
from featurestore.config import write_stack_shape
from featurestore.errors import ConfigurationError
from featurestore.stack.base import Component
from featurestore.stack.base import ComponentStatus
from featurestore.stack.base import port_open
from featurestore.stack.base import wait_healthy
from featurestore.stack.dashboard import DashboardService
from featurestore.stack.feed import FeedOptions
from featurestore.stack.feed import MarketFeed
from featurestore.stack.kafka import KafkaServer
from featurestore.stack.kafka import kafka_nodes
from featurestore.stack.mlflow import MlflowServer
from featurestore.stack.monitor import MonitorService
from featurestore.stack.postgres import PostgresServer
from featurestore.stack.predictor import PredictionFeedService
from featurestore.stack.process import ManagedProcess
from featurestore.stack.process import recorded_processes
from featurestore.stack.processors import ProcessorService
from featurestore.stack.processors import event_processors
from featurestore.stack.prometheus import PrometheusServer
from featurestore.stack.redis import RedisServer
from featurestore.stack.redis import redis_nodes
from featurestore.stack.schema_registry import SchemaRegistryServer
from featurestore.stack.scorer import AnomalyScorerService
from featurestore.stack.service import GrpcService
from featurestore.stack.supervisor import SupervisorService
from featurestore.stack.supervisor import read_records

__all__ = ["Stack", "UpResult"]


@dataclass
class UpResult:
    """What ``Stack.up`` did."""

    started: list[str] = field(default_factory=list)
    already_running: list[str] = field(default_factory=list)
    seconds: float = 0.0


class Stack:
    """The local servers: Kafka, PostgreSQL, Redis, the schema registry, MLflow and Prometheus.

    Servers start in waves: those that need nothing else first, in parallel, then those that
    need Kafka. ``up`` is idempotent and ``down`` stops only processes this project started.
    The services that ``make run`` adds on top (the market feed, the gRPC server, a feature
    processor per event topic, which need the definitions applied to the registry first, the
    anomaly scorer and the prediction feed, which need champion models, the lag and drift
    monitor, and the dashboard)
    start with :meth:`start_services`; ``down`` and ``status`` cover them too. :meth:`supervise`
    starts the supervisor, which starts again whatever of these dies; ``down`` stops it first.
    """

    def __init__(self, settings: Settings, feed: FeedOptions | None = None) -> None:
        """Build every component from ``settings``, starting none; ``feed``: what the feed sends."""
        self.settings = settings
        self.kafka_nodes = kafka_nodes(settings)
        """The KRaft nodes: ``kafka``, and ``kafka-2`` ... with ``FEATURESTORE_KAFKA__BROKERS``."""
        self.kafka = self.kafka_nodes[0]
        self.postgres = PostgresServer(settings)
        self.redis_nodes = redis_nodes(settings)
        """The Redis servers: ``redis``, and ``redis-2`` ... for a cluster."""
        self.redis = self.redis_nodes[0]
        self.mlflow = MlflowServer(settings)
        self.schema_registry = SchemaRegistryServer(settings)
        self.prometheus = PrometheusServer(settings)
        self.waves: list[list[Component]] = [
            [self.postgres, *self.redis_nodes, *self.kafka_nodes, self.mlflow, self.prometheus],
            [self.schema_registry],
        ]
        self.feed = MarketFeed(settings, feed)
        self.grpc = GrpcService(settings)
        self.event_processors: list[ProcessorService] = event_processors(settings)
        """One per event topic (trades, quotes, metrics, and any other the applied views read:
        :meth:`follow_applied_topics`)."""
        self.processors = self.event_processors[0]
        """The trades processor (``features``), whose rows the scorer reads."""
        self.scorer = AnomalyScorerService(settings)
        self.predictor = PredictionFeedService(settings)
        """The prediction feed and the predictions table's recorder."""
        self.monitor = MonitorService(settings)
        self.dashboard = DashboardService(settings)
        """The live page; after the others, which it reads."""
        self.services: list[Component] = self._services()
        self.supervisor = SupervisorService(settings)
        """Not one of :attr:`components`: those are what it watches."""

    def _services(self) -> list[Component]:
        return [
            self.feed, self.grpc, *self.event_processors, self.scorer, self.predictor,
            self.monitor, self.dashboard,
        ]  # fmt: skip

    def follow_applied_topics(self) -> list[str]:
        """Add a processor for each topic the applied views read that has none; their names.

        An apply may add views of a topic of the user's own: it is computed by a processor of
        its own, which :meth:`start_services` then starts (and the supervisor, started after,
        watches).
        """
        known = {p.topic for p in self.event_processors}
        wanted = event_processors(self.settings)
        added = [p for p in wanted if p.topic not in known]
        self.event_processors += added
        self.services = self._services()
        return [p.name for p in added]

    @property
    def servers(self) -> list[Component]:
        """The infrastructure servers, in start order."""
        return [c for wave in self.waves for c in wave]

    @property
    def components(self) -> list[Component]:
        """Every server and service, in start order."""
        return [*self.servers, *self.services]

    @property
    def component_names(self) -> list[str]:
        """The names of every server and service, and of the supervisor."""
        return [c.name for c in [*self.components, self.supervisor]]

    def component(self, name: str) -> Component:
        """The server, service or supervisor named ``name``."""
        for component in [*self.components, self.supervisor]:
            if component.name == name:
                return component
        known = ", ".join(c.name for c in [*self.components, self.supervisor])
        raise ConfigurationError(f"unknown stack component {name!r}; known: {known}")

    def up(
        self,
        only: Iterable[str] | None = None,
        on_launch: Callable[[str], None] | None = None,
    ) -> UpResult:
        """Start every server that is not running, and wait until each is healthy.

        Args:
            only: names of the servers to start (default: all).
            on_launch: called with a server's name as soon as it is launched, so a caller can
                record what to stop even when a later server fails to start.
        """
        wanted = set(only) if only is not None else {c.name for c in self.servers}
        for component in self.components:  # a refusal before anything runs, not after half
            if component.name in wanted and component.process.pid() is None:
                component.preflight()
        write_stack_shape(self.settings)  # what later shells read: featurestore/config
        result = UpResult()
        began = time.monotonic()
        for wave in self.waves:
            launched = [c for c in wave if c.name in wanted]
            for component in launched:
                self._start(component, result, on_launch)
            self.publish_targets()
            for component in launched:
                self._wait_healthy(component)
                component.after_healthy()
        result.seconds = time.monotonic() - began
        return result

    def publish_targets(self) -> None:
        """Tell Prometheus which of the stack's processes should answer its scrapes.

        The wanted ones (started and not stopped on purpose) on their configured ports; see
        :func:`featurestore.stack.prometheus_config.write_stack_targets`.
        """
        from featurestore.stack.prometheus_config import write_stack_targets
        from featurestore.telemetry import targets_dir

        wanted = [c.name for c in self.components if c.process.wanted()]
        write_stack_targets(self.settings, wanted, targets_dir(self.settings))

    def start_services(
        self,
        only: Iterable[str] | None = None,
        on_launch: Callable[[str], None] | None = None,
    ) -> UpResult:
        """Start the services on top of the servers (feed, gRPC, processors, scorer) not running.

        Args:
            only: names of the services to start (default: all).
            on_launch: as for :meth:`up`.
        """
        wanted = set(only) if only is not None else {s.name for s in self.services}
        result = UpResult()
        began = time.monotonic()
        for service in self.services:
            if service.name in wanted and self._start(service, result, on_launch):
                self.publish_targets()
                self._wait_healthy(service)
        self.publish_targets()
        result.seconds = time.monotonic() - began
        return result

    def supervise(self, on_launch: Callable[[str], None] | None = None) -> UpResult:
        """Start the supervisor unless it runs, and wait until it supervises."""
        result = UpResult()
        began = time.monotonic()
        self._start(self.supervisor, result, on_launch)
        self._wait_healthy(self.supervisor)
        result.seconds = time.monotonic() - began
        return result

    def _start(
        self, component: Component, result: UpResult, on_launch: Callable[[str], None] | None
    ) -> bool:
        """Launch ``component`` unless it runs; True if launched.

        Under the component's lock, so that the supervisor never starts it at the same time.
        """
        with component.process.exclusive():
            pid = component.process.pid()
            if pid is not None:
                component.process.mark_wanted()  # started before the supervisor knew of it
                component.refresh(pid)
                result.already_running.append(component.name)
                return False
            self._check_port_free(component)
            component.prepare()
            component.launch()
        result.started.append(component.name)
        if on_launch is not None:
            on_launch(component.name)
        return True

    def restart_processors(self, topics: Collection[str] | None = None) -> list[str]:
        """Restart the running feature processors (of ``topics``, or all); returns the names.

        A processor reads the definitions when it starts: after ``registry apply`` a restart
        makes it compute what was applied.
        """
        running = [
            s.name for s in self.services
            if isinstance(s, ProcessorService) and s.process.pid() is not None
            and (topics is None or s.topic in topics)
        ]  # fmt: skip
        for name in running:
            self.component(name).stop()
        self.start_services(running)
        return running

    def start_new_processors(self, topics: Collection[str] | None = None) -> list[str]:
        """On a stack of services (make run's), start the processors ``topics`` lack (None: any).

        The processor of a topic an apply added (:meth:`follow_applied_topics`) starts, and the
        supervisor starts again so that it watches it. Returns the names started.
        """
        running = [p for p in self.event_processors if p.process.pid() is not None]
        if self.supervisor.process.pid() is None or not running:
            return []  # no stack of services here: `processors start` is the user's to run
        self.follow_applied_topics()
        idle = [
            p.name for p in self.event_processors
            if (topics is None or p.topic in topics) and p.process.pid() is None
        ]  # fmt: skip
        if idle:
            self.start_services(idle)
            self.supervisor.stop()
            self.supervise()
        return idle

    def others(self) -> list[ManagedProcess]:
        """The live processes of this data folder that are none of these settings' components.

        Processors started with ``processors start --name``, the Spark cluster of ``cluster
        up``, and nodes of another shape than these settings say (a shell that sets
        ``FEATURESTORE_KAFKA__BROKERS`` to other than ``stack up`` was given): each has a PID
        file and the record of its command in ``run/`` (:func:`recorded_processes`).
        """
        known = set(self.component_names)
        return [
            process
            for process in recorded_processes(self.supervisor.process.run_dir)
            if process.name not in known and process.pid() is not None
        ]

    def down(self, only: Iterable[str] | None = None) -> list[str]:
        """Stop the supervisor, then the servers and services (all, or those named).

        The supervisor goes first, so that it starts nothing again meanwhile; then, when all
        are stopped, the data folder's :meth:`others`, which use the servers; the rest go in
        reverse start order.

        Returns:
            The names of the components that were running and have been stopped.

        Raises:
            ConfigurationError: a name in ``only`` is no component's (as :meth:`component`);
                nothing was stopped.
        """
        everything = [self.supervisor, *reversed(self.components)]
        if only is not None:
            only = list(only)
            for name in only:  # an unknown name is an error, as for up, not "nothing to stop"
                self.component(name)
        wanted = set(only) if only is not None else {c.name for c in everything}
        supervisor, *rest = everything
        stopped = [supervisor.name] if supervisor.name in wanted and supervisor.stop() else []
        if only is None:
            stopped += [process.name for process in self.others() if process.stop()]
        stopped += [c.name for c in rest if c.name in wanted and c.stop()]
        self.publish_targets()
        return stopped

    def status(self) -> list[ComponentStatus]:
        """The state of every server and service, with the supervisor's records, and its own."""
        supervisor = self.supervisor.status()
        records = read_records(self.supervisor.state_file) if supervisor.healthy else {}
        statuses = [replace(c.status(), restart=records.get(c.name)) for c in self.components]
        return [*statuses, supervisor]

    def _check_port_free(self, component: Component) -> None:
        if component.name not in {c.name for c in self.servers}:
            return
        host, port = _host_port(component)
        if port and port_open(host, port):
            raise ConfigurationError(
                f"{component.name}: {host}:{port} is already in use by a process this stack did "
                f"not start; stop it or set another port (FEATURESTORE_{_env_section(component)}"
                "__PORT)"
            )

    def _wait_healthy(self, component: Component) -> None:
        wait_healthy(component)


def _env_section(component: Component) -> str:
    if isinstance(component, KafkaServer):
        return "KAFKA"
    if isinstance(component, RedisServer):
        return "REDIS"
    return component.name.upper().replace("-", "_")


def _host_port(component: Component) -> tuple[str, int]:
    if isinstance(component, KafkaServer):
        return component.settings.kafka.host, component.port
    if isinstance(component, RedisServer):
        return component.settings.redis.host, component.port
    section = getattr(component.settings, component.name.replace("-", "_"))
    return str(section.host), int(section.port)

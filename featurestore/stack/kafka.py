"""Apache Kafka 4 in KRaft mode on the machine's Java 17: one node, or a cluster of several.

The jars come from Maven (``deploy/jvm/pom.xml``, profile ``kafka``). Each node is broker and
controller at once, with its own component (``kafka``, ``kafka-2``, ``kafka-3``: data folder,
ports, PID file, health check, supervised like any server). Its log folder is formatted once:

- one node (the default) with ``--standalone``, a quorum of itself;
- ``FEATURESTORE_KAFKA__BROKERS=3``: all nodes with one cluster id and a static quorum of every
  node (``controller.quorum.voters``), so the cluster keeps a controller and every partition
  keeps a leader when any one node dies. Internal topics are then replicated 3 times, with
  2 in sync.

The cluster's id and size are kept in ``kafka/cluster.json``: a data folder formatted for one
size is refused for another, rather than started half-formed. A node killed with SIGKILL
recovers its log on the next start and catches up from the others.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import shutil
import subprocess
import time
import uuid
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from typing_extensions import override

from featurestore.config import Settings
from featurestore.errors import BackendUnavailableError
from featurestore.errors import ConfigurationError
from featurestore.kafka_connection import create_client
from featurestore.stack.base import NodeComponent
from featurestore.stack.base import port_open
from featurestore.stack.certs import Certificates
from featurestore.stack.jars import resolve_jars
from featurestore.stack.private_file import write_private
from featurestore.stack.security import local_security

__all__ = ["KafkaServer", "java_argument_file", "kafka_nodes", "new_cluster_id"]

_LOG4J2 = """\
status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = {log_dir}/server.log
appender.file.filePattern = {log_dir}/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
"""


def new_cluster_id() -> str:
    """A random KRaft cluster id: a UUID in URL-safe base64, as ``kafka-storage random-uuid``.

    Like Kafka's own ``Uuid.randomUuid``, it never starts with ``-``: such an id reads as an
    option on a command line (1 start in 64 would fail to format).
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def kafka_nodes(settings: Settings) -> list[KafkaServer]:
    """One component per KRaft node of the local stack (``FEATURESTORE_KAFKA__BROKERS``)."""
    return [KafkaServer(settings, node) for node in range(1, settings.kafka.brokers + 1)]


def java_argument_file(arguments: list[str]) -> str:
    """The text of a ``java @file`` argument file that gives ``arguments`` as they are.

    One argument a line, in double quotes, with the escapes the launcher reads in quotes, so
    that white space, quotes, backslashes and ``#`` in an argument (a password) stay in it.
    """
    escapes = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"})
    return "".join(f'"{argument.translate(escapes)}"\n' for argument in arguments)


class KafkaServer(NodeComponent):
    """One KRaft node (broker and controller) listening on loopback."""

    name = "kafka"
    start_timeout = 90.0

    def __init__(self, settings: Settings, node: int = 1) -> None:
        """Node ``node`` (from 1) of the ``settings.kafka.brokers`` local nodes."""
        brokers = settings.kafka.brokers
        super().__init__(settings, node, brokers, f"FEATURESTORE_KAFKA__BROKERS={brokers}")
        self.port, self.controller_port = settings.kafka.node_ports(node)
        self._certs: Certificates | None = None
        """The certificates of the secured stack (set by :meth:`prepare`); None: open."""

    @property
    def cluster_file(self) -> Path:
        """The cluster's id and size, in the first node's folder."""
        return self.settings.data_dir.resolve() / "kafka" / "cluster.json"

    @override
    def marker(self) -> str:
        """Recognise the process by the node's ``server.properties``, which tells nodes apart."""
        return str(self.data_dir / "server.properties")

    @override
    def address(self) -> str:
        """The stack's bootstrap servers for a lone node; this node's own listener in a cluster."""
        if self.settings.kafka.brokers == 1:
            return self.settings.kafka.bootstrap
        return f"{self.settings.kafka.host}:{self.port}"

    def _properties(self) -> str:
        k = self.settings.kafka
        host = k.host
        if k.brokers == 1:
            quorum = f"controller.quorum.bootstrap.servers={host}:{self.controller_port}"
        else:
            voters = ",".join(f"{n}@{host}:{k.node_ports(n)[1]}" for n in range(1, k.brokers + 1))
            quorum = f"controller.quorum.voters={voters}"
        replicas = min(3, k.brokers)
        in_sync = max(1, replicas - 1)
        listener = "SASL_SSL" if self._certs is not None else "PLAINTEXT"
        return "\n".join(
            [
                "process.roles=broker,controller",
                f"node.id={self.node}",
                quorum,
                f"listeners={listener}://{host}:{self.port},"
                f"CONTROLLER://{host}:{self.controller_port}",
                f"advertised.listeners={listener}://{host}:{self.port}",
                "controller.listener.names=CONTROLLER",
                f"inter.broker.listener.name={listener}",
                f"listener.security.protocol.map=CONTROLLER:PLAINTEXT,{listener}:{listener}",
                *self._security_properties(),
                f"log.dirs={self.data_dir / 'data'}",
                f"num.partitions={k.default_partitions}",
                "auto.create.topics.enable=false",
                f"offsets.topic.replication.factor={replicas}",
                "offsets.topic.num.partitions=4",
                f"transaction.state.log.replication.factor={replicas}",
                f"transaction.state.log.min.isr={in_sync}",
                "transaction.state.log.num.partitions=4",
                f"share.coordinator.state.topic.replication.factor={replicas}",
                f"share.coordinator.state.topic.min.isr={in_sync}",
                "group.initial.rebalance.delay.ms=0",
                "log.retention.hours=-1",
                "log.retention.bytes=-1",
                "num.network.threads=2",
                "num.io.threads=4",
                "",
            ]
        )

    def _security_properties(self) -> list[str]:
        """The SASL_SSL listener's TLS key store and SCRAM settings (none when open)."""
        certs = self._certs
        if certs is None:
            return []
        kafka = self.settings.kafka.connection
        login = kafka.spark_options()["kafka.sasl.jaas.config"]  # the node logs in as the user
        return [
            "sasl.enabled.mechanisms=SCRAM-SHA-512",
            "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512",
            f"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={login}",
            "ssl.keystore.type=PEM",
            f"ssl.keystore.location={certs.keystore}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={certs.ca}",
            "ssl.client.auth=none",
        ]

    def _java(self) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise ConfigurationError("Java 17 is not installed; run `make setup`")
        jars = resolve_jars(self.settings, "kafka")
        return [
            java,
            f"-Xms{self.settings.kafka.heap}",
            f"-Xmx{self.settings.kafka.heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.data_dir / 'logs'}",
            "-cp",
            f"{jars}/*",
        ]

    @override
    def preflight(self) -> None:
        """A secured start refuses a log folder formatted open (it has no SCRAM user)."""
        formatted = (self.data_dir / "data" / "meta.properties").exists()
        secured = self.settings.security.enabled
        if secured and formatted and not (self.data_dir / "scram-users").exists():
            raise ConfigurationError(
                f"the Kafka data under {self.data_dir} was formatted without SCRAM users "
                "(the stack ran open): start the secured stack with a fresh "
                "FEATURESTORE_DATA_DIR"
            )

    @override
    def prepare(self) -> None:
        """Write the node's ``server.properties`` and log settings; format its log folder once.

        The log folder is formatted with the cluster's id (:attr:`cluster_file`) and, when secured,
        the SCRAM user. A secured start refuses a log folder formatted without that user.
        """
        self._certs = local_security(self.settings)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "logs").mkdir(exist_ok=True)
        properties = self.data_dir / "server.properties"
        write_private(properties, self._properties())  # the node's SCRAM password when secured
        (self.data_dir / "log4j2.properties").write_text(
            _LOG4J2.format(log_dir=self.data_dir / "logs")
        )
        formatted = (self.data_dir / "data" / "meta.properties").exists()
        cluster_id = self._cluster_id(formatted)
        scram_users = self.data_dir / "scram-users"
        if formatted:
            self.preflight()
            return
        quorum = ["--standalone"] if self.settings.kafka.brokers == 1 else []
        scram: list[str] = []
        if self._certs is not None:
            kafka = self.settings.kafka
            assert kafka.password is not None  # checked by local_security
            secret = kafka.password.get_secret_value()
            scram = ["--add-scram", f"SCRAM-SHA-512=[name={kafka.username},password={secret}]"]
        # The tool's arguments travel in an argument file of the owner's alone, not on the
        # command line, which any local user may read (ps) while it runs: --add-scram holds
        # the password.
        arguments = self.data_dir / "format.args"
        write_private(
            arguments,
            java_argument_file(
                [
                    "kafka.tools.StorageTool",
                    "format",
                    *quorum,
                    *scram,
                    f"--cluster-id={cluster_id}",
                    f"--config={self.data_dir / 'server.properties'}",
                ]
            ),
        )
        try:
            result = subprocess.run(
                [*self._java(), f"@{arguments}"], capture_output=True, text=True
            )
        finally:
            arguments.unlink(missing_ok=True)
        if result.returncode != 0:
            raise ConfigurationError(
                f"kafka-storage format failed:\n{result.stdout}{result.stderr}"
            )
        if scram:
            scram_users.write_text(f"{self.settings.kafka.username}\n")

    def _cluster_id(self, formatted: bool) -> str:
        """The id every node is formatted with; refuses data formatted for another size."""
        brokers = self.settings.kafka.brokers
        try:
            cluster = json.loads(self.cluster_file.read_text())
        except FileNotFoundError:
            # Data formatted before the file existed is a lone node's: the only layout then.
            first_formatted = (self.cluster_file.parent / "data" / "meta.properties").exists()
            cluster = {"brokers": 1} if formatted or first_formatted else None
        if cluster is None:
            cluster = {"cluster_id": new_cluster_id(), "brokers": brokers}
            self.cluster_file.parent.mkdir(parents=True, exist_ok=True)
            self.cluster_file.write_text(json.dumps(cluster))
        if cluster["brokers"] != brokers:
            raise ConfigurationError(
                f"the Kafka data under {self.settings.data_dir.resolve()} was formatted for "
                f"{cluster['brokers']} broker(s), not FEATURESTORE_KAFKA__BROKERS={brokers}: "
                "set it back, or stop the stack and use a fresh FEATURESTORE_DATA_DIR"
            )
        return str(cluster.get("cluster_id", ""))

    @override
    def launch(self) -> int:
        """Run ``kafka.Kafka`` on the node's properties, on Java 17 with the configured heap."""
        return self.process.start(
            [*self._java(), "kafka.Kafka", str(self.data_dir / "server.properties")]
        )

    @override
    def healthy(self) -> bool:
        """The node answers metadata requests on its own listener and is a registered broker."""
        brokers = self._brokers_seen()
        if self.settings.kafka.brokers == 1:
            return bool(brokers)
        return self.node in brokers

    def _brokers_seen(self) -> set[int]:
        """The brokers this node's metadata lists; none when it does not answer."""
        k = self.settings.kafka
        if k.bootstrap_servers is None and not port_open(k.host, self.port):
            return set()
        node = dataclasses.replace(k.connection, bootstrap=self.address())
        admin = create_client(
            AdminClient, node.admin(**{"socket.timeout.ms": 2000, "log_level": 0})
        )
        try:
            return set(admin.list_topics(timeout=2).brokers)
        except KafkaException:
            return set()

    @override
    def after_healthy(self) -> None:
        """Once the last node serves (the others were waited for first), create the topics.

        In a cluster, first wait until every node lists every broker: a node that has not yet
        seen the last one register would count fewer brokers, and the topics' replication
        would be checked against that count.
        """
        brokers = self.settings.kafka.brokers
        if self.node != brokers:
            return
        nodes = kafka_nodes(self.settings)
        deadline = time.monotonic() + self.start_timeout
        while not all(len(node._brokers_seen()) == brokers for node in nodes):
            if time.monotonic() > deadline:
                raise BackendUnavailableError(
                    f"the {brokers} Kafka nodes did not all see each other within "
                    f"{self.start_timeout:.0f} s; see the logs under {self.settings.data_dir}"
                )
            time.sleep(0.25)
        # Imported here: the topic helpers belong to the event log, not to the stack.
        from featurestore.topics import ensure_event_topics

        ensure_event_topics(self.settings)

    @override
    def stop(self) -> bool:
        """Stop the node; the last live node of a cluster is given 10 s, not 30.

        Alone, a node's broker cannot finish its controlled shutdown: that needs an active
        controller, a majority of the quorum. It is killed instead, and recovers its log on
        the next start.
        """
        peers_alive = any(
            node.process.pid() is not None
            for node in kafka_nodes(self.settings)
            if node.node != self.node
        )
        timeout = 30.0 if self.settings.kafka.brokers == 1 or peers_alive else 10.0
        return self.process.stop(timeout, sig=self.stop_signal, whole_group=self.signal_whole_group)

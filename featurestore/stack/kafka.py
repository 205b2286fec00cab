"""Apache Kafka 4 in KRaft mode, single node, on the machine's Java 17.

The broker's jars come from Maven (``deploy/jvm/pom.xml``, profile ``kafka``); the log folder is
formatted once with a fresh cluster id, then the node runs as broker and controller at once.
A node killed with SIGKILL recovers its log on the next start.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import uuid

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from featurestore.errors import ConfigurationError
from featurestore.stack.base import Component, port_open
from featurestore.stack.jars import resolve_jars

__all__ = ["KafkaServer", "new_cluster_id"]

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


class KafkaServer(Component):
    """A single KRaft node listening on loopback."""

    name = "kafka"
    start_timeout = 90.0

    def marker(self) -> str:
        return str(self.data_dir / "server.properties")

    def address(self) -> str:
        return self.settings.kafka.bootstrap

    def _properties(self) -> str:
        k = self.settings.kafka
        return "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.bootstrap.servers={k.host}:{k.controller_port}",
                f"listeners=PLAINTEXT://{k.host}:{k.port},CONTROLLER://{k.host}:{k.controller_port}",
                f"advertised.listeners=PLAINTEXT://{k.host}:{k.port}",
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=PLAINTEXT",
                "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                f"log.dirs={self.data_dir / 'data'}",
                f"num.partitions={k.default_partitions}",
                "auto.create.topics.enable=false",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=4",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "transaction.state.log.num.partitions=4",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "log.retention.hours=-1",
                "log.retention.bytes=-1",
                "num.network.threads=2",
                "num.io.threads=4",
                "",
            ]
        )

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

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "logs").mkdir(exist_ok=True)
        (self.data_dir / "server.properties").write_text(self._properties())
        (self.data_dir / "log4j2.properties").write_text(
            _LOG4J2.format(log_dir=self.data_dir / "logs")
        )
        if (self.data_dir / "data" / "meta.properties").exists():
            return
        cluster_id = new_cluster_id()
        result = subprocess.run(
            [
                *self._java(),
                "kafka.tools.StorageTool",
                "format",
                "--standalone",
                f"--cluster-id={cluster_id}",
                f"--config={self.data_dir / 'server.properties'}",
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise ConfigurationError(
                f"kafka-storage format failed:\n{result.stdout}{result.stderr}"
            )

    def launch(self) -> int:
        return self.process.start(
            [*self._java(), "kafka.Kafka", str(self.data_dir / "server.properties")]
        )

    def healthy(self) -> bool:
        k = self.settings.kafka
        if k.bootstrap_servers is None and not port_open(k.host, k.port):
            return False
        admin = AdminClient(
            {"bootstrap.servers": self.address(), "socket.timeout.ms": 2000, "log_level": 0}
        )
        try:
            metadata = admin.list_topics(timeout=2)
        except KafkaException:
            return False
        return bool(metadata.brokers)

    def after_healthy(self) -> None:
        # Imported here: the topic helpers belong to the event log, not to the stack.
        from featurestore.topics import ensure_event_topics

        ensure_event_topics(self.settings)

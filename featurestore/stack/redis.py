"""Redis 7 from the Debian package: one server, or the nodes of a Redis Cluster.

By default one server (component ``redis``) on its own port, with an append-only file so a
restart keeps its data. With ``FEATURESTORE_REDIS__CLUSTER=true`` the stack runs every node of a
Redis Cluster (``redis``, ``redis-2`` ... ``redis-6`` for 3 masters with a replica each), each
with its own data folder (append-only file and ``nodes.conf``), ports (client ``port + n - 1``,
cluster bus ``bus_port + n - 1``), PID file, health check and supervision. Once the last node
serves, the cluster is formed if it is not yet (:mod:`featurestore.stack.redis_cluster`); a node
that dies and starts again rejoins from its ``nodes.conf`` (a master that was failed over comes
back as its successor's replica).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import redis
from typing_extensions import override

from featurestore.config import Settings
from featurestore.stack.base import NodeComponent
from featurestore.stack.base import require_binary
from featurestore.stack.certs import ensure_certificates
from featurestore.stack.private_file import write_private
from featurestore.stack.security import local_security

__all__ = ["RedisServer", "redis_nodes"]


def redis_nodes(settings: Settings) -> list[RedisServer]:
    """One component per Redis server of the local stack (every node of a cluster)."""
    return [RedisServer(settings, node) for node in range(1, settings.redis.local_nodes + 1)]


class RedisServer(NodeComponent):
    """The online store's server, or one node of its cluster."""

    name = "redis"

    def __init__(self, settings: Settings, node: int = 1) -> None:
        """Node ``node`` (from 1) of the ``settings.redis.local_nodes`` local servers."""
        self.port = settings.redis.node_port(node)  # first: the base reads marker(), which uses it
        nodes = settings.redis.local_nodes
        super().__init__(settings, node, nodes, f"the local stack runs {nodes}")

    @override
    def marker(self) -> str:
        """Recognise the process by ``host:port``, in its arguments and in the title Redis sets."""
        return f"{self.settings.redis.host}:{self.port}"

    @override
    def address(self) -> str:
        """The store's URL for a lone server; this node's own for a cluster."""
        cfg = self.settings.redis
        if cfg.cluster:
            return f"redis://{cfg.host}:{self.port}/0 (cluster node {self.node})"
        return cfg.url

    @property
    def _acl_file(self) -> Path:
        return self.data_dir / "users.acl"

    @override
    def prepare(self) -> None:
        """Create the data folder and, when secured, the ACL file with the user's password hash."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if local_security(self.settings) is not None:
            # In a file (mode 0600), not in the arguments, which any local user can read.
            cfg = self.settings.redis
            assert cfg.password is not None  # checked by local_security
            digest = hashlib.sha256(cfg.password.get_secret_value().encode()).hexdigest()
            write_private(
                self._acl_file,
                f"user default off\nuser {cfg.username or 'default'} on #{digest} ~* &* +@all\n",
            )

    def _listen(self) -> list[str]:
        """The port arguments: a plain port, or (secured) a TLS port with the ACL users."""
        certs = self.settings.security.enabled and ensure_certificates(self.settings)
        if not certs:
            return ["--port", str(self.port)]
        return [
            "--port", "0",
            "--tls-port", str(self.port),
            "--tls-cert-file", str(certs.cert),
            "--tls-key-file", str(certs.key),
            "--tls-ca-cert-file", str(certs.ca),
            "--tls-auth-clients", "no",
            "--aclfile", str(self._acl_file),
        ]  # fmt: skip

    @override
    def launch(self) -> int:
        """Run ``redis-server`` on loopback, durable by its append-only file (fsync every second).

        No snapshots; a cluster node gets the cluster options (bus port, node timeout).
        """
        cfg = self.settings.redis
        cluster: list[str] = []
        if cfg.cluster:
            cluster = [
                "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf",
                "--cluster-port", str(cfg.node_bus_port(self.node)),
                "--cluster-node-timeout", str(cfg.node_timeout_ms),
                # A master may lose its last replica: a node without replicas keeps its slots.
                "--cluster-allow-replica-migration", "no",
            ]  # fmt: skip
        return self.process.start(
            [
                require_binary("redis-server"),
                "--bind", cfg.host,
                *self._listen(),
                "--dir", str(self.data_dir),
                "--appendonly", "yes",
                "--appendfsync", "everysec",
                "--save", "",
                "--protected-mode", "yes",
                "--daemonize", "no",
                # The marker in the arguments and in the title Redis sets once started: a PID
                # check in the moment between (another process's) must recognise it, or that
                # process drops the PID file of a live server and the supervisor starts a
                # second one on the same port.
                "--proc-title-template", f"{{title}} {self.marker()} {{server-mode}}",
                *cluster,
            ]
        )  # fmt: skip

    @override
    def healthy(self) -> bool:
        """A PING on this node's port answers, with the client's TLS and credentials."""
        try:
            client = redis.Redis(
                host=self.settings.redis.host,
                port=self.port,
                socket_timeout=1,
                **self.settings.redis.client_kwargs(),
            )
            with client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    @override
    def after_healthy(self) -> None:
        """Once the last node of a cluster serves (the others were waited for first), form it."""
        cfg = self.settings.redis
        if not cfg.cluster or self.node != cfg.local_nodes:
            return
        # Imported here: forming a cluster is the cluster module's, and only clusters need it.
        from featurestore.stack.redis_cluster import ensure_cluster

        ensure_cluster(cfg, timeout_s=self.start_timeout)

"""Settings of the servers the store uses: Kafka, PostgreSQL, Redis, schema registry, MLflow."""

from __future__ import annotations

import base64
import ssl
from datetime import timedelta
from pathlib import Path
from typing import Any
from typing import Literal

from pydantic import Field
from pydantic import SecretStr
from pydantic import field_validator
from pydantic import model_validator

from featurestore.config._values import LOOPBACK
from featurestore.config._values import Port
from featurestore.config._values import _comma_separated
from featurestore.config._values import _each_entry
from featurestore.config._values import _entries
from featurestore.config._values import _host_port
from featurestore.config._values import _http_url
from featurestore.config._values import _http_urls
from featurestore.config._values import _secret_entries
from featurestore.config._values import _Section
from featurestore.config._values import _user_password
from featurestore.kafka_connection import KafkaConnection

__all__ = [
    "KafkaSettings",
    "MlflowSettings",
    "PostgresSettings",
    "RedisSettings",
    "SchemaRegistrySettings",
    "TopicSettings",
]


class KafkaSettings(_Section):
    """Where the Kafka brokers are, and how the store's topics and the local nodes are set up.

    The local stack runs ``brokers`` KRaft nodes; the topics the store creates are replicated
    across as many brokers as ``replication_factor`` says, checked against the brokers there are.
    """

    host: str = LOOPBACK
    """Host of the broker listeners (the local stack binds it)."""
    port: Port = 19092
    """Port of the broker listener of the first local node; node n listens on ``port + 2(n-1)``."""
    controller_port: Port = 19093
    """Port of the KRaft controller listener of the first local node; node n: ``+ 2(n-1)``."""
    brokers: int = Field(default=1, ge=1, le=9)
    """KRaft nodes of the local stack, each broker and controller (the quorum is all of them):
    1, or 3 for a cluster that survives the loss of one."""
    bootstrap_servers: str | None = None
    """Overrides the local nodes' addresses to reach an external cluster (comma-separated
    ``host:port`` entries; empty: the local nodes)."""
    default_partitions: int = 4
    """Partitions of the event topics the store creates."""
    replication_factor: int | None = Field(default=None, ge=1)
    """Replicas of each topic the store creates (event topics, dead letters, ``_schemas``);
    None: the smaller of 3 and the brokers the cluster has."""
    min_insync_replicas: int | None = Field(default=None, ge=1)
    """``min.insync.replicas`` of those topics: the replicas an ``acks=all`` write needs;
    None: the replication factor less one, at least 1 (2 of 3)."""
    heap: str = "512m"
    """JVM heap of each local node."""
    security_protocol: Literal["PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    """How clients reach the brokers: ``PLAINTEXT``, or ``SASL_SSL`` (SCRAM over TLS; with
    ``FEATURESTORE_SECURITY__ENABLED`` the local stack's broker listens so)."""
    sasl_mechanism: Literal["SCRAM-SHA-512"] = "SCRAM-SHA-512"
    """The SASL mechanism with ``SASL_SSL``."""
    username: str | None = None
    """The SCRAM user with ``SASL_SSL``."""
    password: SecretStr | None = None
    """The SCRAM user's password (or ``FEATURESTORE_KAFKA__PASSWORD_FILE``, a file holding it)."""
    ca_file: Path | None = None
    """PEM file of the CA that signed the brokers' certificates; None: the system's CAs."""

    @property
    def connection(self) -> KafkaConnection:
        """The one object every Kafka client's configuration comes from."""
        return KafkaConnection(
            bootstrap=self.bootstrap,
            security_protocol=self.security_protocol,
            sasl_mechanism=self.sasl_mechanism,
            username=self.username,
            password=self.password,
            ca_file=self.ca_file,
        )

    @field_validator("bootstrap_servers")
    @classmethod
    def _servers(cls, value: str | None) -> str | None:
        if value is None:
            return None
        entries = _entries(value)
        if not entries:
            raise ValueError("no host:port is given")
        for number, entry in enumerate(entries, 1):
            _host_port(entry, f"entry {number}")
        return ",".join(entries)

    @model_validator(mode="after")
    def _replication_fits(self) -> KafkaSettings:
        rf, isr = self.replication_factor, self.min_insync_replicas
        if rf is not None and isr is not None and isr > rf:
            raise ValueError(
                f"FEATURESTORE_KAFKA__MIN_INSYNC_REPLICAS={isr} is more than "
                f"FEATURESTORE_KAFKA__REPLICATION_FACTOR={rf}: no acks=all write could succeed"
            )
        if self.bootstrap_servers is None and rf is not None and rf > self.brokers:
            raise ValueError(
                f"FEATURESTORE_KAFKA__REPLICATION_FACTOR={rf} needs at least {rf} brokers; the "
                f"local stack runs FEATURESTORE_KAFKA__BROKERS={self.brokers}"
            )
        ports = [p for node in range(1, self.brokers + 1) for p in self.node_ports(node)]
        if max(ports) > 65535:
            raise ValueError(
                f"the {self.brokers} local nodes' ports pass 65535: node n listens on"
                f" port + 2(n-1) (FEATURESTORE_KAFKA__PORT={self.port}) and controller_port"
                f" + 2(n-1) (FEATURESTORE_KAFKA__CONTROLLER_PORT={self.controller_port})"
            )
        if len(set(ports)) != len(ports):
            raise ValueError(
                f"the {self.brokers} local nodes' ports overlap: node n listens on port + 2(n-1) "
                f"and controller_port + 2(n-1) (port={self.port}, "
                f"controller_port={self.controller_port})"
            )
        return self

    def node_ports(self, node: int) -> tuple[int, int]:
        """The broker and controller ports of local node ``node`` (from 1)."""
        return self.port + 2 * (node - 1), self.controller_port + 2 * (node - 1)

    @property
    def bootstrap(self) -> str:
        """The bootstrap servers clients connect to: every local node, or the override."""
        if self.bootstrap_servers is not None:
            return self.bootstrap_servers
        nodes = range(1, self.brokers + 1)
        return ",".join(f"{self.host}:{self.node_ports(n)[0]}" for n in nodes)


class TopicSettings(_Section):
    """Names of the topics of the event log."""

    trades: str = "trades"
    """Trade events, the system of record for market data."""
    quotes: str = "quotes"
    """Quote events (top of the book), keyed by symbol like trades."""
    metrics: str = "metrics"
    """Generic numeric metric events, keyed by entity."""
    anomalies: str = "anomalies"
    """Anomaly events emitted by the online scorer."""
    predictions: str = "predictions"
    """PredictionLog events emitted by Predict."""
    dead_letter: str = "dead-letter"
    """Events that failed validation or decoding, with the reason in a header."""
    schemas: str = "_schemas"
    """The schema registry's compacted log."""


class PostgresSettings(_Section):
    """The offline store."""

    host: str = LOOPBACK
    port: Port = 15432
    user: str = "featurestore"
    password: SecretStr = SecretStr("featurestore")
    """The user's password (or ``FEATURESTORE_POSTGRES__PASSWORD_FILE``, a file holding it)."""
    database: str = "featurestore"
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = "prefer"
    """libpq's ``sslmode`` for every connection (psycopg, SQLAlchemy, Feast's offline store):
    ``prefer`` uses TLS when the server offers it; ``verify-full`` (with
    ``FEATURESTORE_SECURITY__ENABLED``) refuses a server whose certificate the CA did not sign
    for this host."""
    ssl_root_cert: Path | None = None
    """PEM file of the CA that signed the server's certificate (``sslrootcert``); None: libpq's
    default (``~/.postgresql/root.crt``)."""
    retention_interval_s: float = Field(default=3600.0, gt=0)
    """How often ``featurestore monitor`` drops the offline partitions past each view's
    retention (:mod:`featurestore.offline.retention`)."""
    column_copies: bool = True
    """Keep a columnar copy of each offline table's settled past (rows over an hour old) under
    ``<data_dir>/offline-columns``, and join entity rows of that past from it by merge instead of
    one index probe per row (:mod:`featurestore.offline.column_copy`). A copy is used only while
    exact; PostgreSQL joins the rest."""
    column_copy_max_rows: int = Field(default=20_000_000, ge=0)
    """Tables estimated to hold more rows than this get no column copy (a build holds the copy
    in memory: ~200 bytes a row at its peak with 10 features); PostgreSQL joins all their rows."""
    column_copy_interval_s: float = Field(default=600.0, gt=0)
    """How often ``featurestore monitor`` rebuilds the copies that are missing, inexact (a write,
    a correction or retention touched their past) or stale (over 6 hours behind)."""
    connect_timeout_s: int = Field(default=10, ge=2)
    """libpq's ``connect_timeout``: a connection attempt that gets no answer (a server that
    accepts and hangs, a dropped SYN) fails after this long, and its caller's retry goes on."""
    keepalive_idle_s: int = Field(default=30, ge=1)
    """TCP keepalives on every connection: probes start after this many silent seconds, then
    3 of them 10 s apart. A connection whose server vanished without a reset (its host down,
    the network cut) fails within about this + 30 s, instead of blocking the call waiting on it
    (a processor's commit, an export) for the kernel's two hours."""

    def libpq_options(self) -> dict[str, str]:
        """Every connection's options beside address and login: TLS, timeout, keepalives.

        Also the SQL registry's (its URL's query); :meth:`connect_kwargs` adds JIT off.
        """
        options = {
            "sslmode": self.sslmode,
            "connect_timeout": str(self.connect_timeout_s),
            "keepalives": "1",
            "keepalives_idle": str(self.keepalive_idle_s),
            "keepalives_interval": "10",
            "keepalives_count": "3",
        }
        if self.ssl_root_cert is not None:
            options["sslrootcert"] = str(self.ssl_root_cert)
        return options

    @property
    def dsn(self) -> str:
        """A libpq connection string (values quoted as libpq wants), every option included."""
        from psycopg.conninfo import make_conninfo

        return make_conninfo(**self.connect_kwargs())

    def connect_kwargs(self) -> dict[str, Any]:
        """The libpq connection parameters, as keywords of ``psycopg.connect``.

        ``options=-c jit=off``: PostgreSQL's JIT compiler off for the session, on the stack's
        server and on a user's own alike (PostgreSQL's docs advise it for short queries). The
        store's queries are index probes, one per row, whose estimated cost grows with the rows
        and the partitions they span until it passes ``jit_above_cost``: compiling then costs
        more than the query, once per query. On 60 monthly partitions of ``bars_1m``:
        ``predictions_with_outcomes`` of 5,000 predictions 825 ms with JIT (655 ms compiling)
        vs 150 ms; an export chunk of 100,000 rows with labels 7.7 s (5.8 s compiling) vs
        1.9 s. No read of the offline tables measured was faster with JIT (scans included).
        PgBouncer refuses a startup parameter it does not know: behind one, list ``options`` in
        its ``ignore_startup_parameters``.
        """
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password.get_secret_value(),
            "dbname": self.database,
            **self.libpq_options(),
            "options": "-c jit=off",
        }


class RedisSettings(_Section):
    """The online store: one Redis server, or a Redis Cluster.

    With ``cluster`` the local stack runs ``cluster_masters`` masters, each with
    ``cluster_replicas`` replicas, node n (from 1) on ``port + n - 1`` with its cluster bus on
    ``bus_port + n - 1``; the first ``cluster_masters`` nodes start as the masters. Clients learn
    the slots from any node they are given (every local node, or ``cluster_nodes``).
    """

    host: str = LOOPBACK
    """Host of the server (of the local nodes, with ``cluster``)."""
    port: Port = 16379
    """Port of the server (of the first local node, with ``cluster``)."""
    db: int = 0
    """Logical database of a single server; a cluster has only 0."""
    cluster: bool = False
    """A Redis Cluster instead of one server."""
    cluster_nodes: tuple[str, ...] = ()
    """``host:port`` of nodes of an external cluster (comma-separated); empty: the local nodes."""
    cluster_masters: int = Field(default=3, ge=3, le=16)
    """Masters of the local cluster (Redis needs 3 for a majority to fail one over)."""
    cluster_replicas: int = Field(default=1, ge=0, le=3)
    """Replicas of each master of the local cluster."""
    bus_port: Port | None = None
    """Cluster bus port of the first local node; node n: ``bus_port + n - 1``;
    None: ``port + 10000``, Redis' own default."""
    node_timeout_ms: int = Field(default=5000, ge=100)
    """``cluster-node-timeout`` of the local nodes: how long a master may not answer before its
    replica is promoted."""
    username: str | None = None
    """The ACL user every client authenticates as; None: Redis' ``default`` user."""
    password: SecretStr | None = None
    """The ACL user's password (or ``FEATURESTORE_REDIS__PASSWORD_FILE``); None: no AUTH."""
    tls: bool = False
    """Clients speak TLS to Redis (``rediss://``); the local stack's secured Redis listens
    only so."""
    ca_file: Path | None = None
    """PEM file of the CA that signed Redis' certificate; None: the system's CAs."""
    kept_past_ttl_s: float = Field(default=86400.0, ge=0, le=10 * 366 * 86400, allow_inf_nan=False)
    """How long a row stays in Redis after its view's TTL has passed, read OUTSIDE_MAX_AGE with
    its last value and event time, so that an entity gone quiet is told from one never written
    (NOT_FOUND); 0: it expires with its TTL (at most ten years). The writers (processors,
    backfills) set it. Feast's own SDK reads such a row as PRESENT until it expires."""

    _nodes = field_validator("cluster_nodes", mode="before")(_comma_separated)

    @field_validator("cluster_nodes")
    @classmethod
    def _nodes_are_addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for node in value:
            _host_port(node, "node")
        return value

    @model_validator(mode="after")
    def _cluster_fits(self) -> RedisSettings:
        if self.cluster and self.db != 0:
            raise ValueError(
                f"FEATURESTORE_REDIS__DB={self.db}: a Redis Cluster has only database 0 "
                "(SELECT is refused); unset it with FEATURESTORE_REDIS__CLUSTER"
            )
        if self.cluster_nodes and not self.cluster:
            raise ValueError(
                "FEATURESTORE_REDIS__CLUSTER_NODES is set but FEATURESTORE_REDIS__CLUSTER is not"
            )
        if self.cluster and not self.cluster_nodes:
            ports = [self.node_port(n) for n in range(1, self.local_nodes + 1)]
            buses = [self.node_bus_port(n) for n in range(1, self.local_nodes + 1)]
            if set(ports) & set(buses) or max(ports + buses) > 65535:
                raise ValueError(
                    f"the {self.local_nodes} local Redis nodes' ports {ports[0]}-{ports[-1]} and "
                    f"cluster bus ports {buses[0]}-{buses[-1]} overlap or pass 65535: set "
                    "FEATURESTORE_REDIS__BUS_PORT"
                )
        return self

    @property
    def kept_past_ttl(self) -> timedelta:
        """:attr:`kept_past_ttl_s` as a duration."""
        return timedelta(seconds=self.kept_past_ttl_s)

    @property
    def local_nodes(self) -> int:
        """Servers the local stack runs: 1, or every master and replica of the cluster."""
        return self.cluster_masters * (1 + self.cluster_replicas) if self.cluster else 1

    def node_port(self, node: int) -> int:
        """The client port of local node ``node`` (from 1)."""
        return self.port + node - 1

    def node_bus_port(self, node: int) -> int:
        """The cluster bus port of local node ``node`` (from 1)."""
        return (self.bus_port if self.bus_port is not None else self.port + 10000) + node - 1

    @property
    def startup_nodes(self) -> tuple[tuple[str, int], ...]:
        """Where clients find a cluster's slots: ``cluster_nodes``, or every local node."""
        if self.cluster_nodes:
            return tuple(
                (host, int(port))
                for host, _, port in (n.rpartition(":") for n in self.cluster_nodes)
            )
        return tuple((self.host, self.node_port(n)) for n in range(1, self.local_nodes + 1))

    @property
    def url(self) -> str:
        """A redis:// (rediss:// with TLS) URL of the first node, without credentials."""
        scheme = "rediss" if self.tls else "redis"
        if self.cluster:
            host, port = self.startup_nodes[0]
            return f"{scheme}://{host}:{port}/0"
        return f"{scheme}://{self.host}:{self.port}/{self.db}"

    def client_kwargs(self) -> dict[str, Any]:
        """redis-py's keywords for the ACL user and TLS, for every client (none when unset)."""
        kwargs: dict[str, Any] = {}
        if self.password is not None:
            kwargs["password"] = self.password.get_secret_value()
            if self.username:
                kwargs["username"] = self.username
        if self.tls:
            kwargs |= {"ssl": True, "ssl_cert_reqs": "required"}
            if self.ca_file is not None:
                kwargs["ssl_ca_certs"] = str(self.ca_file)
        return kwargs

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of clients that open their own sockets (the read path); None: plain."""
        if not self.tls:
            return None
        return ssl.create_default_context(
            cafile=str(self.ca_file) if self.ca_file is not None else None
        )

    def describe(self, host: str | None = None, port: int | None = None) -> str:
        """The server (the first node by default) and user, for messages; never the password."""
        if host is None or port is None:
            host, port = (self.host, self.port) if not self.cluster else self.startup_nodes[0]
        user = f", user {self.username or 'default'!r}" if self.password is not None else ""
        return f"online store (Redis) at {host}:{port}{user}{', TLS' if self.tls else ''}"


class SchemaRegistrySettings(_Section):
    """The Confluent-compatible schema registry."""

    host: str = LOOPBACK
    port: Port = 18081
    url_override: str | None = Field(default=None, alias="url")
    """Overrides ``http://host:port`` to reach an external registry; several instances as a
    comma-separated list (Confluent's clients try them in turn)."""
    advertised_url: str | None = None
    """Where the other instances reach this one to forward writes when it leads (in Kubernetes,
    the pod's stable name); None: ``http://host:port``."""
    leader_eligible: bool = True
    """Whether this instance may lead (write); one that may not only serves reads and forwards."""
    basic_auth_users: tuple[SecretStr, ...] = ()
    """``user:password`` pairs the registry accepts by HTTP basic auth, comma-separated, or one
    a line in the file ``FEATURESTORE_SCHEMA_REGISTRY__BASIC_AUTH_USERS_FILE`` names (``#``
    comments); none: no authentication. Every route but ``GET /health`` then needs them."""
    basic_auth_user_info: SecretStr | None = None
    """``user:password`` the store's own clients send to the registry (Confluent's
    ``basic.auth.user.info``); None: no credentials."""
    timeout_s: float = Field(default=10.0, gt=0)
    """How long one request of the store's clients to the registry may take (Confluent's
    ``timeout``: connecting, and each read); without it a registry that accepts and never answers
    holds an ingest, a processor or a server for ever."""
    max_retries: int = Field(default=3, ge=0)
    """How many more times the clients send a request that failed on the way (refused, reset,
    timed out; Confluent's ``max.retries``, 1, 2, 4 ... s apart) before the store reports the
    registry away: with the defaults a silent registry is reported after about 47 s."""

    _urls = field_validator("url_override")(_http_urls)
    _advertised = field_validator("advertised_url")(_http_url)

    _split_users = field_validator("basic_auth_users", mode="before")(_secret_entries)

    _users_are_pairs = field_validator("basic_auth_users")(_each_entry(_user_password))

    @field_validator("basic_auth_user_info")
    @classmethod
    def _user_info_is_a_pair(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            _user_password(value.get_secret_value(), "the value")
        return value

    def users(self) -> dict[str, SecretStr]:
        """The accepted users and their passwords."""
        pairs = (_user_password(e.get_secret_value(), "") for e in self.basic_auth_users)
        return {user: SecretStr(password) for user, password in pairs}

    @property
    def auth_header(self) -> dict[str, str]:
        """The ``Authorization`` header of HTTP clients of the registry (empty without credentials).

        The credentials Confluent's clients send from ``basic.auth.user.info``.
        """
        if self.basic_auth_user_info is None:
            return {}
        raw = self.basic_auth_user_info.get_secret_value().encode()
        return {"Authorization": f"Basic {base64.b64encode(raw).decode()}"}

    @property
    def url(self) -> str:
        """The registry's base URL."""
        return self.url_override or f"http://{self.host}:{self.port}"

    @property
    def own_url(self) -> str:
        """This instance's URL as the others should use it."""
        return self.advertised_url or f"http://{self.host}:{self.port}"


class MlflowSettings(_Section):
    """The MLflow tracking server and model registry."""

    host: str = LOOPBACK
    port: Port = 15000
    tracking_uri_override: str | None = Field(default=None, alias="tracking_uri")
    """Overrides ``http://host:port`` to reach an external server (an http(s) URL)."""

    _uri = field_validator("tracking_uri_override")(_http_url)

    @property
    def tracking_uri(self) -> str:
        """The tracking URI clients use."""
        return self.tracking_uri_override or f"http://{self.host}:{self.port}"

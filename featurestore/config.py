"""One typed settings object for every process of the store.

Values come from ``FEATURESTORE_*`` environment variables (nested with ``__``, for example
``FEATURESTORE_KAFKA__PORT=19092``) and an optional dotenv-style file named by
``FEATURESTORE_CONFIG``, whose values the environment overrides: ``KEY=value`` lines, an optional
``export`` before the key, the value optionally in matching single or double quotes (taken
literally, no escapes), ``#`` comment lines; not TOML. The loader is this module's own, not
pydantic-settings: it adds ``<SECRET>_FILE`` variables and messages that name the variable (and
the file's line). Load it once at the entry point with :func:`load_settings` and pass it down;
tests pass their own mapping instead of touching ``os.environ``.

What the loader refuses, naming the variable: a ``FEATURESTORE_*`` name that is no setting (with
the closest one; the few variables of that prefix that other code reads are listed in
:data:`NOT_SETTINGS`), a group given a value, a value of only whitespace, a port outside
1-65535, a URL without an http(s) scheme and a host, a blank entry of a comma-separated list.
An empty value is as if the variable were unset (the default applies), except for a list, where
it is the empty list, and a secret, which is taken as it is. Values and list entries lose their
surrounding whitespace; secrets are kept as given.

Every address is configuration: the defaults point at the local stack on loopback, with ports
chosen away from the usual ones so that the project's own servers never disturb others on the
machine.
"""

from __future__ import annotations

import base64
import difflib
import functools
import hashlib
import os
import re
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, get_origin
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from featurestore.errors import ConfigurationError
from featurestore.kafka_connection import KafkaConnection
from featurestore.security import ALL_SCOPES, local_credentials

__all__ = [
    "GRPC_SCOPES",
    "NOT_SETTINGS",
    "DashboardSettings",
    "GrpcSettings",
    "KafkaSettings",
    "MetricsSettings",
    "MlflowSettings",
    "PostgresSettings",
    "ProcessorSettings",
    "PrometheusSettings",
    "RedisSettings",
    "SchemaRegistrySettings",
    "SecuritySettings",
    "ServiceSettings",
    "Settings",
    "SparkClusterSettings",
    "SupervisorSettings",
    "TokenGrant",
    "TopicSettings",
    "TracingSettings",
    "VendorSettings",
    "load_settings",
    "parse_token_entry",
    "settings_env",
]

LOOPBACK = "127.0.0.1"


def _entries(text: str) -> tuple[str, ...]:
    """The entries of a comma-separated list, stripped; ``""`` is the empty list.

    Raises:
        ValueError: an entry is blank (``a,,b``, a trailing comma), naming it by its place.
    """
    if not text.strip():
        return ()
    entries = tuple(entry.strip() for entry in text.split(","))
    for number, entry in enumerate(entries, 1):
        if not entry:
            raise ValueError(f"entry {number} of the comma-separated list is empty")
    return entries


def _comma_separated(value: object) -> object:
    """A comma-separated string (as an environment variable holds it) as a tuple of names."""
    return _entries(value) if isinstance(value, str) else value


def _port_number(value: int) -> int:
    if not 1 <= value <= 65535:
        raise ValueError(f"must be a port number (1-65535), not {value}")
    return value


def _port_or_free(value: int) -> int:
    if value != 0 and not 1 <= value <= 65535:
        raise ValueError(f"must be a port number (1-65535), or 0 for a free one, not {value}")
    return value


Port = Annotated[int, AfterValidator(_port_number)]
"""A TCP port a server listens on or a client connects to."""
PortOrFree = Annotated[int, AfterValidator(_port_or_free)]
"""A port a server of the store binds, where 0 asks the system for a free one (tests, several
servers on one host); only where the code reports or registers the port it got."""


def _host_port(entry: str, which: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) split, the port checked.

    Raises:
        ValueError: the entry is not of that form; the message names ``which``.
    """
    host, sep, port = entry.rpartition(":")
    if not sep or not host.strip() or not (port.isascii() and port.isdigit()):
        raise ValueError(f"{which} {entry!r} is not of the form host:port")
    if not 1 <= int(port) <= 65535:
        raise ValueError(f"{which} {entry!r}: the port must be 1-65535")
    return host, int(port)


def _shown(text: str) -> str:
    """``text`` for a message: a URL with credentials (``user:pass@``) is not shown."""
    return "(the value, not shown: it holds credentials)" if "@" in text else repr(text)


def _url(text: str, schemes: tuple[str, ...] = ("http", "https")) -> str:
    """``text`` stripped, checked to be a URL of one of ``schemes`` with a host.

    Raises:
        ValueError: it is not; the message shows the value unless it holds credentials.
    """
    text = text.strip()
    parts = urlsplit(text)
    try:
        parts.port  # noqa: B018 - raises on a port that is not 0-65535
        port_ok = True
    except ValueError:
        port_ok = False
    if parts.scheme.lower() not in schemes or not parts.hostname or not port_ok:
        expected = " or ".join(f"{scheme}://" for scheme in schemes)
        raise ValueError(
            f"{_shown(text)} is not a URL: it needs a scheme ({expected}) and a host,"
            f" such as {schemes[0]}://host:port"
        )
    return text


def _http_url(value: str | None) -> str | None:
    return None if value is None else _url(value)


def _http_urls(value: str | None) -> str | None:
    """A comma-separated list of http(s) URLs, each checked, joined again without spaces."""
    if value is None:
        return None
    entries = _entries(value)
    if not entries:
        raise ValueError("no URL is given")
    return ",".join(_url(entry) for entry in entries)


def _secret_entries(value: object) -> object:
    """Comma- or newline-separated secrets as a tuple, blank and ``#`` comment lines left out.

    An environment variable holds them comma-separated, a mounted file one a line.
    """
    if isinstance(value, str | SecretStr):
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        lines = (line.strip() for line in text.splitlines())
        kept = ",".join(line for line in lines if line and not line.startswith("#"))
        return tuple(entry.strip() for entry in kept.split(",") if entry.strip())
    return value


def _each_entry(
    parse: Callable[[str, str], object],
) -> Callable[[tuple[SecretStr, ...]], tuple[SecretStr, ...]]:
    """A validator that parses every secret entry with ``parse``, naming a bad one by number."""

    def check(value: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        for number, entry in enumerate(value, 1):
            parse(entry.get_secret_value(), f"entry {number}")
        return value

    return check


def _user_password(entry: str, which: str) -> tuple[str, str]:
    """``user:password`` split at its first colon; the message never shows the password."""
    user, sep, password = entry.partition(":")
    if not sep or not user.strip() or not password:
        raise ValueError(f"{which} is not of the form user:password")
    return user.strip(), password


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


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
        """Every connection's options beside address and login: TLS, timeout, keepalives."""
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
        """The libpq connection parameters, as keywords of ``psycopg.connect``."""
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password.get_secret_value(),
            "dbname": self.database,
            **self.libpq_options(),
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


GRPC_SCOPES = ("features:read", "predict", "datasets:export", "anomalies:subscribe")
"""What a bearer token may be allowed to do, one scope per kind of call (see
``featurestore/service/auth.py`` for the methods of each)."""
_DIGEST_PREFIX = "sha256:"


@dataclass(frozen=True)
class TokenGrant:
    """One accepted bearer token: its SHA-256 digest (never the token) and its scopes."""

    digest: bytes = field(repr=False)
    scopes: frozenset[str]


def parse_token_entry(entry: str, which: str) -> TokenGrant:
    """``TOKEN SCOPE [SCOPE ...]`` (``TOKEN`` or ``sha256:<hex digest>``) as a grant.

    Raises:
        ValueError: The entry is malformed; the message names ``which`` entry, never its token.
    """
    token, *scopes = entry.split()
    if not scopes:
        raise ValueError(
            f"{which} names no scope: write 'TOKEN SCOPE ...' with scopes among "
            f"{', '.join(GRPC_SCOPES)}, or '*' for all"
        )
    unknown = sorted(set(scopes) - {*GRPC_SCOPES, "*"})
    if unknown:
        raise ValueError(
            f"{which} has unknown scope(s) {', '.join(unknown)}: the scopes are "
            f"{', '.join(GRPC_SCOPES)}, or '*' for all"
        )
    if token.startswith(_DIGEST_PREFIX):
        try:
            digest = bytes.fromhex(token[len(_DIGEST_PREFIX) :])
        except ValueError:
            digest = b""
        if len(digest) != hashlib.sha256().digest_size:
            raise ValueError(f"{which}: sha256: is to be followed by 64 hexadecimal digits")
    else:
        digest = hashlib.sha256(token.encode()).digest()
    return TokenGrant(digest, frozenset(GRPC_SCOPES if "*" in scopes else scopes))


class GrpcSettings(_Section):
    """The gRPC service."""

    host: str = LOOPBACK
    """Address the server binds: loopback by default; ``0.0.0.0`` or ``::`` for every interface
    (several servers behind a balancer, a pod); clients reach it by its name or address."""
    port: PortOrFree = 50151
    """The port the server binds; 0: a free one, which the server reports (tests, benchmarks)."""


class MetricsSettings(_Section):
    """The Prometheus endpoint (``/metrics``) of each process of the store.

    From ``FEATURESTORE_METRICS__*``. Each process of the stack listens on its own port of
    ``host``; a port of 0, or a configured port another process already holds (a second gRPC
    server, an ad-hoc ``featurestore ingest``), takes a free one and registers it in
    :attr:`targets_dir`, where Prometheus finds it (file-based service discovery).
    """

    enabled: bool = True
    """Whether processes serve ``/metrics`` at all."""
    host: str = LOOPBACK
    """Address every endpoint listens on."""
    grpc_port: PortOrFree = 19464
    """``featurestore serve``."""
    processors_port: PortOrFree = 19465
    """The first processor of the stack (trades); the stack's others take the next ports."""
    ingest_port: PortOrFree = 19470
    """``featurestore ingest`` (the stack's market feed)."""
    scorer_port: PortOrFree = 19471
    """``featurestore score --follow``."""
    schema_registry_port: PortOrFree = 19472
    """The schema registry."""
    monitor_port: PortOrFree = 19473
    """``featurestore monitor``: drift PSI and consumer lag, measured from outside."""
    targets_dir: Path | None = None
    """Where processes on ports of their own choosing register (default: the data dir's
    ``prometheus/targets``)."""
    drift_interval_s: float = Field(default=300.0, gt=0)
    """How often the monitor recomputes the PSI of each model input."""
    drift_window_minutes: int = Field(default=60, ge=1)
    """The live window the monitor compares with each model's training set."""
    drift_models: tuple[str, ...] = ("featurestore-anomaly",)
    """The registered models (alias ``champion``) whose inputs the monitor watches."""
    lag_interval_s: float = Field(default=5.0, gt=0)
    """How often the monitor measures each processor's lag against its topic."""
    lag_processors: tuple[str, ...] = ("features", "features-quotes", "features-metrics")
    """The processors whose lag the monitor measures (comma-separated)."""

    _split_names = field_validator("drift_models", "lag_processors", mode="before")(
        _comma_separated
    )


class PrometheusSettings(_Section):
    """The local stack's Prometheus, its scrape configuration and its alert rules.

    From ``FEATURESTORE_PROMETHEUS__*``; the configuration and rule files are generated from these
    at each start (``featurestore/stack/prometheus_config.py``).
    """

    host: str = LOOPBACK
    port: Port = 19090
    scrape_interval_s: float = Field(default=5.0, gt=0)
    """How often every endpoint is scraped (and rules evaluated)."""
    retention: str = "7d"
    """How long samples are kept (``--storage.tsdb.retention.time``)."""
    lag_alert_s: float = Field(default=60.0, gt=0)
    """ConsumerLagHigh: a processor more than this many seconds of event time behind its topic."""
    freshness_p99_alert_s: float = Field(default=1.0, gt=0)
    """FreshnessSlow: p99 of Redis write time - Kafka timestamp above this."""
    rpc_error_ratio_alert: float = Field(default=0.05, gt=0, le=1)
    """RpcErrorsHigh: share of RPCs ending in a server-side error status above this."""
    drift_psi_alert: float = Field(default=0.2, gt=0)
    """DriftHigh: the PSI of a model input above this."""
    alert_for_s: float = Field(default=60.0, ge=0)
    """How long a condition must hold before its alert fires (the rules' ``for``)."""
    rate_window_s: float = Field(default=120.0, gt=0)
    """The window of the rates and quantiles in the rules (at least 2 scrape intervals)."""

    @property
    def url(self) -> str:
        """The HTTP API's base URL."""
        return f"http://{self.host}:{self.port}"


class TracingSettings(_Section):
    """Where every process of the store sends its OpenTelemetry spans.

    From ``FEATURESTORE_TRACING__*``, for example ``FEATURESTORE_TRACING__EXPORTER=otlp`` and
    ``FEATURESTORE_TRACING__ENDPOINT=http://collector:4317``. The Python SDK sends the caller's
    trace context with each call (W3C ``traceparent``); the server continues it, with child spans
    for its Redis reads and Kafka writes (``featurestore/telemetry/_tracing.py``).
    """

    exporter: Literal["none", "console", "otlp"] = "none"
    """``none``: no spans; ``console``: spans (and metrics every 60 s) printed, for debugging;
    ``otlp``: spans sent to :attr:`endpoint` by OTLP over gRPC."""
    endpoint: str = "http://127.0.0.1:4317"
    """The OTLP/gRPC receiver (a collector, or a backend that speaks OTLP)."""
    headers: SecretStr = SecretStr("")
    """Headers of every export, ``key=value`` pairs separated by commas (an API key, a tenant),
    as ``OTEL_EXPORTER_OTLP_HEADERS`` spells them."""
    insecure: bool = True
    """Plain text towards :attr:`endpoint`; False: TLS with the system's roots."""
    timeout_s: float = Field(default=10.0, gt=0)
    """How long one export may take before its spans are dropped."""
    sample_ratio: float = Field(default=1.0, ge=0, le=1)
    """Share of new traces recorded; a call that arrives with a sampled parent is recorded."""

    _endpoint = field_validator("endpoint")(_http_url)

    @field_validator("headers")
    @classmethod
    def _pairs(cls, value: SecretStr) -> SecretStr:
        _header_pairs(value.get_secret_value())
        return value

    @property
    def header_pairs(self) -> dict[str, str]:
        """:attr:`headers` as a mapping (keys lower-cased, as gRPC metadata needs)."""
        return _header_pairs(self.headers.get_secret_value())


def _header_pairs(text: str) -> dict[str, str]:
    pairs = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError("headers are key=value pairs separated by commas")
        pairs[key.strip().lower()] = value.strip()
    return pairs


class DashboardSettings(_Section):
    """The live dashboard (``featurestore dashboard``, a service of ``make run``).

    From ``FEATURESTORE_DASHBOARD__*``. It reads the gRPC API (:class:`GrpcSettings`), the
    offline store and Prometheus (:class:`PrometheusSettings`) of the same settings.
    """

    host: str = LOOPBACK
    port: Port = 18050
    """The page is ``http://host:port/``."""
    refresh_s: float = Field(default=2.0, gt=0, le=5)
    """How often the page asks for new data, and the server gathers it (at most 5 s)."""
    project: str = "featurestore"
    """The Feast project whose symbols (from the offline store) the market panel shows."""
    history_minutes: int = Field(default=30, ge=1, le=24 * 60)
    """Minutes of 1-minute candles, anomalies, predictions and metrics shown."""
    max_symbols: int = Field(default=20, ge=1, le=200)
    """The most symbols shown (the most active in the history window)."""
    models: tuple[str, ...] = (
        "featurestore-anomaly", "featurestore-direction", "featurestore-regime",
    )  # fmt: skip
    """The registered models whose champion, predictions and drift the models panel shows."""
    outcome_horizon_s: float = Field(default=60.0, gt=0)
    """A prediction's outcome is the change of the symbol's close over this many seconds."""
    grpc_token: SecretStr | None = None
    """The bearer token the dashboard sends to the gRPC API when the server wants one
    (``FEATURESTORE_SERVICE__AUTH_TOKENS``): grant it ``features:read``, ``predict``,
    ``datasets:export`` (the market panel's candles) and ``anomalies:subscribe``."""

    _split_models = field_validator("models", mode="before")(_comma_separated)

    @property
    def url(self) -> str:
        """The page's URL."""
        return f"http://{self.host}:{self.port}/"


class ServiceSettings(_Section):
    """How the gRPC server authenticates, encrypts, limits and shuts down.

    From ``FEATURESTORE_SERVICE__*``, for example ``FEATURESTORE_SERVICE__AUTH_TOKENS=a,b``.
    """

    auth_tokens: tuple[SecretStr, ...] = ()
    """Bearer tokens accepted in the ``authorization`` header, each with the scopes it grants:
    entries ``TOKEN SCOPE [SCOPE ...]``, comma- or newline-separated, a scope one of
    :data:`GRPC_SCOPES` or ``*`` for all of them; ``TOKEN`` may be ``sha256:<64 hex digits>``,
    the digest of the token, so that the configuration need not hold the token itself. The file
    ``FEATURESTORE_SERVICE__AUTH_TOKENS_FILE`` names may hold them instead, one a line (``#``
    comments). None: no authentication (local development)."""
    tls_cert_file: Path | None = None
    """PEM certificate chain of the server; TLS is on when this and the key are set."""
    tls_key_file: Path | None = None
    """PEM private key of the server."""
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    """The server's event loop; uvloop spends less CPU per RPC."""
    shutdown_grace_s: float = 10.0
    """How long a stopping server lets in-flight calls finish."""
    keepalive_s: float = Field(default=60.0, ge=1.0)
    """The server pings a client whose call has sent no frame for this long (a quiet stream)
    and drops the connection when no answer comes within 20 s: a subscriber that vanished
    without a reset stops holding its stream and the stream's Kafka consumer."""
    backend_timeout_s: float = 1.0
    """Socket timeout towards Redis and MLflow; a call never waits past its own deadline either."""
    registry_path: Path = Path("registry")
    """The Feast repo whose registry defines views and feature services."""
    max_entities: int = 10_000
    """The most entity rows one GetOnlineFeatures or Predict call may ask for."""
    online_cache_rows: int = 100_000
    """Entity rows GetOnlineFeatures keeps in memory, invalidated by Redis when they change
    (RESP3 client tracking); 0: read Redis on every call."""
    online_response_memo_bytes: int = 64 * 2**20
    """Bytes of encoded GetOnlineFeatures responses kept for requests that come again, each
    valid while its rows are unchanged in the row cache and within their TTL; 0: encode every
    response (no effect without the row cache)."""
    max_stream_subscriptions: int = 64
    """Anomaly streams served at once (each holds a Kafka consumer); more: RESOURCE_EXHAUSTED."""
    model_alias_ttl_s: float = 5.0
    """How long Predict trusts an alias -> version lookup; a promotion shows within this time."""
    max_export_rows: int = 10_000_000
    """The most entity rows one ExportTrainingDataset call may ask for."""
    max_request_bytes: int = Field(default=4 * 2**20, gt=0)
    """The largest request message the server accepts (gRPC's max receive message length);
    a larger one gets RESOURCE_EXHAUSTED naming both sizes. Raise it for exports that send
    many entity rows inline (``entity_rows_arrow``)."""

    _split_tokens = field_validator("auth_tokens", mode="before")(_secret_entries)

    _tokens_have_scopes = field_validator("auth_tokens")(_each_entry(parse_token_entry))

    def token_grants(self) -> tuple[TokenGrant, ...]:
        """Every configured token as its digest and scopes."""
        return tuple(parse_token_entry(e.get_secret_value(), "") for e in self.auth_tokens)

    @property
    def auth(self) -> bool:
        """Whether calls need a bearer token."""
        return bool(self.auth_tokens)

    @model_validator(mode="after")
    def _tls_pair(self) -> ServiceSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        return self

    @property
    def tls(self) -> bool:
        """Whether the server listens with TLS."""
        return self.tls_cert_file is not None


class SupervisorSettings(_Section):
    """How the local stack's supervisor starts again a process that died.

    From ``FEATURESTORE_SUPERVISOR__*``; see ``featurestore/stack/restart.py`` for the rules.
    """

    initial_backoff_s: float = 1.0
    """The wait before starting a process again after the first quick death of a run."""
    max_backoff_s: float = 60.0
    """The longest wait between two starts of a process that keeps dying."""
    stable_after_s: float = 60.0
    """A process that lived this long is well again: its next death waits the initial backoff."""
    crash_loop_after: int = 5
    """Quick deaths in a row after which ``stack status`` reports a crash loop."""
    poll_interval_s: float = 0.5
    """How often the supervisor looks at the PID files."""


class SparkClusterSettings(_Section):
    """The standalone Spark cluster that ``featurestore cluster up`` starts on loopback.

    A master and ``workers`` workers from the pyspark package's own jars; a processor runs on
    it with ``--master spark://HOST:MASTER_PORT``.
    """

    host: str = LOOPBACK
    master_port: Port = 17077
    master_ui_port: Port = 18180
    workers: int = Field(default=2, ge=1, le=16)
    worker_cores: int = Field(default=1, ge=1)
    """Cores each worker offers (executors take them)."""
    worker_memory: str = "1g"
    """Memory each worker offers its executors (Spark's size syntax)."""
    worker_ui_port: Port = 18181
    """The first worker's UI port; worker k (from 0) listens on this + k."""
    executor_memory: str = "512m"
    """Memory of each executor of a processor on the cluster."""
    driver_host: str = LOOPBACK
    """The address executors reach a processor's driver at (its host on the cluster's network)."""
    ship_environment: bool = False
    """Executors run a packed copy of the driver's Python packages and the project's code,
    shipped with each application (``spark.archives``), instead of the interpreter at the
    driver's path on every node. The copy's ``bin/python`` links to the driver's base
    interpreter (``sys._base_executable``), which must exist at that path on every node, as
    with venv-pack; the Python minor version is checked when a processor starts."""
    environment_archive: str | None = None
    """A packed environment made beforehand (``featurestore cluster pack``), as a path or a URL
    every node can read (``hdfs://``, ``http://``); unset: packed from the driver's
    environment under the data folder when ``ship_environment`` is on, and reused while the
    installed packages stay the same."""
    checkpoint_dir: str | None = None
    """Where a processor on a cluster keeps Spark's streaming checkpoint: a folder every node
    sees (a shared mount; each application uses a subfolder, emptied at its start and stop).
    Unset: scratch on the driver (``/dev/shm``), which is enough for these queries (no Spark
    state store, so only the driver writes it, and a run starts from the state table)."""
    start_timeout_s: float = Field(default=120.0, gt=0)
    """How long a processor on a cluster waits at start for an executor to run its start-up
    check (Python version, environment) before it fails with a message saying why."""

    @model_validator(mode="after")
    def _worker_ports_fit(self) -> SparkClusterSettings:
        last = self.worker_ui_port + self.workers - 1
        if last > 65535:
            raise ValueError(
                f"FEATURESTORE_SPARK_CLUSTER__WORKER_UI_PORT={self.worker_ui_port}: worker k"
                f" listens on it + k, and the last of {self.workers} workers would pass 65535"
            )
        return self

    @property
    def master_url(self) -> str:
        """The ``--master`` of an application on this cluster."""
        return f"spark://{self.host}:{self.master_port}"


class SecuritySettings(_Section):
    """The secured local stack, and the client settings that reach it.

    With ``enabled`` (``FEATURESTORE_SECURITY__ENABLED=true``, or ``featurestore run --secure``)
    the local stack makes a CA and server certificates under ``<data_dir>/certs`` and starts
    Kafka with a SASL_SSL SCRAM-SHA-512 listener, Redis with an ACL user on a TLS port and
    PostgreSQL with ``ssl=on`` and scram-sha-256 over TLS only. Every client setting that is not
    given explicitly then defaults to reach it: Kafka ``SASL_SSL`` as ``featurestore``, Redis
    TLS as ``featurestore``, PostgreSQL ``sslmode=verify-full``, each trusting that CA. The
    local stack's passwords default to ``featurestore``; anything else sets its own (see the
    README's Security section). The schema registry's basic-auth user and the gRPC bearer
    tokens default to random ones made once per data folder, kept in
    ``<data_dir>/certs/credentials.json`` (mode 0600, :mod:`featurestore.security`): the
    registry and the gRPC server accept them and the stack's own clients send them.
    """

    enabled: bool = False
    """Start the local stack secured, and point the clients at it."""


_LOCAL_USER = "featurestore"


def _secured_defaults(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (raw settings) with the secured local stack's client defaults where unset."""
    raw = data.get("security", {})
    security = raw if isinstance(raw, SecuritySettings) else SecuritySettings.model_validate(raw)
    if not security.enabled:
        return data
    _a_folder(Path(data.get("data_dir", ".stack")))  # before its credentials are made there
    ca = str(Path(data.get("data_dir", ".stack")).resolve() / "certs" / "ca.pem")
    defaults: dict[str, dict[str, Any]] = {
        "kafka": {
            "security_protocol": "SASL_SSL",
            "username": _LOCAL_USER,
            "password": _LOCAL_USER,
            "ca_file": ca,
        },
        "redis": {"username": _LOCAL_USER, "password": _LOCAL_USER, "tls": True, "ca_file": ca},
        "postgres": {"sslmode": "verify-full", "ssl_root_cert": ca},
    }
    credentials = local_credentials(Path(data.get("data_dir", ".stack")), GRPC_SCOPES)
    defaults["schema_registry"] = {
        "basic_auth_users": credentials.registry_user_info,
        "basic_auth_user_info": credentials.registry_user_info,
    }
    defaults["service"] = {"auth_tokens": ",".join(credentials.token_entries())}
    defaults["dashboard"] = {"grpc_token": credentials.grpc_tokens[ALL_SCOPES]}
    out = dict(data)
    for section, values in defaults.items():
        given: Any = out.get(section, {})
        if isinstance(given, dict):  # an explicit section object is taken as it is
            out[section] = {**values, **given}
    return out


class ProcessorSettings(_Section):
    """How ``featurestore processors run`` reads its topic (``FEATURESTORE_PROCESSORS__*``).

    The command's ``--engine`` and ``--poll-ms`` override these; the stack's processors
    (``make run``) use them as they are.
    """

    engine: Literal["spark", "kafka"] = "kafka"
    """``kafka``: a Kafka consumer in the processor's process feeds each partition's step
    (local only; no micro-batch cost per cycle, so fresher rows: ``bench/RESULTS.md``).
    ``spark``: Spark Structured Streaming's micro-batches (needed for ``--master spark://``).
    Both run the same step, state table and fencing (``processors/README.md``)."""
    poll_ms: float = Field(default=5.0, gt=0)
    """Kafka engine: how long a poll waits for more records before the batch is processed."""
    commit_ms: int = Field(default=1000, ge=0)
    """Kafka engine: how often each partition's rows and state are committed to PostgreSQL;
    Redis is written after every batch (0: commit after every batch)."""
    switch_interval_ms: float = Field(default=1.0, gt=0)
    """The processor process's GIL switch interval (``sys.setswitchinterval``): the longest a
    thread that wants the GIL (a partition's step back from Redis, the loop back from its
    poll) waits while another thread computes. CPython's default is 5 ms; at 1 ms the rows
    reached Redis sooner at 5,000 events/s (``bench/RESULTS.md``, processors)."""


class VendorSettings(_Section):
    """The market-data vendor of ``featurestore ingest live|backfill|heal`` (Polygon.io / Massive).

    From ``FEATURESTORE_VENDOR__*``. The base URLs are configuration so that tests point the
    adapter at a local simulator; the API key is a secret, never logged nor put in a URL.
    """

    api_key: SecretStr = SecretStr("")
    """The vendor's API key (or :attr:`api_key_file`)."""
    api_key_file: Path | None = None
    """A file holding the API key (its first line), for a key kept out of the environment."""
    ws_url: str = "wss://socket.massive.com/stocks"
    """The WebSocket of the stocks cluster (``wss://socket.polygon.io/stocks`` is the same)."""
    rest_url: str = "https://api.massive.com"
    """The REST API's base URL (``https://api.polygon.io`` is the same)."""
    symbols: tuple[str, ...] = ()
    """Symbols of the live feed when ``--symbols`` is not given (comma-separated)."""
    quotes: bool = True
    """Whether the live feed subscribes to quotes (``Q.<symbol>``) besides trades."""
    reconnect_initial_s: float = Field(default=0.5, gt=0)
    """First wait before reconnecting the WebSocket; doubled per failed attempt, jittered."""
    reconnect_max_s: float = Field(default=30.0, gt=0)
    """The cap of the reconnect wait."""
    gap_overlap_s: float = Field(default=2.0, ge=0)
    """After a reconnect, the REST backfill of the missed span starts this long before the last
    record received (and ends this long after the reconnect)."""
    rest_page_limit: int = Field(default=50_000, ge=1, le=50_000)
    """Results per REST page (``limit``; the vendor's maximum is 50,000)."""
    rest_timeout_s: float = Field(default=30.0, gt=0)
    """Timeout of one REST request."""
    rest_retries: int = Field(default=8, ge=0)
    """Attempts after a failed REST request (a connection error, a 5xx) before giving up; a 429
    is waited out as its ``Retry-After`` says and counts too."""
    max_retry_after_s: float = Field(default=120.0, gt=0)
    """The longest ``Retry-After`` honoured; a longer one is waited this long."""
    heal_interval_s: float = Field(default=3600.0, ge=0)
    """How often the live feed looks for missing minutes and backfills them (0: never)."""
    heal_days: int = Field(default=1, ge=1)
    """Sessions the scheduled heal looks back over (1: today's, or the last one)."""
    heal_settle_s: float = Field(default=300.0, ge=0)
    """Minutes younger than this are not gaps yet (the processors are still writing them)."""
    bars_table: str = "bars_1m"
    """The offline table whose minutes the gap detector reads (``schema.table`` allowed)."""
    bars_key: str = "symbol"
    """Its symbol column."""

    _split_symbols = field_validator("symbols", mode="before")(_comma_separated)

    @field_validator("ws_url")
    @classmethod
    def _websocket(cls, value: str) -> str:
        return _url(value, ("wss", "ws"))

    _rest = field_validator("rest_url")(_http_url)

    def key(self) -> SecretStr:
        """The API key, from :attr:`api_key` or :attr:`api_key_file`.

        Raises:
            ConfigurationError: neither is set, or the file cannot be read.
        """
        if self.api_key.get_secret_value():
            return self.api_key
        if self.api_key_file is not None:
            try:
                text = self.api_key_file.read_text().strip()
            except OSError as exc:
                raise ConfigurationError(
                    f"FEATURESTORE_VENDOR__API_KEY_FILE: cannot read {self.api_key_file}:"
                    f" {exc.strerror}"
                ) from exc
            if text:
                return SecretStr(text.splitlines()[0].strip())
        raise ConfigurationError(
            "the vendor's API key is not set: FEATURESTORE_VENDOR__API_KEY or"
            " FEATURESTORE_VENDOR__API_KEY_FILE"
        )


class Settings(BaseModel):
    """All settings of the store, one object per process.

    Built by :func:`load_settings` from a mapping, never by reading ``os.environ`` behind the
    caller's back, so that tests and tools can hold several settings side by side.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_dir: Path = Path(".stack")
    """The one folder where the local stack keeps data, logs and PID files (made when first
    used; a path that is, or lies under, something other than a folder is refused)."""
    kafka: KafkaSettings = KafkaSettings()
    topics: TopicSettings = TopicSettings()
    postgres: PostgresSettings = PostgresSettings()
    redis: RedisSettings = RedisSettings()
    schema_registry: SchemaRegistrySettings = SchemaRegistrySettings()
    mlflow: MlflowSettings = MlflowSettings()
    grpc: GrpcSettings = GrpcSettings()
    service: ServiceSettings = ServiceSettings()
    supervisor: SupervisorSettings = SupervisorSettings()
    metrics: MetricsSettings = MetricsSettings()
    prometheus: PrometheusSettings = PrometheusSettings()
    tracing: TracingSettings = TracingSettings()
    dashboard: DashboardSettings = DashboardSettings()
    spark_cluster: SparkClusterSettings = SparkClusterSettings()
    processors: ProcessorSettings = ProcessorSettings()
    vendor: VendorSettings = VendorSettings()
    security: SecuritySettings = SecuritySettings()

    @model_validator(mode="before")
    @classmethod
    def _security_defaults(cls, data: Any) -> Any:
        return _secured_defaults(data) if isinstance(data, dict) else data

    @field_validator("data_dir")
    @classmethod
    def _data_dir_is_a_folder(cls, value: Path) -> Path:
        return _a_folder(value)


def _a_folder(path: Path) -> Path:
    """``path``, checked to be a folder or a place where one can be made.

    Raises:
        ValueError: it, or the nearest of its parents that exists, is not a folder.
    """
    for place in (path, *path.parents):
        if place.exists():
            if not place.is_dir():
                what = "it is" if place == path else f"{place} is"
                raise ValueError(
                    f"FEATURESTORE_DATA_DIR={path}: {what} a file, not a folder; name a folder"
                    " (made when first used)"
                )
            break
    return path


NOT_SETTINGS: Mapping[str, str] = {
    "FEATURESTORE_CONFIG": "names the settings file (this loader)",
    "FEATURESTORE_SHARED_DIR": "the shared data folder (featurestore/ingest/paths.py, tests)",
    "FEATURESTORE_TOKEN": "the bearer token the SDKs, their examples and the tests send",
    "FEATURESTORE_SPARK_DRIVER_MEMORY": "a processor's spark.driver.memory"
    " (processors/spark/session.py)",
    "FEATURESTORE_TEST_ARTIFACTS": "where the browser tests keep screenshots",
}
"""The ``FEATURESTORE_*`` environment variables that are no setting, each read from the process's
environment by its own code: the loader lets them pass (any other name of the prefix that is no
setting is refused as a typo). A new one is added here, with where it is read."""

_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from an environment mapping (``os.environ`` by default).

    Raises:
        ConfigurationError: a value is malformed, a variable names no setting, a line of the
            ``FEATURESTORE_CONFIG`` file is malformed or the file cannot be read; the message
            names the variable (and the file's line).

    ``FEATURESTORE_CONFIG`` may name a dotenv-style file whose ``FEATURESTORE_*`` lines are read
    first (see the module's docstring); variables in the mapping win over the file. A secret (a
    ``SecretStr`` field) may be given as a file instead, by the variable's name with ``_FILE``
    appended (``FEATURESTORE_KAFKA__PASSWORD_FILE=/run/secrets/kafka``), as orchestrators mount
    secrets.
    """
    env = dict(os.environ if environ is None else environ)
    config_file = env.get("FEATURESTORE_CONFIG")
    values: dict[str, str] = {}
    origins: dict[str, str] = {}
    if config_file:
        for key, (value, where) in _read_config_file(config_file).items():
            values[key], origins[key] = value, where
    for key, value in env.items():
        if key.startswith("FEATURESTORE_") and key not in NOT_SETTINGS:
            values[key] = value
            origins.pop(key, None)
    _refuse_unknown(values, origins)
    return _settings_from(_secret_files(values, origins), origins)


def _read_config_file(path: str) -> dict[str, tuple[str, str]]:
    """The ``FEATURESTORE_CONFIG`` file's variables, each with its value and ``FILE:LINE``.

    Raises:
        ConfigurationError: the file cannot be read, or lines are not ``KEY=value``; every bad
            line is named.
    """
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigurationError(f"FEATURESTORE_CONFIG: cannot read {path}: {why}") from exc
    found: dict[str, tuple[str, str]] = {}
    problems = []
    for number, raw in enumerate(text.splitlines(), 1):
        where = f"{path}:{number}"
        try:
            parsed = _config_line(raw)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
            continue
        if parsed is not None:
            found[parsed[0]] = (parsed[1], where)
    if problems:
        raise ConfigurationError("; ".join(problems))
    return found


def _config_line(raw: str) -> tuple[str, str] | None:
    """One line of the settings file as its key and value; None for a blank or comment line.

    Raises:
        ValueError: the line is not ``[export] FEATURESTORE_NAME=value``, saying why.
    """
    line = raw.strip()
    if not line or line.startswith("#"):
        return None
    if line.startswith("[") and line.endswith("]"):
        raise ValueError(
            f"{line!r} is a TOML table; this file holds KEY=value lines such as"
            " FEATURESTORE_KAFKA__PORT=19092"
        )
    words = line.split(maxsplit=1)
    if words[0] == "export" and len(words) == 2:
        line = words[1]
    key, sep, value = (part.strip() for part in line.partition("="))
    if not sep:
        raise ValueError("not of the form FEATURESTORE_NAME=value")
    if not _VARIABLE.fullmatch(key):
        raise ValueError(f"{key!r} is not a variable name (FEATURESTORE_NAME=value)")
    if not key.startswith("FEATURESTORE_"):
        raise ValueError(
            f"{key} is not a setting: this file holds FEATURESTORE_* variables such as"
            " FEATURESTORE_KAFKA__PORT=19092"
        )
    if key in NOT_SETTINGS:
        raise ValueError(f"{key} is read from the environment, not from this file")
    if value[:1] in ("'", '"'):
        quote = value[0]
        if len(value) < 2 or not value.endswith(quote) or quote in value[1:-1]:
            raise ValueError(f"{key}: the value's quote {quote} is not closed at the line's end")
        value = value[1:-1]
    return key, value


@functools.cache
def _setting_names() -> dict[str, tuple[str, ...]]:
    """Every setting's variable, upper-case, mapped to its place in :class:`Settings`."""
    names: dict[str, tuple[str, ...]] = {}
    for name, info in Settings.model_fields.items():
        model = info.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            names[f"FEATURESTORE_{name.upper()}"] = (name,)
            continue
        for field_name, field_info in model.model_fields.items():
            key = field_info.alias or field_name
            names[f"FEATURESTORE_{name.upper()}__{key.upper()}"] = (name, key)
    return names


def _section_models() -> dict[str, type[BaseModel]]:
    """The groups of settings, by variable (``FEATURESTORE_KAFKA``)."""
    models = {}
    for name, info in Settings.model_fields.items():
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            models[f"FEATURESTORE_{name.upper()}"] = info.annotation
    return models


def _canonical(key: str) -> str:
    """``key`` with the part after the prefix upper-cased (the loader ignores its case)."""
    return "FEATURESTORE_" + key.removeprefix("FEATURESTORE_").upper()


def _refuse_unknown(values: Mapping[str, str], origins: Mapping[str, str]) -> None:
    """Refuse a variable that names no setting, a group given a value, with the closest name.

    Raises:
        ConfigurationError: naming every such variable (and its line, when from the file).
    """
    names = _setting_names()
    secret_files = [f"{name}_FILE" for name in names if _is_secret(name)]
    known = [*names, *secret_files]
    sections = _section_models()
    problems = []
    for key in sorted(values):
        canonical = _canonical(key)
        if canonical in names or canonical in secret_files:
            continue
        if canonical in sections:
            problem = (
                f"{key} is given a value, but it is a group of settings: set its fields as"
                f" {canonical}__<FIELD> instead"
            )
        else:
            suffixes = [name.removeprefix("FEATURESTORE_") for name in known]
            close = difflib.get_close_matches(
                canonical.removeprefix("FEATURESTORE_"), suffixes, n=1, cutoff=0.75
            )
            hint = f" (did you mean FEATURESTORE_{close[0]}?)" if close else ""
            problem = f"{key} is not a setting{hint}"
        where = origins.get(key)
        problems.append(f"{where}: {problem}" if where else problem)
    if problems:
        raise ConfigurationError("; ".join(problems))


def _secret_files(values: Mapping[str, str], origins: dict[str, str]) -> dict[str, str]:
    """``values`` with each ``<secret>_FILE`` variable replaced by the secret its file holds."""
    out = dict(values)
    for key, path in values.items():
        target = key.removesuffix("_FILE")
        if target == key or not _is_secret(target):
            continue
        if target in values:
            raise ConfigurationError(f"{key} and {target} are both set: keep one")
        try:
            out[target] = Path(path).read_text().rstrip("\r\n")
        except OSError as exc:
            raise ConfigurationError(f"{key}: cannot read {path}: {exc.strerror}") from exc
        del out[key]
        if key in origins:
            origins[target] = origins[key]
    return out


def _is_secret(key: str) -> bool:
    """Whether ``FEATURESTORE_<SECTION>__<FIELD>`` names a ``SecretStr`` field."""
    info = _field_info(key)
    return info is not None and "SecretStr" in str(info.annotation)


def _field_info(key: str) -> Any:
    """The pydantic ``FieldInfo`` of the setting ``key`` names; None where it names none."""
    place = _setting_names().get(_canonical(key))
    if place is None:
        return None
    if len(place) == 1:
        return Settings.model_fields[place[0]]
    model = Settings.model_fields[place[0]].annotation
    assert isinstance(model, type) and issubclass(model, BaseModel)
    return next(
        info for name, info in model.model_fields.items() if (info.alias or name) == place[1]
    )


def _settings_from(values: Mapping[str, str], origins: Mapping[str, str]) -> Settings:
    """The settings from known ``FEATURESTORE_*`` variables (:func:`_refuse_unknown` has run).

    An empty value leaves a setting at its default (a list: empty; a secret: as given), a value
    of only whitespace is refused; other values lose their surrounding whitespace (not secrets).
    """
    nested: dict[str, Any] = {}
    names = _setting_names()
    problems = []
    for key, value in values.items():
        info = _field_info(key)
        if info is None:  # FEATURESTORE_CONFIG, or a name _refuse_unknown has let pass
            continue
        if "SecretStr" not in str(info.annotation):
            if value and not value.strip():
                why = "the value is blank (only whitespace): give one, or leave it empty"
                problems.append(_at(origins, key, f"{key}: {why} for the default"))
                continue
            value = value.strip()
            if not value and get_origin(info.annotation) is not tuple:
                continue
        *groups, name = names[_canonical(key)]
        node = nested
        for group in groups:
            node = node.setdefault(group, {})
        node[name] = value
    if problems:
        raise ConfigurationError("; ".join(problems))
    try:
        return Settings.model_validate(nested)
    except ValidationError as exc:
        messages = dict.fromkeys(_validation_message(error, origins) for error in exc.errors())
        raise ConfigurationError(f"invalid settings: {'; '.join(messages)}") from exc


def _at(origins: Mapping[str, str], key: str, message: str) -> str:
    """``message`` after the ``FILE:LINE`` of ``key`` where the settings file gave it."""
    where = origins.get(key) or origins.get(_canonical(key))
    return f"{where}: {message}" if where else message


def _validation_message(error: Any, origins: Mapping[str, str]) -> str:
    """One pydantic error as ``FEATURESTORE_<NAME>: what is wrong``.

    A message that names its variables itself (a check across fields) is kept as it is; an
    entry of a list is named by the list's variable.
    """
    message = str(error["msg"]).removeprefix("Value error, ")
    parts = [str(part) for part in error["loc"] if isinstance(part, str)][:2]
    variable = "FEATURESTORE_" + "__".join(parts).upper()
    if message.startswith("FEATURESTORE_") or not parts:
        return message
    origin = {_canonical(k): v for k, v in origins.items()}.get(variable)
    text = f"{variable}: {message}"
    return f"{origin}: {text}" if origin else text


def settings_env(settings: Settings) -> dict[str, str]:
    """The ``FEATURESTORE_*`` variables that rebuild ``settings`` in a child process."""
    env: dict[str, str] = {"FEATURESTORE_DATA_DIR": str(settings.data_dir.resolve())}
    dumped = settings.model_dump(by_alias=True, exclude={"data_dir"})
    for section, fields in dumped.items():
        for key, value in fields.items():
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            if isinstance(value, tuple | list):
                value = ",".join(
                    v.get_secret_value() if isinstance(v, SecretStr) else str(v) for v in value
                )
            env[f"FEATURESTORE_{section.upper()}__{key.upper()}"] = str(value)
    return env

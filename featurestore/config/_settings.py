"""Settings of the store's own processes, and :class:`Settings`, which holds every section."""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any
from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import SecretStr
from pydantic import field_validator
from pydantic import model_validator

from featurestore.config._servers import KafkaSettings
from featurestore.config._servers import MlflowSettings
from featurestore.config._servers import PostgresSettings
from featurestore.config._servers import RedisSettings
from featurestore.config._servers import SchemaRegistrySettings
from featurestore.config._servers import TopicSettings
from featurestore.config._values import LOOPBACK
from featurestore.config._values import Port
from featurestore.config._values import PortOrFree
from featurestore.config._values import _comma_separated
from featurestore.config._values import _each_entry
from featurestore.config._values import _http_url
from featurestore.config._values import _secret_entries
from featurestore.config._values import _Section
from featurestore.config._values import _url
from featurestore.errors import ConfigurationError
from featurestore.security import ALL_SCOPES
from featurestore.security import local_credentials

__all__ = [
    "GRPC_SCOPES",
    "DashboardSettings",
    "GrpcSettings",
    "MetricsSettings",
    "ProcessorSettings",
    "PrometheusSettings",
    "SecuritySettings",
    "ServiceSettings",
    "Settings",
    "SparkClusterSettings",
    "SupervisorSettings",
    "TokenGrant",
    "TracingSettings",
    "VendorSettings",
    "parse_token_entry",
]

GRPC_SCOPES = ("features:read", "predict", "datasets:export", "anomalies:subscribe")
"""What a bearer token may be allowed to do, one scope per kind of call (see
``featurestore/service/auth.py`` for the methods of each)."""
_DIGEST_PREFIX = "sha256:"


@dataclass(frozen=True)
class TokenGrant:
    """One accepted bearer token: its SHA-256 digest (never the token) and its scopes."""

    digest: bytes = field(repr=False)
    scopes: frozenset[str]


def _unknown_scope(place: int, scope: str) -> str:
    """How a refusal names a word that is no scope ("" for a scope).

    Itself when it is close to one (a typo), else only its place: with entries separated by a
    space instead of a comma, the next entry's token stands there, and no message shows a token.
    """
    if scope in GRPC_SCOPES or scope == "*":
        return ""
    close = difflib.get_close_matches(scope, GRPC_SCOPES, n=1, cutoff=0.7)
    return f"{scope!r} (did you mean {close[0]!r}?)" if close else f"word {place} (not shown)"


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
    unknown = [_unknown_scope(i, scope) for i, scope in enumerate(scopes, 2)]
    if any(unknown):
        raise ValueError(
            f"{which} has unknown scope(s) {', '.join(u for u in unknown if u)}: the scopes are"
            f" {', '.join(GRPC_SCOPES)}, or '*' for all (entries are separated by commas)"
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
    predictor_port: PortOrFree = 19474
    """``featurestore predict --follow``: the prediction feed."""
    targets_dir: Path | None = None
    """Where processes on ports of their own choosing register (default: the data dir's
    ``prometheus/targets``)."""
    drift_interval_s: float = Field(default=300.0, gt=0)
    """How often the monitor recomputes the PSI of each model input."""
    drift_window_minutes: int = Field(default=60, ge=1)
    """The live window the monitor compares with each model's training set."""
    drift_models: tuple[str, ...] | None = None
    """The registered models (alias ``champion``) whose inputs the monitor watches
    (comma-separated; empty: none). Unset, every registered model that has a champion: one
    without a drift reference is passed over, said once at INFO."""
    lag_interval_s: float = Field(default=5.0, gt=0)
    """How often the monitor measures each processor's lag against its topic."""
    lag_processors: tuple[str, ...] | None = None
    """The processors whose lag the monitor measures (comma-separated; empty: none). Unset, the
    stack's: one per event topic, a topic applied since included
    (:func:`featurestore.topic_processors.topic_processors`)."""

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
    rpc_error_min_calls: int = Field(default=20, ge=1)
    """RpcErrorsHigh: only for a method called at least this often in the rate window (one failed
    call of a method seldom called is 100% of its calls, not a service failing)."""
    drift_psi_alert: float = Field(default=0.2, gt=0)
    """DriftHigh: the PSI of a model input above this."""
    alert_for_s: float = Field(default=60.0, ge=0)
    """How long a condition must hold before its alert fires (the rules' ``for``)."""
    rate_window_s: float = Field(default=120.0, gt=0)
    """The window of the rates and quantiles in the rules (at least 2 scrape intervals)."""

    @model_validator(mode="after")
    def _window_holds_two_scrapes(self) -> PrometheusSettings:
        # rate() needs two samples in its window: a shorter one makes every rule silent.
        if self.rate_window_s < 2 * self.scrape_interval_s:
            raise ValueError(
                f"FEATURESTORE_PROMETHEUS__RATE_WINDOW_S={self.rate_window_s:g} is shorter than two"
                f" scrape intervals (FEATURESTORE_PROMETHEUS__SCRAPE_INTERVAL_S="
                f"{self.scrape_interval_s:g}): rates over it would have no value"
            )
        return self

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
    models: tuple[str, ...] | None = None
    """The registered models whose champion, predictions and drift the models panel shows
    (comma-separated; empty: none). Unset, every registered model that has a champion."""
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
    and drops the connection when no answer comes within :attr:`keepalive_timeout_s`: a
    subscriber that vanished without a reset stops holding its stream and the stream's Kafka
    consumer."""
    keepalive_timeout_s: float = Field(default=20.0, ge=1.0)
    """How long the server waits for the answer to one of its pings before it drops the
    connection, and the calls on it. Raise it for clients behind slow links; a dead subscriber
    is noticed after :attr:`keepalive_s` plus this."""
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
    preload_champions: bool = True
    """Load the champion of each registered model (up to 16) in the background at start, so
    that the first Predict after a restart does not wait for MLflow and the model's files."""
    definitions_refresh_s: float = Field(default=5.0, ge=0)
    """How often the server asks Feast's registry whether the definitions changed (one SQL
    query); a ``registry apply`` is served within this time, without a restart. 0: never."""
    max_export_rows: int = 10_000_000
    """The most entity rows one ExportTrainingDataset call may ask for."""
    max_concurrent_exports: int = Field(default=4, ge=1)
    """ExportTrainingDataset calls run at once (each holds the offline store's PostgreSQL
    connections and up to three chunks of rows); one more: RESOURCE_EXHAUSTED, retry later."""
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

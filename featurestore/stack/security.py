"""What the secured local stack needs before its servers start (``FEATURESTORE_SECURITY__ENABLED``).

Each server module asks :func:`local_security` in its ``prepare``: None when the stack runs
open, else the certificates (made on first use), after checking that the settings describe a
stack this module can secure. The servers then listen so:

- Kafka: a ``SASL_SSL`` listener with SCRAM-SHA-512 (the user is created when the storage is
  formatted, ``kafka-storage format --add-scram``); the KRaft controller listener stays
  plaintext on loopback, reached only by the node itself.
- Redis: TLS only (``port 0``, ``tls-port``), the ``default`` user off and one ACL user.
- PostgreSQL: ``ssl=on`` and a ``pg_hba.conf`` that accepts scram-sha-256 over TLS only.
"""

from __future__ import annotations

from collections.abc import Callable

from featurestore.config import Settings
from featurestore.errors import BackendUnavailableError
from featurestore.errors import ConfigurationError
from featurestore.errors import FeatureStoreError
from featurestore.stack.certs import Certificates
from featurestore.stack.certs import ensure_certificates

__all__ = ["check_access", "local_security"]


def local_security(settings: Settings) -> Certificates | None:
    """The certificates of a secured local stack; None when security is off.

    Raises:
        ConfigurationError: security is on but the settings ask for something the local stack
            does not secure (a Redis Cluster, more than one Kafka node, plaintext clients).
    """
    if not settings.security.enabled:
        return None
    problems = []
    if settings.redis.cluster:
        problems.append("FEATURESTORE_REDIS__CLUSTER (the local Redis Cluster runs without TLS)")
    if settings.kafka.brokers > 1:
        problems.append("FEATURESTORE_KAFKA__BROKERS > 1 (one secured local node only)")
    if settings.kafka.security_protocol != "SASL_SSL" or not settings.redis.tls:
        problems.append(
            "plaintext clients: FEATURESTORE_KAFKA__SECURITY_PROTOCOL must be SASL_SSL and "
            "FEATURESTORE_REDIS__TLS true"
        )
    if settings.kafka.password is None or settings.redis.password is None:
        problems.append("no password for the Kafka or Redis user")
    if problems:
        raise ConfigurationError(
            "FEATURESTORE_SECURITY__ENABLED: the local stack cannot start secured with "
            + "; ".join(problems)
        )
    return ensure_certificates(settings)


def check_access(settings: Settings, timeout_s: float = 10.0) -> dict[str, str | None]:
    """Connect to Kafka, Redis and PostgreSQL as the settings say; each one's refusal or None.

    A refusal names the backend, the user and the cause (a wrong password, a certificate that
    does not verify, a server away), never the password.
    """
    return {
        "kafka": _refusal(lambda: _kafka(settings, timeout_s)),
        "redis": _refusal(lambda: _redis(settings, timeout_s)),
        "postgres": _refusal(lambda: _postgres(settings, timeout_s)),
    }


def _refusal(check: Callable[[], None]) -> str | None:
    try:
        check()
    except FeatureStoreError as exc:
        return str(exc)
    return None


def _kafka(settings: Settings, timeout_s: float) -> None:
    from featurestore.ingest.kafka import wait_for_brokers

    wait_for_brokers(settings.kafka.connection, timeout_s=timeout_s)


def _redis(settings: Settings, timeout_s: float) -> None:
    import redis

    cfg = settings.redis
    host, port = (cfg.host, cfg.port) if not cfg.cluster else cfg.startup_nodes[0]
    client = redis.Redis(
        host=host, port=port, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
        **cfg.client_kwargs(),
    )  # fmt: skip
    try:
        client.ping()
    except redis.exceptions.AuthenticationError as exc:
        raise ConfigurationError(f"{cfg.describe(host, port)} refused the user: {exc}") from exc
    except redis.RedisError as exc:
        raise BackendUnavailableError(f"{cfg.describe(host, port)}: {exc}") from exc
    finally:
        client.close()


def _postgres(settings: Settings, timeout_s: float) -> None:
    import psycopg

    pg = settings.postgres
    try:
        with psycopg.connect(pg.dsn, connect_timeout=max(1, int(timeout_s))):
            pass
    except psycopg.OperationalError as exc:
        cause = " ".join(str(exc).split()) or "no answer"
        where = f"offline store (PostgreSQL) at {pg.host}:{pg.port}, user {pg.user!r}"
        error = ConfigurationError if _is_refusal(cause) else BackendUnavailableError
        raise error(f"{where}: {cause}") from exc


def _is_refusal(cause: str) -> bool:
    """Whether libpq's message is one a retry cannot fix (credentials, TLS, access rules)."""
    words = ("password authentication failed", "no pg_hba.conf entry", "certificate", "ssl")
    return any(word in cause.lower() for word in words)

"""One Kafka connection: where the brokers are and how to authenticate, for every client.

Every Kafka client of the store (producers, consumers and admin clients of confluent-kafka, and
Spark's Kafka source) takes its configuration from a :class:`KafkaConnection`, built once from
``Settings.kafka`` (``settings.kafka.connection``). The call site adds only what is its
own (a group id, batching, timeouts); the bootstrap servers and the security fields (protocol,
SASL mechanism and credentials, the CA that signs the brokers' certificates) come from here, so
that a secured cluster is reached by every client or by none.

The password is a :class:`~pydantic.SecretStr`: it is in the dictionaries handed to the
libraries and nowhere else (``repr``, ``str`` and error messages show the user only).

A client whose configuration names :data:`CLIENT_LOG` (``"logger": CLIENT_LOG``) sends
librdkafka's own lines through Python's logging instead of writing them to stderr itself, when
the client is polled or closed, each distinct line at most once a minute: with the brokers
away, librdkafka says "Connect to ... failed" at every reconnect, 580 times in the 30 s a
``featurestore replay`` waited, before the command's own one-line error.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any
from typing import Literal
from typing import TypeVar

from pydantic import SecretStr

from featurestore.errors import ConfigurationError

__all__ = ["CLIENT_LOG", "KafkaConnection", "SecurityProtocol", "create_client"]

SecurityProtocol = Literal["PLAINTEXT", "SASL_SSL"]

_AUTH_ERRORS = ("authentication", "sasl", "ssl handshake", "certificate")

_Client = TypeVar("_Client")

_SETTING_OF = {
    "bootstrap.servers": "FEATURESTORE_KAFKA__BOOTSTRAP_SERVERS",
    "security.protocol": "FEATURESTORE_KAFKA__SECURITY_PROTOCOL",
    "sasl.mechanism": "FEATURESTORE_KAFKA__SASL_MECHANISM",
    "sasl.username": "FEATURESTORE_KAFKA__USERNAME",
    "sasl.password": "FEATURESTORE_KAFKA__PASSWORD",
    "ssl.ca.location": "FEATURESTORE_KAFKA__CA_FILE",
}
"""The setting each property of :meth:`KafkaConnection.client_config` comes from."""
_SECRET = frozenset({"sasl.password"})


class _OncePerInterval(logging.Filter):
    """Lets a record through unless the same text passed within ``interval_s``."""

    def __init__(self, interval_s: float, remembered: int = 1024) -> None:
        super().__init__()
        self._interval_s = interval_s
        self._remembered = remembered
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether to log ``record`` (its text not logged in the last ``interval_s``)."""
        text, now = record.getMessage(), time.monotonic()
        with self._lock:
            last = self._last.get(text)
            if last is not None and now - last < self._interval_s:
                return False
            if len(self._last) >= self._remembered:
                self._last.clear()
            self._last[text] = now
        return True


CLIENT_LOG = logging.getLogger("featurestore.kafka.client")
"""librdkafka's lines of the clients that name it (module docstring)."""
CLIENT_LOG.addFilter(_OncePerInterval(60.0))


@dataclass(frozen=True)
class KafkaConnection:
    """The bootstrap servers and the security of one Kafka cluster."""

    bootstrap: str
    """Comma-separated ``host:port`` of brokers."""
    security_protocol: SecurityProtocol = "PLAINTEXT"
    """``PLAINTEXT`` (the local stack's default) or ``SASL_SSL`` (SCRAM over TLS)."""
    sasl_mechanism: Literal["SCRAM-SHA-512"] = "SCRAM-SHA-512"
    """The SASL mechanism with ``SASL_SSL``."""
    username: str | None = None
    """The SCRAM user with ``SASL_SSL``."""
    password: SecretStr | None = field(default=None, repr=False)
    """The SCRAM user's password with ``SASL_SSL``; never shown."""
    ca_file: Path | None = None
    """PEM file of the CA that signed the brokers' certificates; None: the system's CAs."""

    def __post_init__(self) -> None:
        """Refuse a SASL_SSL connection without its credentials, naming the settings."""
        if self.security_protocol == "SASL_SSL" and (not self.username or self.password is None):
            raise ConfigurationError(
                "Kafka: FEATURESTORE_KAFKA__SECURITY_PROTOCOL=SASL_SSL needs "
                "FEATURESTORE_KAFKA__USERNAME and FEATURESTORE_KAFKA__PASSWORD "
                "(or FEATURESTORE_KAFKA__PASSWORD_FILE)"
            )

    @property
    def secured(self) -> bool:
        """Whether clients authenticate and encrypt."""
        return self.security_protocol != "PLAINTEXT"

    def describe(self) -> str:
        """Where and as whom, for messages (never the password)."""
        if not self.secured:
            return f"Kafka at {self.bootstrap}"
        return f"Kafka at {self.bootstrap} (user {self.username!r}, {self.security_protocol})"

    def security_config(self) -> dict[str, Any]:
        """The security properties of librdkafka alone (empty with PLAINTEXT)."""
        if not self.secured:
            return {}
        assert self.password is not None  # checked in __post_init__
        config: dict[str, Any] = {
            "security.protocol": self.security_protocol,
            "sasl.mechanism": self.sasl_mechanism,
            "sasl.username": self.username,
            "sasl.password": self.password.get_secret_value(),
            # The brokers' certificates name the host clients connect to.
            "ssl.endpoint.identification.algorithm": "https",
        }
        if self.ca_file is not None:
            config["ssl.ca.location"] = str(self.ca_file)
        return config

    def client_config(self, **extra: Any) -> dict[str, Any]:
        """Any confluent-kafka client's configuration: bootstrap, security, then ``extra``.

        ``extra`` takes librdkafka's dotted names as a mapping passed with ``**``.
        """
        return {"bootstrap.servers": self.bootstrap, **self.security_config(), **extra}

    def producer(self, **extra: Any) -> dict[str, Any]:
        """A :class:`confluent_kafka.Producer`'s configuration."""
        return self.client_config(**extra)

    def consumer(self, group_id: str, **extra: Any) -> dict[str, Any]:
        """A :class:`confluent_kafka.Consumer`'s configuration in group ``group_id``."""
        return self.client_config(**{"group.id": group_id, **extra})

    def admin(self, **extra: Any) -> dict[str, Any]:
        """An :class:`confluent_kafka.admin.AdminClient`'s configuration."""
        return self.client_config(**extra)

    def spark_options(self) -> dict[str, str]:
        """The ``kafka.*`` options of Spark's Kafka source (the Java client's property names).

        The CA is given as a PEM trust store (Kafka's Java client reads PEM since 2.7).
        """
        options = {"kafka.bootstrap.servers": self.bootstrap}
        if not self.secured:
            return options
        assert self.password is not None
        user = _jaas_quote(self.username or "")
        secret = _jaas_quote(self.password.get_secret_value())
        options |= {
            "kafka.security.protocol": self.security_protocol,
            "kafka.sasl.mechanism": self.sasl_mechanism,
            "kafka.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required "
                f'username="{user}" password="{secret}";'
            ),
        }
        if self.ca_file is not None:
            options |= {
                "kafka.ssl.truststore.type": "PEM",
                "kafka.ssl.truststore.location": str(self.ca_file),
            }
        return options

    def refusal(self, reason: str) -> ConfigurationError | None:
        """A clear error when ``reason`` (a librdkafka error text) is an authentication refusal.

        A wrong password or an untrusted certificate cannot be fixed by retrying; the error
        names the backend, the user and the cause, never the password.
        """
        lowered = reason.lower()
        if not any(word in lowered for word in _AUTH_ERRORS):
            return None
        return ConfigurationError(f"{self.describe()} refused the connection: {reason}")


def create_client(
    client_type: Callable[[dict[str, Any]], _Client], config: Mapping[str, Any]
) -> _Client:
    """``client_type(config)`` (a confluent-kafka client), its refusal of ``config`` named.

    librdkafka checks a configuration when a client is created, and refuses one it cannot use
    (a CA file that is missing or not PEM, an unknown property, a value out of range) with a
    ``KafkaException``, before any broker is asked. Every client of the store is to be created
    through here, so that the refusal is a :class:`ConfigurationError` naming the property and
    the setting it came from (never the password)::

        Kafka client settings refused: ssl.ca.location failed: ... (/nope.pem: No such file
        or directory): FEATURESTORE_KAFKA__CA_FILE=/nope.pem

    librdkafka writes what it finds wrong to stderr before refusing, unless ``config`` names a
    ``logger`` (:data:`CLIENT_LOG`): a command's clients name it, so that its refusal is one
    line. A long-lived client that is never polled (an admin client kept for probes) must not:
    its lines would wait in a queue that only polling empties.

    Raises:
        ConfigurationError: librdkafka refused the configuration.
    """
    from confluent_kafka import KafkaException

    try:
        return client_type(dict(config))
    except KafkaException as exc:
        raise _settings_refused(exc, config) from exc


def _settings_refused(exc: Exception, config: Mapping[str, Any]) -> ConfigurationError:
    """The error for librdkafka refusing ``config`` at a client's creation (create_client)."""
    error = exc.args[0] if exc.args else exc
    text = error.str() if hasattr(error, "str") else str(error)
    reason = " ".join(str(text).split())
    # "Failed to create consumer: ssl.ca.location failed: ..." -> what failed
    if reason.startswith("Failed to create ") and ": " in reason:
        reason = reason.split(": ", 1)[1]
    refused = [name for name in config if name in reason]
    named = max(refused, key=len) if refused else None
    where = ""
    if named == "ssl.ca.location":
        reason += _file_problem(Path(str(config[named])))
    if named in _SETTING_OF:
        value = "(not shown)" if named in _SECRET else config[named]
        where = f": {_SETTING_OF[named]}={value}"
    return ConfigurationError(f"Kafka client settings refused: {reason}{where}")


def _file_problem(path: Path) -> str:
    """What is wrong with a file librdkafka could not load, as " (PATH: reason)"; "" if unseen."""
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        return f" ({path}: {exc.strerror or type(exc).__name__})"
    return ""


def _jaas_quote(value: str) -> str:
    """``value`` inside a JAAS double-quoted string."""
    return value.replace("\\", "\\\\").replace('"', '\\"')

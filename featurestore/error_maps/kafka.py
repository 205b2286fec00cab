"""confluent-kafka's errors as the store's.

librdkafka reports an error with a code (``KafkaError``) inside a ``KafkaException``; the code
says whether Kafka is away (retry) or refuses the request (fix it). Codes not named here are
taken as Kafka being away, as a broker restarting or a partition moving shows them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from confluent_kafka import KafkaError
from confluent_kafka import KafkaException

from featurestore.error_maps._text import one_line
from featurestore.errors import BackendUnavailableError
from featurestore.errors import ConfigurationError
from featurestore.errors import FeatureStoreError
from featurestore.errors import NotFoundError

if TYPE_CHECKING:
    from featurestore.kafka_connection import KafkaConnection

__all__ = ["kafka_error", "kafka_errors"]

_REFUSED = frozenset(
    {
        KafkaError._AUTHENTICATION,
        KafkaError._SSL,
        KafkaError.SASL_AUTHENTICATION_FAILED,
        KafkaError.UNSUPPORTED_SASL_MECHANISM,
        KafkaError.ILLEGAL_SASL_STATE,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
    }
)
"""Credentials or authorization refused: a setting or an ACL has to change."""
_INVALID = frozenset(
    {
        KafkaError._INVALID_ARG,
        KafkaError.INVALID_CONFIG,
        KafkaError.POLICY_VIOLATION,
        KafkaError.INVALID_REPLICATION_FACTOR,
        KafkaError.INVALID_REPLICA_ASSIGNMENT,
        KafkaError.INVALID_PARTITIONS,
        KafkaError.TOPIC_EXCEPTION,
    }
)
"""A request Kafka refuses as invalid (a topic's name, partitions, replication or config)."""
_UNKNOWN = frozenset(
    {KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC, KafkaError._UNKNOWN_PARTITION}
)
_AUTH_WORDS = ("authentication", "sasl", "ssl handshake", "certificate")
"""Words of librdkafka's refusals that come with a transport code (a failed SASL handshake)."""


def kafka_error(
    exc: KafkaException | KafkaError,
    doing: str,
    connection: KafkaConnection | None = None,
) -> FeatureStoreError:
    """The store's error for ``exc``, met while ``doing`` (``"listing topic trades"``).

    ``connection`` names the cluster (and user) in the message; never its password.
    """
    error = exc if isinstance(exc, KafkaError) else (exc.args[0] if exc.args else None)
    where = connection.describe() if connection is not None else "Kafka"
    if not isinstance(error, KafkaError):
        return BackendUnavailableError(f"{where} ({doing}): {one_line(error or exc)}")
    code, reason = error.code(), one_line(error.str())
    text = f"{where} ({doing}): {reason}"
    if code in _REFUSED or any(word in reason.lower() for word in _AUTH_WORDS):
        return ConfigurationError(f"{where} refused the connection ({doing}): {reason}")
    if code in _INVALID:
        return ConfigurationError(text)
    if code in _UNKNOWN:
        return NotFoundError(text)
    return BackendUnavailableError(text)


@contextmanager
def kafka_errors(doing: str, connection: KafkaConnection | None = None) -> Iterator[None]:
    """Raise ``KafkaException`` inside the block as the store's (see :func:`kafka_error`)."""
    try:
        yield
    except KafkaException as exc:
        raise kafka_error(exc, doing, connection) from exc

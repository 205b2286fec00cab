"""Libraries' errors translated into the store's own, one mapping per library.

Like httpx's map of httpcore's exceptions: each edge that calls a library wraps the call (or its
``except``) in that library's mapping, so that what leaves the edge is a
:class:`~featurestore.errors.FeatureStoreError` with a one-line message naming the backend and
what was being done, chained to the library's error (``raise ... from exc``). The mapping, not
each call site, decides what retrying can fix (``retryable``):

- :mod:`.postgres`: psycopg. A refused login is a :class:`ConfigurationError` (a password or
  ``pg_hba.conf`` has to change), a lost or refused connection a
  :class:`BackendUnavailableError`, a missing table a :class:`ConfigurationError`.
- :mod:`.kafka`: confluent-kafka. Refused credentials or authorization, and a request Kafka
  finds invalid (a topic's name, replication, config), are :class:`ConfigurationError`; an
  unknown topic is :class:`NotFoundError`; anything else (brokers down, timeouts) is
  :class:`BackendUnavailableError`.
- :mod:`.feast`: Feast and its SQL registry (SQLAlchemy over psycopg). The database's errors
  go through the PostgreSQL mapping; Feast refusing an object is a :class:`ConfigurationError`,
  Feast not finding one a :class:`NotFoundError`.
"""

from featurestore.error_maps.feast import registry_error
from featurestore.error_maps.feast import registry_errors
from featurestore.error_maps.kafka import kafka_error
from featurestore.error_maps.kafka import kafka_errors
from featurestore.error_maps.postgres import postgres_error
from featurestore.error_maps.postgres import postgres_errors
from featurestore.error_maps.postgres import refused_login

__all__ = [
    "kafka_error",
    "kafka_errors",
    "postgres_error",
    "postgres_errors",
    "refused_login",
    "registry_error",
    "registry_errors",
]

"""A Confluent-compatible schema registry whose state lives in a compacted Kafka topic.

Confluent's clients (``SchemaRegistryClient``, ``AvroSerializer``, ``AvroDeserializer``) work
against it unchanged. Run it with ``python -m featurestore.schema_registry`` or
``featurestore schema-registry serve``.

Layout, one job per module: ``avro_schema`` (parse, validate, normal form), ``compatibility``
(levels and checks), ``records`` (the log's records), ``state`` (the in-memory model, changed
only by applying records), ``log``/``kafka_log`` (persistence: a fenced writer and a tail),
``registry`` (commands), ``cluster`` (several instances: election, read barrier, health),
``forwarding`` (a follower's writes to the leader), ``routes`` (REST routes and error bodies,
one module per part of the API), ``app`` (the application of the routes), ``server``
(application factory and ``serve``).
"""

from __future__ import annotations

from featurestore.schema_registry.avro_schema import ParsedSchema
from featurestore.schema_registry.avro_schema import parse_schema
from featurestore.schema_registry.compatibility import CompatibilityLevel
from featurestore.schema_registry.compatibility import check_compatibility
from featurestore.schema_registry.compatibility import reader_can_read
from featurestore.schema_registry.log import MemoryRecordLog
from featurestore.schema_registry.log import RecordLog
from featurestore.schema_registry.registry import SchemaRegistry
from featurestore.schema_registry.server import create_app
from featurestore.schema_registry.server import serve

__all__ = [
    "CompatibilityLevel",
    "MemoryRecordLog",
    "ParsedSchema",
    "RecordLog",
    "SchemaRegistry",
    "check_compatibility",
    "create_app",
    "parse_schema",
    "reader_can_read",
    "serve",
]

"""The records of the registry's compacted Kafka log, and their JSON encoding.

Keys and values follow Confluent's ``_schemas`` layout, so the topic reads the same to anyone who
knows that format:

* ``{"keytype":"SCHEMA","subject":S,"version":V,"magic":1}`` →
  ``{"subject":S,"version":V,"id":N,"schema":"...","deleted":false}``; a soft delete rewrites
  the value with ``"deleted":true``; a permanent delete writes a tombstone (null value).
* ``{"keytype":"CONFIG","subject":S|null,"magic":0}`` → ``{"compatibilityLevel":"FULL"}``;
  a tombstone removes the level (``null`` subject: the global level).

One record type is this registry's own: ``{"keytype":"ID_WATERMARK","magic":0}`` →
``{"maxId":N}``, written before a permanent delete. Compaction may drop the tombstoned schema
record that held the highest id; the watermark keeps ids from being handed out twice.
Another is ``{"keytype":"LEADER","magic":0}`` → ``{"url":U,"instance":I,"generation":G}``,
written by an instance as it takes the lead (see :mod:`featurestore.schema_registry.cluster`):
followers forward writes to ``url``; a reader of the log also sees when leadership changed.
Key types this registry does not know (Confluent's ``NOOP``, ``MODE``...) are skipped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from featurestore.schema_registry.compatibility import CompatibilityLevel
from featurestore.schema_registry.errors import InvalidCompatibilityLevelError
from featurestore.schema_registry.errors import StoreError

__all__ = [
    "ConfigEntry",
    "ConfigKey",
    "IdWatermark",
    "IdWatermarkKey",
    "LeaderEntry",
    "LeaderKey",
    "LogRecord",
    "RecordKey",
    "RecordValue",
    "SchemaEntry",
    "SchemaKey",
    "decode_record",
    "encode_record",
]


@dataclass(frozen=True)
class SchemaKey:
    """Names one version of one subject."""

    subject: str
    version: int


@dataclass(frozen=True)
class SchemaEntry:
    """A version of a subject: which schema id it holds and whether it is soft-deleted."""

    subject: str
    version: int
    schema_id: int
    schema: str
    deleted: bool = False
    schema_type: str = "AVRO"


@dataclass(frozen=True)
class ConfigKey:
    """Names the compatibility level of a subject, or the global one when ``subject`` is None."""

    subject: str | None


@dataclass(frozen=True)
class ConfigEntry:
    """A configured compatibility level."""

    compatibility: CompatibilityLevel


@dataclass(frozen=True)
class IdWatermarkKey:
    """Names the highest schema id ever handed out."""


@dataclass(frozen=True)
class IdWatermark:
    """The highest schema id ever handed out."""

    max_id: int


@dataclass(frozen=True)
class LeaderKey:
    """Names the instance that leads (the only one that writes)."""


@dataclass(frozen=True)
class LeaderEntry:
    """Who leads since this record: where to send writes, and the how-manyth leader it is."""

    url: str
    instance: str
    generation: int


RecordKey = SchemaKey | ConfigKey | IdWatermarkKey | LeaderKey
RecordValue = SchemaEntry | ConfigEntry | IdWatermark | LeaderEntry


@dataclass(frozen=True)
class LogRecord:
    """One record of the log; ``value`` None is a tombstone."""

    key: RecordKey
    value: RecordValue | None


def _dumps(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def encode_record(record: LogRecord) -> tuple[bytes, bytes | None]:
    """The Kafka key and value bytes of ``record``.

    Keys are encoded with a fixed field order: compaction compares key bytes.
    """
    key = record.key
    if isinstance(key, SchemaKey):
        key_json: dict[str, Any] = {
            "keytype": "SCHEMA",
            "subject": key.subject,
            "version": key.version,
            "magic": 1,
        }
    elif isinstance(key, ConfigKey):
        key_json = {"keytype": "CONFIG", "subject": key.subject, "magic": 0}
    elif isinstance(key, LeaderKey):
        key_json = {"keytype": "LEADER", "magic": 0}
    else:
        key_json = {"keytype": "ID_WATERMARK", "magic": 0}
    value = record.value
    if value is None:
        return _dumps(key_json), None
    if isinstance(value, SchemaEntry):
        value_json: dict[str, Any] = {
            "subject": value.subject,
            "version": value.version,
            "id": value.schema_id,
            "schema": value.schema,
            "deleted": value.deleted,
        }
        if value.schema_type != "AVRO":
            value_json["schemaType"] = value.schema_type
    elif isinstance(value, ConfigEntry):
        value_json = {"compatibilityLevel": value.compatibility.value}
    elif isinstance(value, LeaderEntry):
        value_json = {"url": value.url, "instance": value.instance, "generation": value.generation}
    else:
        value_json = {"maxId": value.max_id}
    return _dumps(key_json), _dumps(value_json)


def decode_record(key: bytes, value: bytes | None) -> LogRecord | None:
    """The record encoded in a Kafka message, or None for a key type this registry ignores.

    Raises:
        StoreError: The message is not a record of this format.
    """
    try:
        key_json = json.loads(key)
        value_json = None if value is None else json.loads(value)
        keytype = key_json["keytype"]
        if keytype == "SCHEMA":
            schema_key = SchemaKey(str(key_json["subject"]), int(key_json["version"]))
            if value_json is None:
                return LogRecord(schema_key, None)
            entry = SchemaEntry(
                subject=str(value_json["subject"]),
                version=int(value_json["version"]),
                schema_id=int(value_json["id"]),
                schema=str(value_json["schema"]),
                deleted=bool(value_json.get("deleted", False)),
                schema_type=str(value_json.get("schemaType") or "AVRO"),
            )
            return LogRecord(schema_key, entry)
        if keytype == "CONFIG":
            subject = key_json.get("subject")
            config_key = ConfigKey(None if subject is None else str(subject))
            if value_json is None:
                return LogRecord(config_key, None)
            level = CompatibilityLevel.parse(value_json["compatibilityLevel"])
            return LogRecord(config_key, ConfigEntry(level))
        if keytype == "ID_WATERMARK":
            if value_json is None:
                return LogRecord(IdWatermarkKey(), None)
            return LogRecord(IdWatermarkKey(), IdWatermark(int(value_json["maxId"])))
        if keytype == "LEADER":
            if value_json is None:
                return LogRecord(LeaderKey(), None)
            leader = LeaderEntry(
                str(value_json["url"]), str(value_json["instance"]), int(value_json["generation"])
            )
            return LogRecord(LeaderKey(), leader)
    except (ValueError, KeyError, TypeError, InvalidCompatibilityLevelError) as exc:
        raise StoreError(f"Unreadable record in the schema log: key {key!r}") from exc
    return None

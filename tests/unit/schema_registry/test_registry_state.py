"""Ids, versions, deletes and levels of the registry, over an in-memory log."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from typing import Any
from typing import TypeVar

import pytest

from featurestore.errors import NotFoundError
from featurestore.schema_registry import CompatibilityLevel
from featurestore.schema_registry import MemoryRecordLog
from featurestore.schema_registry import SchemaRegistry
from featurestore.schema_registry import parse_schema
from featurestore.schema_registry.avro_schema import ParsedSchema
from featurestore.schema_registry.errors import IncompatibleSchemaError
from featurestore.schema_registry.errors import InvalidVersionError
from featurestore.schema_registry.errors import SchemaNotFoundError
from featurestore.schema_registry.errors import SubjectNotFoundError
from featurestore.schema_registry.errors import SubjectNotSoftDeletedError
from featurestore.schema_registry.errors import SubjectSoftDeletedError
from featurestore.schema_registry.errors import VersionNotFoundError
from featurestore.schema_registry.errors import VersionNotSoftDeletedError
from featurestore.schema_registry.errors import VersionSoftDeletedError
from featurestore.schema_registry.records import decode_record
from featurestore.schema_registry.records import encode_record
from featurestore.schema_registry.state import LATEST
from featurestore.schema_registry.state import parse_version

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def schema(*fields: str, name: str = "Trade") -> ParsedSchema:
    """A record whose extra fields all have defaults, so every one is BACKWARD-compatible."""
    body = [{"name": "price", "type": "double"}]
    body += [{"name": f, "type": "string", "default": ""} for f in fields]
    return parse_schema(json.dumps({"type": "record", "name": name, "fields": body}))


@pytest.fixture
def log() -> MemoryRecordLog:
    return MemoryRecordLog()


@pytest.fixture
def registry(log: MemoryRecordLog) -> SchemaRegistry:
    return SchemaRegistry(log)


def restarted(log: MemoryRecordLog) -> SchemaRegistry:
    again = SchemaRegistry(log)
    again.load()
    return again


def snapshot(registry: SchemaRegistry) -> dict[str, Any]:
    state = registry.state
    return {
        "subjects": {
            s: [
                (e.version, e.schema_id, e.schema, e.deleted)
                for e in state.entries(s, deleted=True)
            ]
            for s in state.subjects(deleted=True)
        },
        "max_id": state.max_id,
        "levels": {s: state.own_level(s) for s in [None, *state.subjects(deleted=True)]},
    }


def test_ids_are_global_and_reused_for_the_same_schema(registry: SchemaRegistry) -> None:
    first = run(registry.register("a-value", schema()))
    assert run(registry.register("a-value", schema())) == first  # again: same id, same version
    assert registry.state.entries("a-value")[-1].version == 1
    assert run(registry.register("b-value", schema())) == first  # other subject, same id
    second = run(registry.register("a-value", schema("venue")))
    assert second == first + 1
    assert [e.version for e in registry.state.entries("a-value")] == [1, 2]
    assert registry.state.entry("a-value", LATEST).schema_id == second
    assert [(e.subject, e.version) for e in registry.state.usages(first)] == [
        ("a-value", 1),
        ("b-value", 1),
    ]


def test_incompatible_schema_is_refused_and_nothing_is_written(
    registry: SchemaRegistry, log: MemoryRecordLog
) -> None:
    run(registry.register("s", schema()))
    written = len(log.messages)
    bad = parse_schema(
        '{"type":"record","name":"Trade","fields":[{"name":"price","type":"double"},'
        '{"name":"venue","type":"string"}]}'
    )
    with pytest.raises(IncompatibleSchemaError) as caught:
        run(registry.register("s", bad))
    assert caught.value.error_code == 409
    assert len(log.messages) == written


def test_lookup(registry: SchemaRegistry) -> None:
    run(registry.register("s", schema()))
    run(registry.register("s", schema("venue")))
    assert registry.state.find("s", schema()).version == 1
    with pytest.raises(SchemaNotFoundError):
        registry.state.find("s", schema("other"))
    with pytest.raises(SubjectNotFoundError) as caught:
        registry.state.find("nope", schema())
    assert isinstance(caught.value, NotFoundError)


def test_soft_then_permanent_version_delete(registry: SchemaRegistry) -> None:
    one = run(registry.register("s", schema()))
    run(registry.register("s", schema("venue")))
    with pytest.raises(VersionNotSoftDeletedError):
        run(registry.delete_version("s", 1, permanent=True))
    assert run(registry.delete_version("s", 1, permanent=False)) == 1
    with pytest.raises(VersionSoftDeletedError):
        run(registry.delete_version("s", 1, permanent=False))
    assert [e.version for e in registry.state.entries("s")] == [2]
    assert registry.state.entry("s", 1, deleted=True).deleted
    with pytest.raises(VersionNotFoundError):
        registry.state.entry("s", 1)
    assert registry.state.schema(one)  # a soft-deleted version's schema is still served by id
    assert run(registry.delete_version("s", 1, permanent=True)) == 1
    with pytest.raises(VersionNotFoundError):
        registry.state.entry("s", 1, deleted=True)
    with pytest.raises(SchemaNotFoundError):
        registry.state.schema(one)
    with pytest.raises(VersionNotFoundError):
        run(registry.delete_version("s", 7, permanent=False))


def test_soft_then_permanent_subject_delete(registry: SchemaRegistry) -> None:
    run(registry.register("s", schema()))
    run(registry.register("s", schema("venue")))
    run(registry.set_level("s", CompatibilityLevel.FULL))
    with pytest.raises(SubjectNotSoftDeletedError) as caught:
        run(registry.delete_subject("s", permanent=True))
    assert caught.value.error_code == 40405
    assert run(registry.delete_subject("s", permanent=False)) == [1, 2]
    assert registry.state.subjects() == []
    assert registry.state.subjects(deleted=True) == ["s"]
    assert registry.state.subjects(deleted_only=True) == ["s"]
    assert registry.state.own_level("s") is None  # a soft delete drops the subject's level
    with pytest.raises(SubjectSoftDeletedError) as again:
        run(registry.delete_subject("s", permanent=False))
    assert again.value.error_code == 40404
    # Registering again continues the numbering; the soft-deleted version 1 held the same
    # schema, so it is permanently deleted (as Confluent's registry does).
    run(registry.register("s", schema()))
    assert [e.version for e in registry.state.entries("s")] == [3]
    assert [e.version for e in registry.state.entries("s", deleted=True)] == [2, 3]
    run(registry.delete_subject("s", permanent=False))
    assert run(registry.delete_subject("s", permanent=True)) == [2, 3]
    assert registry.state.subjects(deleted=True) == []
    with pytest.raises(SubjectNotFoundError):
        run(registry.delete_subject("s", permanent=False))


def test_ids_are_never_reused_after_permanent_delete(log: MemoryRecordLog) -> None:
    registry = SchemaRegistry(log)
    run(registry.register("s", schema()))
    top = run(registry.register("s", schema("venue")))
    run(registry.delete_subject("s", permanent=False))
    run(registry.delete_subject("s", permanent=True))
    # Compaction would drop the schema records; keep only the last record per key.
    latest: dict[bytes, bytes | None] = {}
    for key, value in log.messages:
        latest[key] = value
    log.messages = [(k, v) for k, v in latest.items() if v is not None]
    again = restarted(log)
    assert again.state.max_id == top
    assert run(again.register("t", schema("other"))) == top + 1


def test_levels_inherit_from_global(registry: SchemaRegistry) -> None:
    assert registry.state.level("s") is CompatibilityLevel.BACKWARD
    run(registry.set_level(None, CompatibilityLevel.FULL))
    assert registry.state.level("s") is CompatibilityLevel.FULL
    assert registry.state.own_level("s") is None
    run(registry.set_level("s", CompatibilityLevel.NONE))
    assert registry.state.level("s") is CompatibilityLevel.NONE
    assert registry.state.level("t") is CompatibilityLevel.FULL
    assert run(registry.delete_level("s")) is CompatibilityLevel.NONE
    assert registry.state.level("s") is CompatibilityLevel.FULL
    assert run(registry.delete_level(None)) is CompatibilityLevel.FULL
    assert registry.state.level(None) is CompatibilityLevel.BACKWARD
    with pytest.raises(SubjectNotFoundError):
        run(registry.delete_level("never-seen"))


def test_subject_level_governs_registration(registry: SchemaRegistry) -> None:
    run(registry.register("s", schema()))
    breaking = parse_schema(
        '{"type":"record","name":"Trade","fields":[{"name":"price","type":"string"}]}'
    )
    with pytest.raises(IncompatibleSchemaError):
        run(registry.register("s", breaking))
    run(registry.set_level("s", CompatibilityLevel.NONE))
    assert run(registry.register("s", breaking)) == 2


def test_compatibility_test_against_a_version(registry: SchemaRegistry) -> None:
    run(registry.register("s", schema()))
    run(registry.register("s", schema("venue")))
    every = registry.compatibility_targets("s", None)
    assert registry.test_compatibility("s", schema("venue", "desk"), every) == []
    assert registry.compatibility_targets("s", LATEST) == [schema("venue")]
    assert registry.compatibility_targets("s", 1) == [schema()]
    # No live latest: nothing to break (Confluent answers is_compatible true).
    assert registry.compatibility_targets("nope", None) == []
    assert registry.compatibility_targets("nope", LATEST) == []
    with pytest.raises(VersionNotFoundError):
        registry.compatibility_targets("s", 9)
    with pytest.raises(VersionNotFoundError):  # 40402 even when the subject does not exist
        registry.compatibility_targets("nope", 1)


def test_restart_rebuilds_everything(registry: SchemaRegistry, log: MemoryRecordLog) -> None:
    run(registry.register("a", schema()))
    run(registry.register("a", schema("venue")))
    run(registry.register("b", schema("venue")))
    run(registry.register("c", schema(name="Quote")))
    run(registry.set_level(None, CompatibilityLevel.FORWARD))
    run(registry.set_level("b", CompatibilityLevel.FULL))
    run(registry.delete_version("a", 1, permanent=False))
    run(registry.delete_subject("c", permanent=False))
    run(registry.delete_subject("c", permanent=True))
    assert snapshot(restarted(log)) == snapshot(registry)


@pytest.mark.parametrize(
    ("raw", "parsed"), [("latest", LATEST), ("LATEST", LATEST), ("-1", LATEST), ("3", 3)]
)
def test_parse_version(raw: str, parsed: object) -> None:
    assert parse_version(raw) == parsed


@pytest.mark.parametrize("raw", ["0", "-2", "x", "2147483648", "1.5", "0_3", " 3", "3\n"])
def test_parse_bad_version(raw: str) -> None:
    with pytest.raises(InvalidVersionError) as caught:
        parse_version(raw)
    assert caught.value.error_code == 42202


def test_records_use_confluent_keys(registry: SchemaRegistry, log: MemoryRecordLog) -> None:
    run(registry.register("s", schema()))
    run(registry.set_level("s", CompatibilityLevel.FULL))
    (schema_key, schema_value), (config_key, config_value) = log.messages
    assert json.loads(schema_key) == {"keytype": "SCHEMA", "subject": "s", "version": 1, "magic": 1}
    assert json.loads(schema_value or b"")["id"] == 1
    assert json.loads(config_key) == {"keytype": "CONFIG", "subject": "s", "magic": 0}
    assert json.loads(config_value or b"") == {"compatibilityLevel": "FULL"}
    for key, value in log.messages:
        record = decode_record(key, value)
        assert record is not None and encode_record(record) == (key, value)
    assert decode_record(b'{"keytype":"NOOP","magic":0}', b"{}") is None

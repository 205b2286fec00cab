"""The registry's state in memory: subjects, versions, schema ids and compatibility levels.

The state changes only by :meth:`RegistryState.apply`, one log record at a time, the same way
whether the record was just written or is replayed at start-up; so a restart rebuilds exactly
what was served before. Everything else here answers questions and never changes anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from featurestore.schema_registry.avro_schema import ParsedSchema
from featurestore.schema_registry.avro_schema import parse_schema
from featurestore.schema_registry.compatibility import DEFAULT_LEVEL
from featurestore.schema_registry.compatibility import CompatibilityLevel
from featurestore.schema_registry.errors import InvalidVersionError
from featurestore.schema_registry.errors import SchemaNotFoundError
from featurestore.schema_registry.errors import SubjectNotFoundError
from featurestore.schema_registry.errors import VersionNotFoundError
from featurestore.schema_registry.records import ConfigEntry
from featurestore.schema_registry.records import ConfigKey
from featurestore.schema_registry.records import IdWatermark
from featurestore.schema_registry.records import IdWatermarkKey
from featurestore.schema_registry.records import LeaderEntry
from featurestore.schema_registry.records import LeaderKey
from featurestore.schema_registry.records import LogRecord
from featurestore.schema_registry.records import SchemaEntry
from featurestore.schema_registry.records import SchemaKey

__all__ = ["LATEST", "RegistryState", "VersionSpec", "parse_version"]

LATEST = "latest"
VersionSpec = int | str
"""A version number, or :data:`LATEST`."""

_MAX_VERSION = 2**31 - 1
_VERSION_NUMBER = re.compile(r"[+-]?\d+")
"""What Java's ``Integer.parseInt`` reads: decimal digits, any script's (Python's ``int`` also
takes ``0_3`` or `` 3``, which Confluent refuses)."""


def parse_version(raw: str) -> VersionSpec:
    """A version from a URL: ``latest``, ``-1`` (also latest) or a number in [1, 2^31-1].

    Raises:
        InvalidVersionError: Anything else.
    """
    if raw.lower() == LATEST:
        return LATEST
    if not _VERSION_NUMBER.fullmatch(raw):
        raise InvalidVersionError(raw)
    number = int(raw)
    if number == -1:
        return LATEST
    if not 1 <= number <= _MAX_VERSION:
        raise InvalidVersionError(raw)
    return number


@dataclass
class _StoredSchema:
    parsed: ParsedSchema
    users: set[SchemaKey]


class RegistryState:
    """Subjects, versions, ids and levels, rebuilt from the log and kept in step with it."""

    def __init__(self) -> None:
        """Start empty, before the log's first record."""
        self._subjects: dict[str, dict[int, SchemaEntry]] = {}
        self._schemas: dict[int, _StoredSchema] = {}
        self._ids_by_form: dict[str, int] = {}
        self._levels: dict[str | None, CompatibilityLevel] = {}
        self._max_id = 0
        self._leader: LeaderEntry | None = None

    # -- the one way in --------------------------------------------------------------------

    def apply(self, record: LogRecord) -> None:
        """Apply one log record (write or tombstone)."""
        key, value = record.key, record.value
        if isinstance(key, SchemaKey):
            self._apply_schema(key, value if isinstance(value, SchemaEntry) else None)
        elif isinstance(key, ConfigKey):
            if isinstance(value, ConfigEntry):
                self._levels[key.subject] = value.compatibility
            else:
                self._levels.pop(key.subject, None)
        elif isinstance(key, IdWatermarkKey) and isinstance(value, IdWatermark):
            self._max_id = max(self._max_id, value.max_id)
        elif isinstance(key, LeaderKey):
            self._leader = value if isinstance(value, LeaderEntry) else None

    def _apply_schema(self, key: SchemaKey, entry: SchemaEntry | None) -> None:
        versions = self._subjects.setdefault(key.subject, {})
        old = versions.pop(key.version, None)
        if entry is None:
            if old is not None:
                self._release(old.schema_id, key)
            if not versions:
                del self._subjects[key.subject]
            return
        versions[key.version] = entry
        if old is not None and old.schema_id != entry.schema_id:
            self._release(old.schema_id, key)
        stored = self._schemas.get(entry.schema_id)
        if stored is None:
            # Validated when registered; a replay accepts what the log holds.
            parsed = parse_schema(entry.schema, as_new=False)
            stored = self._schemas[entry.schema_id] = _StoredSchema(parsed, set())
            self._ids_by_form.setdefault(parsed.normal_form, entry.schema_id)
        stored.users.add(key)
        self._max_id = max(self._max_id, entry.schema_id)

    def _release(self, schema_id: int, key: SchemaKey) -> None:
        stored = self._schemas.get(schema_id)
        if stored is None:
            return
        stored.users.discard(key)
        if not stored.users:
            # Gone from the log once compacted: forget it now too, so that a live registry
            # and a restarted one answer alike (GET /schemas/ids/{id} is 40403 in both).
            del self._schemas[schema_id]
            if self._ids_by_form.get(stored.parsed.normal_form) == schema_id:
                del self._ids_by_form[stored.parsed.normal_form]

    # -- questions ---------------------------------------------------------------------------

    @property
    def max_id(self) -> int:
        """The highest schema id ever handed out (0 before the first)."""
        return self._max_id

    @property
    def leader(self) -> LeaderEntry | None:
        """The instance that last took the lead, as the log says (None: never one)."""
        return self._leader

    def subjects(self, *, deleted: bool = False, deleted_only: bool = False) -> list[str]:
        """Subjects with a live version; with ``deleted`` also soft-deleted ones.

        ``deleted_only`` lists only subjects all of whose versions are soft-deleted.
        """
        names = []
        for subject, versions in self._subjects.items():
            live = any(not e.deleted for e in versions.values())
            if (deleted_only and not live) or (not deleted_only and (live or deleted)):
                names.append(subject)
        return sorted(names)

    def versions(self, subject: str) -> list[SchemaEntry]:
        """Every version of the subject, soft-deleted ones included, oldest first (maybe none)."""
        versions = self._subjects.get(subject, {})
        return [versions[v] for v in sorted(versions)]

    def entries(self, subject: str, *, deleted: bool = False) -> list[SchemaEntry]:
        """The subject's versions, oldest first; with ``deleted`` also soft-deleted ones.

        Raises:
            SubjectNotFoundError: No such version at all.
        """
        found = [e for e in self.versions(subject) if deleted or not e.deleted]
        if not found:
            raise SubjectNotFoundError(subject)
        return found

    def entry(self, subject: str, version: VersionSpec, *, deleted: bool = False) -> SchemaEntry:
        """One version of a subject; :data:`LATEST` is the highest live one, even with ``deleted``.

        As in Confluent's registry, ``latest`` never names a soft-deleted version: ``deleted``
        only decides whether a subject whose versions are all soft-deleted is known (then
        :class:`VersionNotFoundError`) or not (:class:`SubjectNotFoundError`).

        Raises:
            SubjectNotFoundError: The subject has no visible version.
            VersionNotFoundError: Not this one (or, for :data:`LATEST`, no live one).
        """
        entries = self.entries(subject, deleted=deleted)
        if version == LATEST:
            live = [e for e in entries if not e.deleted]
            if not live:
                raise VersionNotFoundError(subject, LATEST)
            return live[-1]
        for entry in entries:
            if entry.version == version:
                return entry
        raise VersionNotFoundError(subject, version)

    def next_version(self, subject: str) -> int:
        """The version number a new registration under ``subject`` gets.

        Soft-deleted versions keep their numbers, so they are counted.
        """
        versions = self._subjects.get(subject)
        return (max(versions) if versions else 0) + 1

    def schema(self, schema_id: int) -> ParsedSchema:
        """The schema with this id.

        Raises:
            SchemaNotFoundError: No version holds this id any more, or never did.
        """
        stored = self._schemas.get(schema_id)
        if stored is None:
            raise SchemaNotFoundError(f"Schema {schema_id} not found")
        return stored.parsed

    def usages(self, schema_id: int, *, deleted: bool = False) -> list[SchemaEntry]:
        """The versions holding this id, by subject then version.

        Raises:
            SchemaNotFoundError: Unknown id.
        """
        stored = self._schemas.get(schema_id)
        if stored is None:
            raise SchemaNotFoundError(f"Schema {schema_id} not found")
        found = [self._subjects[k.subject][k.version] for k in stored.users]
        found = [e for e in found if deleted or not e.deleted]
        return sorted(found, key=lambda e: (e.subject, e.version))

    def id_of(self, schema: ParsedSchema) -> int | None:
        """The id already given to a schema of the same normal form, if any."""
        return self._ids_by_form.get(schema.normal_form)

    def find(self, subject: str, schema: ParsedSchema, *, deleted: bool = False) -> SchemaEntry:
        """The latest version of ``subject`` holding ``schema``.

        Raises:
            SubjectNotFoundError: The subject has no visible version.
            SchemaNotFoundError: None holds this schema.
        """
        entries = self.entries(subject, deleted=deleted)
        schema_id = self.id_of(schema)
        for entry in reversed(entries):
            if entry.schema_id == schema_id:
                return entry
        raise SchemaNotFoundError()

    def live_schemas(self, subject: str) -> list[ParsedSchema]:
        """The schemas of the subject's live versions, oldest first (empty if none)."""
        versions = self._subjects.get(subject, {})
        return [
            self._schemas[versions[v].schema_id].parsed
            for v in sorted(versions)
            if not versions[v].deleted
        ]

    def level(self, subject: str | None = None) -> CompatibilityLevel:
        """The effective level: the subject's own, else the global one, else BACKWARD."""
        if subject is not None and subject in self._levels:
            return self._levels[subject]
        return self._levels.get(None, DEFAULT_LEVEL)

    def own_level(self, subject: str | None) -> CompatibilityLevel | None:
        """The level configured for exactly this subject (None: the global one), if any."""
        return self._levels.get(subject)

    def has_subject(self, subject: str, *, deleted: bool = False) -> bool:
        """Whether the subject has a live version (or any version, with ``deleted``)."""
        versions = self._subjects.get(subject, {})
        return any(deleted or not e.deleted for e in versions.values())

"""What the registry does: every command, decided against the state, logged, then applied.

Each write runs under one lock: decide from the current state which records to write, append
them to the log (Kafka, in a worker thread), then apply them to the state. Reads need no lock:
the state only changes on the event loop's thread, between two awaits.

With ``tailed``, the state changes only by what a tail of the log feeds :meth:`apply`, a write
included: the writer waits until the tail has brought its records back. Every instance then
derives its state from the same committed records in the same order, the leader as well as the
followers (see :mod:`featurestore.schema_registry.cluster`). Without it (one process, an
in-memory log), a write is applied as soon as it is appended.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence

from featurestore.schema_registry.avro_schema import AVRO
from featurestore.schema_registry.avro_schema import ParsedSchema
from featurestore.schema_registry.avro_schema import parse_schema
from featurestore.schema_registry.compatibility import CompatibilityLevel
from featurestore.schema_registry.compatibility import check_compatibility
from featurestore.schema_registry.errors import IncompatibleSchemaError
from featurestore.schema_registry.errors import InvalidSchemaError
from featurestore.schema_registry.errors import InvalidSubjectError
from featurestore.schema_registry.errors import OperationNotPermittedError
from featurestore.schema_registry.errors import SchemaNotFoundError
from featurestore.schema_registry.errors import StoreTimeoutError
from featurestore.schema_registry.errors import SubjectNotFoundError
from featurestore.schema_registry.errors import SubjectNotSoftDeletedError
from featurestore.schema_registry.errors import SubjectSoftDeletedError
from featurestore.schema_registry.errors import VersionNotFoundError
from featurestore.schema_registry.errors import VersionNotSoftDeletedError
from featurestore.schema_registry.errors import VersionSoftDeletedError
from featurestore.schema_registry.log import RecordLog
from featurestore.schema_registry.records import ConfigEntry
from featurestore.schema_registry.records import ConfigKey
from featurestore.schema_registry.records import IdWatermark
from featurestore.schema_registry.records import IdWatermarkKey
from featurestore.schema_registry.records import LogRecord
from featurestore.schema_registry.records import SchemaEntry
from featurestore.schema_registry.records import SchemaKey
from featurestore.schema_registry.state import LATEST
from featurestore.schema_registry.state import RegistryState
from featurestore.schema_registry.state import VersionSpec

__all__ = ["SchemaRegistry", "check_subject", "parse_request_schema"]

_RESERVED_SUBJECT = "__GLOBAL"
"""Confluent's name for the global scope of configs and modes: no subject may take it."""
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
"""Java's ISO control characters, which Confluent's registry refuses in subject names."""


def check_subject(subject: str) -> str:
    """``subject`` if a subject may take this name (Confluent's ``isValidSubject``).

    Raises:
        InvalidSubjectError: A control character in it, or the reserved ``__GLOBAL``.
    """
    if _CONTROL.search(subject) or subject == _RESERVED_SUBJECT:
        raise InvalidSubjectError(subject)
    return subject


def parse_request_schema(
    schema: object, schema_type: object = None, references: object = None
) -> ParsedSchema:
    """The schema of a request body, checked for what this registry supports.

    Raises:
        InvalidSchemaError: Not a string, not Avro, with references, or invalid.
    """
    if schema_type not in (None, AVRO):
        raise InvalidSchemaError(f"Unsupported schema type {schema_type}; only AVRO is served")
    if references:
        raise InvalidSchemaError("Schema references are not supported by this registry")
    if not isinstance(schema, str):
        raise InvalidSchemaError("Empty schema" if schema is None else "Schema must be a string")
    return parse_schema(schema)


class SchemaRegistry:
    """Commands and checks over a :class:`RegistryState` persisted in a :class:`RecordLog`."""

    def __init__(
        self, log: RecordLog, *, tailed: bool = False, apply_timeout_s: float = 10.0
    ) -> None:
        """A registry over ``log``.

        Args:
            log: Where writes go.
            tailed: Whether a tail of the log feeds :meth:`apply` (then a write waits for it).
            apply_timeout_s: How long a write waits for the tail to bring it back.
        """
        self._log = log
        self._tailed = tailed
        self._apply_timeout_s = apply_timeout_s
        self._lock = asyncio.Lock()
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self.position = 0
        """The log position the state has applied up to."""
        self.state = RegistryState()
        """What is registered; read it freely, change it only through this class."""

    def load(self) -> int:
        """Replay the whole log into a fresh state (blocking); returns the records read."""
        state = RegistryState()
        count = 0
        for record in self._log.read_all():
            state.apply(record)
            count += 1
        self.state = state
        return count

    def apply(self, records: Sequence[LogRecord], position: int) -> None:
        """Apply records read from the log, which end at ``position``; wake who waits for it.

        Called on the event loop's thread, in log order (a tail posts its batches with
        ``call_soon_threadsafe``, which keeps their order).
        """
        for record in records:
            self.state.apply(record)
        self.position = max(self.position, position)
        waiting = []
        for wanted, future in self._waiters:
            if wanted <= self.position:
                if not future.done():
                    future.set_result(None)
            else:
                waiting.append((wanted, future))
        self._waiters = waiting

    async def wait_applied(self, position: int, timeout_s: float) -> bool:
        """Wait until the state has applied the log up to ``position``; whether it did in time."""
        if self.position >= position:
            return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (position, future)
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout_s)
        except TimeoutError:
            return False
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)
        return True

    async def _write(self, records: Sequence[LogRecord]) -> None:
        position = await asyncio.to_thread(self._log.append, records)
        if not self._tailed:
            self.apply(records, position)
        elif not await self.wait_applied(position, self._apply_timeout_s):
            raise StoreTimeoutError(
                f"The write is in the log (up to position {position}) but was not read back "
                f"within {self._apply_timeout_s}s; it will show once the log is read"
            )

    # -- schemas -----------------------------------------------------------------------------

    async def register(
        self,
        subject: str,
        schema: ParsedSchema,
        *,
        version: int | None = None,
        schema_id: int | None = None,
    ) -> int:
        """Register ``schema`` under ``subject``; returns its global id.

        A schema already live in the subject keeps its version and id; one registered under
        another subject reuses that id. Versions of the subject that were soft-deleted and hold
        the same id are permanently deleted (tombstoned) as the new version is written, as
        Confluent's registry does: the schema lives on under the new version.

        Args:
            subject: Where to register.
            schema: What to register.
            version: The version the registration must get (Confluent's ``version`` field):
                only the next one is accepted, and it registers a new version even when the
                schema is live in the subject already. None: the next one, or the existing one.
            schema_id: The id asked for (Confluent's ``id`` field), which only Confluent's
                IMPORT mode honours: accepted only when it is already this schema's id in the
                subject (the answer is then that registration).

        Raises:
            OperationNotPermittedError: ``schema_id`` is not the schema's id in the subject.
            IncompatibleSchemaError: It breaks the subject's compatibility level.
            InvalidSchemaError: ``version`` is not the next version.
        """
        async with self._lock:
            state = self.state
            if version is None:
                try:
                    found = state.find(subject, schema).schema_id
                except (SubjectNotFoundError, SchemaNotFoundError):
                    pass
                else:
                    if schema_id is None or schema_id == found:
                        return found
            if schema_id is not None:
                raise OperationNotPermittedError(
                    f"Subject {subject} is not in import mode: this registry chooses ids itself"
                )
            level = state.level(subject)
            problems = check_compatibility(schema, state.live_schemas(subject), level)
            if problems:
                raise IncompatibleSchemaError(
                    f"Schema being registered is incompatible with an earlier schema for "
                    f'subject "{subject}" ({level.value}), details: {problems}'
                )
            next_version = state.next_version(subject)
            if version is not None and version != next_version:
                raise InvalidSchemaError("Version is not one more than previous version")
            new_id = state.id_of(schema) or state.max_id + 1
            records = [
                LogRecord(SchemaKey(subject, e.version), None)
                for e in state.versions(subject)
                if e.deleted and e.schema_id == new_id
            ]
            entry = SchemaEntry(subject, next_version, new_id, schema.text)
            records.append(LogRecord(SchemaKey(subject, next_version), entry))
            await self._write(records)
            return new_id

    def compatibility_targets(
        self, subject: str, version: VersionSpec | None
    ) -> list[ParsedSchema]:
        """The registered schemas a candidate is tested against (``POST /compatibility``).

        Args:
            subject: The subject to test against.
            version: One version, :data:`LATEST` (the latest live one, none if there is none:
                a new subject accepts anything), or None for the live ones the level names.

        Raises:
            VersionNotFoundError: A numbered version that is not live (the subject may not
                exist at all: Confluent answers 40402 then too).
        """
        state = self.state
        if version is None:
            return state.live_schemas(subject)
        if version == LATEST:
            live = [e for e in state.versions(subject) if not e.deleted]
            return [state.schema(live[-1].schema_id)] if live else []
        try:
            entry = state.entry(subject, version)
        except SubjectNotFoundError:
            raise VersionNotFoundError(subject, version) from None
        return [state.schema(entry.schema_id)]

    def test_compatibility(
        self, subject: str, schema: ParsedSchema, targets: Sequence[ParsedSchema]
    ) -> list[str]:
        """Why ``schema`` could not follow ``targets`` at the subject's level; empty if it could.

        ``targets`` come from :meth:`compatibility_targets`.
        """
        return check_compatibility(schema, targets, self.state.level(subject))

    # -- deletes -----------------------------------------------------------------------------

    async def delete_subject(self, subject: str, *, permanent: bool) -> list[int]:
        """Soft-delete every live version, or permanently delete a soft-deleted subject.

        A soft delete also drops the subject's own compatibility level, as Confluent's does.

        Raises:
            SubjectNotFoundError: No version at all.
            SubjectSoftDeletedError: Soft delete of a subject already soft-deleted.
            SubjectNotSoftDeletedError: Permanent delete of a subject with live versions.
        """
        async with self._lock:
            entries = self.state.entries(subject, deleted=True)
            live = [e for e in entries if not e.deleted]
            records: list[LogRecord]
            if permanent:
                if live:
                    raise SubjectNotSoftDeletedError(subject)
                records = [self._watermark()]
                records += [LogRecord(SchemaKey(subject, e.version), None) for e in entries]
                await self._write(records)
                return [e.version for e in entries]
            if not live:
                raise SubjectSoftDeletedError(subject)
            records = [_soft_deleted(e) for e in live]
            if self.state.own_level(subject) is not None:
                records.append(LogRecord(ConfigKey(subject), None))
            await self._write(records)
            return [e.version for e in live]

    async def delete_version(self, subject: str, version: VersionSpec, *, permanent: bool) -> int:
        """Soft-delete a live version, or permanently delete a soft-deleted one.

        :data:`LATEST` is the latest live version, for a permanent delete too (Confluent's
        ``validateDeleteSchemaVersion``): it never names a soft-deleted one.

        Raises:
            SubjectNotFoundError: No version at all, live or soft-deleted.
            VersionNotFoundError: Not this one (for :data:`LATEST`: no live version).
            VersionSoftDeletedError: Soft delete of a soft-deleted version.
            VersionNotSoftDeletedError: Permanent delete of a live version.
        """
        async with self._lock:
            entry = self.state.entry(subject, version, deleted=True)
            if permanent:
                if not entry.deleted:
                    raise VersionNotSoftDeletedError(subject, entry.version)
                await self._write(
                    [self._watermark(), LogRecord(SchemaKey(subject, entry.version), None)]
                )
            else:
                if entry.deleted:
                    raise VersionSoftDeletedError(subject, entry.version)
                await self._write([_soft_deleted(entry)])
            return entry.version

    def _watermark(self) -> LogRecord:
        return LogRecord(IdWatermarkKey(), IdWatermark(self.state.max_id))

    # -- compatibility levels ----------------------------------------------------------------

    async def set_level(self, subject: str | None, level: CompatibilityLevel) -> None:
        """Set the level of ``subject``, or the global one when None."""
        async with self._lock:
            await self._write([LogRecord(ConfigKey(subject), ConfigEntry(level))])

    async def delete_level(self, subject: str | None) -> CompatibilityLevel:
        """Remove the subject's own level (or reset the global one); returns what applied.

        Raises:
            SubjectNotFoundError: The subject has no level of its own (Confluent: 40401, even
                when the subject has versions).
        """
        async with self._lock:
            state = self.state
            own = state.own_level(subject)
            if own is None:
                if subject is not None:
                    raise SubjectNotFoundError(subject)
                return state.level(None)
            await self._write([LogRecord(ConfigKey(subject), None)])
            return own


def _soft_deleted(entry: SchemaEntry) -> LogRecord:
    return LogRecord(
        SchemaKey(entry.subject, entry.version),
        SchemaEntry(
            entry.subject, entry.version, entry.schema_id, entry.schema, True, entry.schema_type
        ),
    )

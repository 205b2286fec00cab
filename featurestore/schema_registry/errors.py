"""Errors of the schema registry, each with its Confluent error code and HTTP status.

Every class also sits in the store's own tree (:mod:`featurestore.errors`), so that code calling
the registry in-process can catch ``NotFoundError`` or ``SchemaError`` without knowing the REST
codes. The HTTP layer turns them into ``{"error_code": N, "message": "..."}`` in one place.
"""

from __future__ import annotations

from typing import ClassVar

from featurestore.errors import BackendUnavailableError
from featurestore.errors import FeatureStoreError
from featurestore.errors import NotFoundError
from featurestore.errors import SchemaError
from featurestore.errors import ValidationError

__all__ = [
    "ForwardingError",
    "IncompatibleSchemaError",
    "InvalidCompatibilityLevelError",
    "InvalidModeError",
    "InvalidSchemaError",
    "InvalidSubjectError",
    "InvalidVersionError",
    "MalformedRequestError",
    "MissingBodyError",
    "NotLeaderError",
    "OperationNotPermittedError",
    "RegistryError",
    "SchemaNotFoundError",
    "StoreError",
    "StoreTimeoutError",
    "SubjectConfigNotFoundError",
    "SubjectNotFoundError",
    "SubjectNotSoftDeletedError",
    "SubjectSoftDeletedError",
    "VersionNotFoundError",
    "VersionNotSoftDeletedError",
    "VersionSoftDeletedError",
]


class RegistryError(FeatureStoreError):
    """Root of the registry's errors; carries the Confluent REST error code and HTTP status."""

    http_status: int = 500
    error_code: int = 50001


class _SubjectError(RegistryError, NotFoundError):
    """A 404 about a subject: :attr:`message` names it."""

    http_status = 404
    message: ClassVar[str]
    """The Confluent registry's text, with ``{subject}``."""

    def __init__(self, subject: str) -> None:
        """Name the subject."""
        super().__init__(self.message.format(subject=subject))


class _VersionError(RegistryError, NotFoundError):
    """A 404 about a version of a subject: :attr:`message` names both."""

    http_status = 404
    message: ClassVar[str]
    """The Confluent registry's text, with ``{subject}`` and ``{version}``."""

    def __init__(self, subject: str, version: object) -> None:
        """Name the subject and the version."""
        super().__init__(self.message.format(subject=subject, version=version))


class SubjectNotFoundError(_SubjectError):
    """The subject has no (visible) version."""

    error_code = 40401
    message = "Subject '{subject}' not found."


class VersionNotFoundError(_VersionError):
    """The subject exists but not this version."""

    error_code = 40402
    message = "Version {version} not found for subject '{subject}'."


class SchemaNotFoundError(RegistryError, NotFoundError):
    """No such schema id, or the schema is not registered under the subject."""

    http_status = 404
    error_code = 40403

    def __init__(self, message: str = "Schema not found") -> None:
        """Keep the registry's message."""
        super().__init__(message)


class SubjectSoftDeletedError(_SubjectError):
    """A soft delete of a subject that is already soft-deleted."""

    error_code = 40404
    message = "Subject '{subject}' was soft deleted. Set permanent=true to delete permanently"


class SubjectNotSoftDeletedError(_SubjectError):
    """A permanent delete of a subject that was not soft-deleted first."""

    error_code = 40405
    message = "Subject '{subject}' was not deleted first before being permanently deleted"


class VersionSoftDeletedError(_VersionError):
    """A soft delete of a version that is already soft-deleted."""

    error_code = 40406
    message = (
        "Subject '{subject}' Version {version} was soft deleted. "
        "Set permanent=true to delete permanently"
    )


class VersionNotSoftDeletedError(_VersionError):
    """A permanent delete of a version that was not soft-deleted first."""

    error_code = 40407
    message = (
        "Subject '{subject}' Version {version} was not deleted first "
        "before being permanently deleted"
    )


class SubjectConfigNotFoundError(_SubjectError):
    """The subject has no compatibility level of its own (and the global one was not asked for)."""

    error_code = 40408
    message = "Subject '{subject}' does not have subject-level compatibility configured"


class IncompatibleSchemaError(RegistryError, SchemaError):
    """The schema breaks the subject's compatibility level."""

    http_status = 409
    error_code = 409


class InvalidSchemaError(RegistryError, SchemaError):
    """The schema does not parse, has an invalid default, or uses an unsupported feature."""

    http_status = 422
    error_code = 42201


class _UnprocessableError(RegistryError, ValidationError):
    """A 422: the request is well-formed, but what it asks for is refused."""

    http_status = 422


class _UnavailableError(RegistryError, BackendUnavailableError):
    """A 503, sent with ``Retry-After``.

    Confluent's clients retry it, on the same or the next URL they were given.
    """

    http_status = 503


class _InvalidValueError(_UnprocessableError):
    """A 422 about one value of the request: :attr:`message` quotes it as given."""

    message: ClassVar[str]
    """The Confluent registry's text, with ``{value}`` (the value as given)."""
    field_name: ClassVar[str]
    """The request field the value came from."""

    def __init__(self, value: object) -> None:
        """Name the value as given."""
        super().__init__(self.message.format(value=value), field=self.field_name)


class InvalidVersionError(_InvalidValueError):
    """A version that is neither a positive 32-bit integer nor ``latest``."""

    error_code = 42202
    field_name = "version"
    message = (
        "The specified version '{value}' is not a valid version id. Allowed values are "
        'between [1, 2^31-1] and the string "latest"'
    )


class InvalidSubjectError(_InvalidValueError):
    """A subject name Confluent's registry refuses: with a control character, or reserved."""

    error_code = 42208
    field_name = "subject"
    message = "The specified subject '{value}' is not a valid."
    """Confluent's wording."""


class InvalidCompatibilityLevelError(_InvalidValueError):
    """An unknown compatibility level."""

    error_code = 42203
    field_name = "compatibility"
    message = (
        "Invalid compatibility level {value!r}. Valid values are none, backward, forward, "
        "full, backward_transitive, forward_transitive, and full_transitive"
    )


class InvalidModeError(_UnprocessableError):
    """A mode other than READWRITE: this registry only runs read-write."""

    error_code = 42204


class OperationNotPermittedError(_UnprocessableError):
    """What only Confluent's IMPORT mode allows, such as registering under a chosen id."""

    error_code = 42205


class MalformedRequestError(RegistryError, ValidationError):
    """The request body is not the JSON object the endpoint expects."""

    http_status = 400
    error_code = 400


class MissingBodyError(_UnprocessableError):
    """No body where the endpoint needs one (Confluent's constraint violation: 422, code 422)."""

    error_code = 422


class StoreError(_UnavailableError):
    """The Kafka log could not be written or read (Kafka away, or the log not read yet)."""

    error_code = 50001


class StoreTimeoutError(StoreError):
    """A write to the Kafka log was not acknowledged in time; it may still land."""

    error_code = 50002


class ForwardingError(_UnavailableError):
    """A write sent to a follower could not be passed on to the leader."""

    error_code = 50003


class NotLeaderError(_UnavailableError):
    """A write reached an instance that does not lead, and no leader is known to pass it to."""

    error_code = 50004

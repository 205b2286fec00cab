"""The registry's errors carry Confluent's codes, HTTP statuses, wording and offending field."""

from __future__ import annotations

import pytest

from featurestore.errors import NotFoundError
from featurestore.errors import ValidationError
from featurestore.schema_registry.errors import InvalidCompatibilityLevelError
from featurestore.schema_registry.errors import InvalidSubjectError
from featurestore.schema_registry.errors import InvalidVersionError
from featurestore.schema_registry.errors import RegistryError
from featurestore.schema_registry.errors import SubjectNotFoundError
from featurestore.schema_registry.errors import VersionSoftDeletedError


@pytest.mark.parametrize(
    ("error", "status", "code", "field", "message"),
    [
        (
            InvalidVersionError("0"),
            422,
            42202,
            "version",
            "The specified version '0' is not a valid version id. Allowed values are "
            'between [1, 2^31-1] and the string "latest"',
        ),
        (
            InvalidSubjectError("a\tb"),
            422,
            42208,
            "subject",
            "The specified subject 'a\tb' is not a valid.",
        ),
        (
            InvalidSubjectError("{subject}"),
            422,
            42208,
            "subject",
            "The specified subject '{subject}' is not a valid.",
        ),
        (
            InvalidCompatibilityLevelError("sideways"),
            422,
            42203,
            "compatibility",
            "Invalid compatibility level 'sideways'. Valid values are none, backward, forward, "
            "full, backward_transitive, forward_transitive, and full_transitive",
        ),
        (
            InvalidCompatibilityLevelError(3),
            422,
            42203,
            "compatibility",
            "Invalid compatibility level 3. Valid values are none, backward, forward, "
            "full, backward_transitive, forward_transitive, and full_transitive",
        ),
    ],
)
def test_invalid_value_errors_name_the_value_and_field(
    error: RegistryError, status: int, code: int, field: str, message: str
) -> None:
    assert isinstance(error, ValidationError)
    assert (error.http_status, error.error_code, error.field, str(error)) == (
        status,
        code,
        field,
        message,
    )


def test_not_found_errors_name_the_subject_and_version() -> None:
    subject = SubjectNotFoundError("trades-value")
    version = VersionSoftDeletedError("trades-value", 2)
    assert isinstance(subject, NotFoundError)
    assert (subject.http_status, subject.error_code, str(subject)) == (
        404,
        40401,
        "Subject 'trades-value' not found.",
    )
    assert (version.http_status, version.error_code, str(version)) == (
        404,
        40406,
        "Subject 'trades-value' Version 2 was soft deleted. Set permanent=true to delete "
        "permanently",
    )

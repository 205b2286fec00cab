"""The SDK's RetryPolicy refuses fields that cannot describe retries, naming the field."""

from __future__ import annotations

import math
from typing import Any

import grpc
import pytest
from featurestore_client import RetryPolicy


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        ({"max_attempts": 0}, ValueError, "max_attempts must be at least 1"),
        ({"max_attempts": -3}, ValueError, "max_attempts must be at least 1"),
        ({"max_attempts": 2.5}, TypeError, "max_attempts must be an int"),
        ({"max_attempts": True}, TypeError, "max_attempts must be an int"),
        ({"initial_backoff_s": -0.1}, ValueError, "initial_backoff_s cannot be negative"),
        ({"initial_backoff_s": math.nan}, ValueError, "initial_backoff_s cannot be negative"),
        ({"initial_backoff_s": 3.0, "max_backoff_s": 2.0}, ValueError, "max_backoff_s"),
        ({"multiplier": 0.5}, ValueError, "multiplier cannot be less than 1"),
        ({"retry_codes": frozenset({"UNAVAILABLE"})}, TypeError, "retry_codes"),
        ({"retry_codes": frozenset({grpc.StatusCode.OK})}, ValueError, "cannot contain OK"),
    ],
)
def test_bad_fields_are_refused(
    fields: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        RetryPolicy(**fields)


def test_valid_policies_are_kept() -> None:
    assert RetryPolicy().max_attempts == 4
    once = RetryPolicy(max_attempts=1, initial_backoff_s=0.0, max_backoff_s=0.0, multiplier=1.0)
    assert once.backoff_s(0) == 0.0

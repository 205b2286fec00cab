"""Retries with exponential backoff and jitter, on UNAVAILABLE only, within the call's timeout."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import grpc

__all__ = ["RetryPolicy", "call_with_retries"]

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry a call the server could not take."""

    max_attempts: int = 4
    """Attempts in all, the first included; 1 disables retries."""
    initial_backoff_s: float = 0.05
    max_backoff_s: float = 2.0
    multiplier: float = 2.0
    retry_codes: frozenset[grpc.StatusCode] = frozenset({grpc.StatusCode.UNAVAILABLE})
    """The codes unary calls and exports are retried on: only codes that say the request was not
    processed, never INVALID_ARGUMENT or NOT_FOUND. Streams (anomalies, predictions) resume from
    their token after UNAVAILABLE, RESOURCE_EXHAUSTED or INTERNAL, whatever this says: a resumed
    stream neither repeats nor skips a message. ``max_attempts`` and the backoff apply to both."""
    stream_reconnect_window_s: float = 30.0
    """How long a stream keeps reconnecting after its connection went: it raises once
    ``max_attempts`` connections in a row failed and the first of them failed longer ago than
    this, so a server that restarts within it loses nothing. 0: ``max_attempts`` alone."""

    def __post_init__(self) -> None:
        """Refuse a policy that cannot describe retries, naming the field (as temporalio does)."""
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise TypeError(f"RetryPolicy.max_attempts must be an int, not {self.max_attempts!r}")
        if self.max_attempts < 1:
            raise ValueError(
                f"RetryPolicy.max_attempts must be at least 1 (1 disables retries),"
                f" not {self.max_attempts}"
            )
        if not self.initial_backoff_s >= 0:  # also refuses NaN
            raise ValueError(
                f"RetryPolicy.initial_backoff_s cannot be negative, not {self.initial_backoff_s}"
            )
        if not self.max_backoff_s >= self.initial_backoff_s:
            raise ValueError(
                f"RetryPolicy.max_backoff_s ({self.max_backoff_s}) cannot be less than"
                f" initial_backoff_s ({self.initial_backoff_s})"
            )
        if not self.stream_reconnect_window_s >= 0:  # also refuses NaN
            raise ValueError(
                "RetryPolicy.stream_reconnect_window_s cannot be negative,"
                f" not {self.stream_reconnect_window_s}"
            )
        if not self.multiplier >= 1:
            raise ValueError(f"RetryPolicy.multiplier cannot be less than 1, not {self.multiplier}")
        bad = [c for c in self.retry_codes if not isinstance(c, grpc.StatusCode)]
        if bad:
            raise TypeError(f"RetryPolicy.retry_codes must be grpc.StatusCode members, not {bad!r}")
        if grpc.StatusCode.OK in self.retry_codes:
            raise ValueError("RetryPolicy.retry_codes cannot contain OK")

    def backoff_s(self, attempt: int) -> float:
        """Full-jitter backoff before attempt ``attempt + 1``."""
        # The exponent is bounded: a stream may reconnect many times within its window.
        ceiling = min(
            self.max_backoff_s, self.initial_backoff_s * self.multiplier ** min(attempt, 64)
        )
        return random.uniform(0, ceiling)


def call_with_retries(
    policy: RetryPolicy,
    timeout_s: float | None,
    attempt: Callable[[float | None], T],
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``attempt(remaining_timeout)`` until it succeeds, fails for good or time runs out."""
    deadline = None if timeout_s is None else clock() + timeout_s
    for number in range(policy.max_attempts):
        remaining = None if deadline is None else max(0.0, deadline - clock())
        try:
            return attempt(remaining)
        except grpc.RpcError as error:
            last = number == policy.max_attempts - 1
            if error.code() not in policy.retry_codes or last:
                raise
            pause = policy.backoff_s(number)
            if deadline is not None and clock() + pause >= deadline:
                raise
            sleep(pause)
    raise AssertionError("unreachable")  # pragma: no cover

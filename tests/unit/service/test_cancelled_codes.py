"""The code a call is counted under when it ends without a status of its own."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from featurestore.service.wrapping import _code_of


class _Context:
    """What ``_code_of`` reads of a servicer context: no status set, time left."""

    def __init__(self, remaining: float | None) -> None:
        self._remaining = remaining

    def code(self) -> None:
        return None

    def time_remaining(self) -> float | None:
        return self._remaining


@pytest.mark.parametrize(
    "ended", [asyncio.CancelledError(), GeneratorExit()], ids=["task", "stream closed"]
)
def test_a_cancel_is_cancelled_and_past_the_deadline_deadline_exceeded(
    ended: BaseException,
) -> None:
    # A server stream whose client went away is closed by gRPC (GeneratorExit): not UNKNOWN.
    assert _code_of(_Context(5.0), ended) is grpc.StatusCode.CANCELLED
    assert _code_of(_Context(None), ended) is grpc.StatusCode.CANCELLED
    past = _code_of(_Context(-0.01), ended)
    assert past is grpc.StatusCode.DEADLINE_EXCEEDED


def test_another_exception_without_a_status_is_unknown() -> None:
    assert _code_of(_Context(5.0), RuntimeError()) is grpc.StatusCode.UNKNOWN

"""What the SDK's generated stubs return, for the stream tests: a server stream and its failure."""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Sequence
from typing import Any

import grpc


class Unavailable(grpc.RpcError):  # type: ignore[misc]
    """An UNAVAILABLE status as a call raises it, with gRPC's (or the server's) message."""

    def __init__(self, details: str) -> None:
        super().__init__(details)
        self._details = details

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return self._details


class StreamCall:
    """A server stream: its responses, then ``error`` when one is given (the connection going)."""

    def __init__(self, responses: Sequence[Any], error: grpc.RpcError | None = None) -> None:
        self._responses = responses
        self._error = error

    def __iter__(self) -> Iterator[Any]:
        yield from self._responses
        if self._error is not None:
            raise self._error

    def cancel(self) -> None:
        pass

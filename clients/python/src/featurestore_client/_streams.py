"""A server stream that resumes by itself after a disconnect, from the last token it received.

StreamAnomalies and StreamPredictions send a resume token with every message (and with
checkpoints that carry nothing else): :class:`ResumableStream` keeps the latest one and, when
the connection drops, calls again with it, so nothing is missed or repeated.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, Generic, TypeVar

import grpc

from featurestore_client._errors import from_rpc_error
from featurestore_client._retry import RetryPolicy

__all__ = ["ResumableStream"]

T = TypeVar("T")

_RESUMABLE = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INTERNAL}
)


class ResumableStream(Generic[T]):
    """Iterates a stream's items; after a disconnect, reconnects with the latest token it holds.

    ``convert`` turns a response into an item, or None for a checkpoint (not yielded).
    Reconnects back off as :class:`RetryPolicy` says; the attempt count resets whenever a
    message arrives, and the stream raises once ``max_attempts`` connections in a row fail.
    Close it (or use ``with``) to cancel the call.
    """

    def __init__(
        self,
        open_call: Callable[[Any], Any],
        request: Any,
        retry: RetryPolicy,
        convert: Callable[[Any], T | None],
        *,
        resume: bool = True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._open_call = open_call
        self._request = request
        self._retry = retry
        self._convert = convert
        self._resume = resume
        self._sleep = sleep
        self._call: Any = None
        self._closed = False
        self.resume_token: str | None = (
            request.resume_token if request.WhichOneof("start") == "resume_token" else None
        )
        """The latest token received (or given): where a new stream would continue."""
        self.reconnects = 0
        """How many times the stream reconnected."""

    def __iter__(self) -> Iterator[T]:
        failures = 0
        while not self._closed:
            request = type(self._request)()
            request.CopyFrom(self._request)
            if self.resume_token is not None:
                request.resume_token = self.resume_token
            self._call = self._open_call(request)
            try:
                for message in self._call:
                    failures = 0
                    self.resume_token = message.resume_token
                    item = self._convert(message)
                    if item is not None:
                        yield item
                return
            except grpc.RpcError as error:
                if self._closed and error.code() is grpc.StatusCode.CANCELLED:
                    return
                failures += 1
                if (
                    not self._resume
                    or error.code() not in _RESUMABLE
                    or failures >= self._retry.max_attempts
                ):
                    raise from_rpc_error(error) from None
                self._sleep(self._retry.backoff_s(failures - 1))
                self.reconnects += 1
            finally:
                self._call.cancel()

    def close(self) -> None:
        """Cancel the call; iteration ends."""
        self._closed = True
        if self._call is not None:
            self._call.cancel()

    def __enter__(self) -> ResumableStream[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

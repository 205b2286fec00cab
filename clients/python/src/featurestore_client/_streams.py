"""A server stream that resumes by itself after a disconnect, from the last token it received.

StreamAnomalies and StreamPredictions send a resume token with every message (and with
checkpoints that carry nothing else): :class:`ResumableStream` keeps the latest one and, when
the connection drops, calls again with it, so nothing is missed or repeated.

A request's ``start`` is a oneof: the call that resumes carries the token and no longer the
``start_time``, whose filter (items from that time on) the server then no longer applies. The
stream applies it itself, so that the items it yields pass the same filters before and after a
reconnect (a late item, timed before ``start_time`` but written after, is dropped either way).
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Callable
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from typing import Any
from typing import ClassVar
from typing import Generic
from typing import TypeVar

import grpc

from featurestore_client._closing import Closing
from featurestore_client._errors import from_rpc_error
from featurestore_client._retry import RetryPolicy

__all__ = ["ResumableStream", "set_start"]

T = TypeVar("T")

_RESUMABLE = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INTERNAL}
)
"""What a stream resumes after (the Go and TypeScript clients too): the connection went, the server
was too busy, or it failed; not RetryPolicy.retry_codes, which are for calls a retry repeats."""


def set_start(request: Any, start_time: datetime | None, resume_token: str | None) -> None:
    """Fill a stream request's ``start``: resume_token wins over start_time; neither: from now."""
    if resume_token is not None:
        request.resume_token = resume_token
    elif start_time is not None:
        if start_time.tzinfo is None:
            raise ValueError("start_time must be timezone-aware")
        request.start_time.FromDatetime(start_time.astimezone(UTC))
    else:
        request.latest.SetInParent()


class ResumableStream(Closing, Generic[T]):
    """Iterates a stream's items; after a disconnect, reconnects with the latest token it holds.

    A subclass names the response field that holds an item (:attr:`item_field`) and
    converts it (:meth:`_convert`). Reconnects back off as
    :class:`RetryPolicy` says; the attempt count resets whenever a message arrives, and the
    stream raises once ``max_attempts`` connections in a row failed over more than
    ``stream_reconnect_window_s`` (a server restart within it loses nothing). Close it (or use
    ``with``) to cancel the call.
    """

    def __init__(
        self,
        open_call: Callable[[Any], Any],
        request: Any,
        retry: RetryPolicy,
        *,
        resume: bool = True,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Open calls with ``open_call(request)``; reconnect as ``retry`` says, when ``resume``."""
        self._open_call = open_call
        self._request = request
        self._retry = retry
        self._resume = resume
        self._sleep = sleep
        self._clock = clock
        self._call: Any = None
        self._closed = False
        self._not_before: tuple[int, int] | None = (
            (request.start_time.seconds, request.start_time.nanos)
            if request.WhichOneof("start") == "start_time"
            else None
        )
        self.resume_token: str | None = (
            request.resume_token if request.WhichOneof("start") == "resume_token" else None
        )
        """The latest token received (or given): where a new stream would continue."""
        self.reconnects = 0
        """How many times the stream reconnected."""
        self.connected = False
        """Whether the current call has received a message: the server sends one as soon as it
        has opened the topic, so this turns true on a live stream, quiet or not, and false while
        the stream reconnects."""

    def __iter__(self) -> Iterator[T]:
        failures = 0
        first_failed = 0.0
        while not self._closed:
            request = type(self._request)()
            request.CopyFrom(self._request)
            if self.resume_token is not None:
                request.resume_token = self.resume_token
            self._call = self._open_call(request)
            try:
                for message in self._call:
                    failures = 0
                    self.connected = True
                    self.resume_token = message.resume_token
                    if message.HasField(self.item_field):
                        item = getattr(message, self.item_field)
                        if self._wanted(item):
                            yield self._convert(item, message.resume_token)
                return
            except grpc.RpcError as error:
                if self._closed and error.code() is grpc.StatusCode.CANCELLED:
                    return
                failures += 1
                if failures == 1:
                    first_failed = self._clock()
                gave_up = (
                    failures >= self._retry.max_attempts
                    and self._clock() - first_failed >= self._retry.stream_reconnect_window_s
                )
                if not self._resume or error.code() not in _RESUMABLE or gave_up:
                    raise from_rpc_error(error) from None
                self._sleep(self._retry.backoff_s(failures - 1))
                self.reconnects += 1
            finally:
                self.connected = False
                self._call.cancel()

    item_field: ClassVar[str]
    """The response field holding an item; a response without it is a checkpoint."""
    time_field: ClassVar[str]
    """The item's time that a request's ``start_time`` bounds (the server's filter)."""

    def _wanted(self, item: Any) -> bool:
        """Whether ``item`` is at or after the ``start_time`` the stream was opened with."""
        if self._not_before is None:
            return True
        stamp = getattr(item, self.time_field)
        return (stamp.seconds, stamp.nanos) >= self._not_before

    @abstractmethod
    def _convert(self, item: Any, resume_token: str) -> T:
        """The item of a response's :attr:`item_field`, with the token that resumes after it."""

    def close(self) -> None:
        """Cancel the call; iteration ends."""
        self._closed = True
        if self._call is not None:
            self._call.cancel()

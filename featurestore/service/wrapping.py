"""Telemetry, authentication and error mapping, wrapped around each method handler once.

grpc.aio server interceptors run per call: a coroutine per interceptor to find the handler, and a
new handler object built around the behaviour on every RPC. Here the same three concerns are one
``async`` wrapper per method, built when the method is registered (:class:`WrappingRegistrar`
stands in for the server in the generated ``add_*_to_server`` functions). Per call that is one
extra coroutine frame, a ``perf_counter``, the in-flight count and a histogram record; a span
only when tracing is on; the token check (:mod:`.auth`) only when tokens are configured.

Requests are decoded here too, inside the wrapper (the handler gRPC sees has no request
deserializer): bytes that are not the method's request message are INVALID_ARGUMENT like any other
malformed request, where gRPC itself would answer UNKNOWN with the decoder's exception class. A
request larger than the server's ``grpc.max_receive_message_length``
(:attr:`~featurestore.config.ServiceSettings.max_request_bytes`) is refused by gRPC before it gets
here, with RESOURCE_EXHAUSTED naming both sizes.

Server streams are written here (``context.write``), not handed to gRPC as a generator. A stream
its client leaves (cancelled, or the client killed: its connection gone) ends as cancelled,
counted CANCELLED, with one INFO line naming the method, however gRPC learns of it: by the
cancel, or by a write that fails. gRPC's own loop logged that failed write as an ERROR with a
traceback (``ExecuteBatchError raised in core``), which it did whenever the write failed before
the cancel came (always, when the client had stopped reading first). Any other exception still
gets its traceback.

Errors become statuses here and nowhere else: a :class:`FeatureStoreError` its own code and
message, a timeout DEADLINE_EXCEEDED, a method a servicer leaves out (``NotImplementedError``, as
the generated base classes raise) UNIMPLEMENTED, anything else INTERNAL without details (logged).
No status carries an exception's class name or a traceback.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncGenerator
from collections.abc import AsyncIterator
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Iterable
from contextlib import AbstractContextManager
from contextlib import aclosing
from functools import partial
from typing import Any

import grpc
from grpc._cython.cygrpc import ExecuteBatchError
from opentelemetry import trace

from featurestore.errors import FeatureStoreError
from featurestore.errors import ValidationError
from featurestore.service.auth import TokenCheck
from featurestore.service.auth import scope_of
from featurestore.service.convert import decode_request
from featurestore.service.telemetry import RpcTelemetry

__all__ = ["MethodWrapper", "WrappingRegistrar"]

logger = logging.getLogger(__name__)

UnaryBehavior = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
StreamBehavior = Callable[[Any, grpc.aio.ServicerContext], AsyncIterator[Any] | Awaitable[None]]
_Guard = tuple[TokenCheck, str]
"""The token check of a method and the scope the method needs."""
Decode = Callable[[Any], Any]
"""Turns what gRPC hands the behaviour (request bytes, or an iterator of them) into messages."""
_OK = grpc.StatusCode.OK
MAX_MESSAGE_CHARS = 500
"""A status message travels in a trailer (``grpc-message``, percent-encoded: up to 12 bytes a
character), and a client drops a call whose trailers pass its metadata limit (8 KiB by default)
with RESOURCE_EXHAUSTED instead of the status. A message that quotes a 20,000-character name
is cut to this length, so that the status the server chose arrives."""


def _status(exc: FeatureStoreError) -> tuple[grpc.StatusCode, str]:
    code = exc.grpc_code
    message = str(exc) or code.name.lower()
    if isinstance(exc, ValidationError) and exc.field and exc.field not in message:
        message = f"{exc.field}: {message}"
    if len(message) > MAX_MESSAGE_CHARS:
        cut = len(message) - MAX_MESSAGE_CHARS
        message = f"{message[:MAX_MESSAGE_CHARS]}… ({cut} more characters)"
    return code, message


async def _abort_for(exc: BaseException, context: grpc.aio.ServicerContext, method: str) -> None:
    """Abort the call with the status ``exc`` maps to (raises ``grpc.aio.AbortError``).

    An ``AbortError`` (the behaviour aborted the call itself) goes on unchanged.
    """
    if isinstance(exc, grpc.aio.AbortError):
        raise exc
    if isinstance(exc, FeatureStoreError):
        code, message = _status(exc)
        if code is grpc.StatusCode.INTERNAL:
            logger.error("%s failed", method, exc_info=exc)
    elif isinstance(exc, TimeoutError):
        code, message = grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded"
    elif isinstance(exc, NotImplementedError):
        # What a generated servicer base class raises for a method its subclass leaves out.
        code, message = grpc.StatusCode.UNIMPLEMENTED, "method not implemented"
    else:
        logger.error("%s failed unexpectedly", method, exc_info=exc)
        code, message = grpc.StatusCode.INTERNAL, "internal error"
    await context.abort(code, message)


def _abandoned(method: str, context: grpc.aio.ServicerContext, sent: int) -> None:
    """Say that the client of a server stream left it (unless its deadline ended it)."""
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        return
    logger.info(
        "%s: call abandoned by the client after %d responses (it cancelled the call or its"
        " connection closed); ended as cancelled", method, sent,
    )  # fmt: skip


def _decoder(handler: grpc.RpcMethodHandler) -> Decode:
    """How the wrapper decodes the requests of ``handler`` (bytes pass through without one)."""
    deserializer = handler.request_deserializer
    if deserializer is None:
        return _as_is
    if not handler.request_streaming:
        return partial(decode_request, deserializer)

    async def each(requests: AsyncIterator[bytes]) -> AsyncIterator[Any]:
        async for data in requests:
            yield decode_request(deserializer, data)

    return each


def _as_is(request: Any) -> Any:
    return request


def _code_of(context: grpc.aio.ServicerContext, exc: BaseException) -> grpc.StatusCode:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if isinstance(exc, (asyncio.CancelledError, GeneratorExit)):
        # A stream's generator closed by gRPC is a cancel too; past the deadline, the deadline's.
        remaining = context.time_remaining()
        if remaining is not None and remaining <= 0:
            return grpc.StatusCode.DEADLINE_EXCEEDED
        return grpc.StatusCode.CANCELLED
    return grpc.StatusCode.UNKNOWN


async def _refuse(guard: _Guard, context: grpc.aio.ServicerContext, method: str) -> None:
    """Abort the call unless its bearer token grants the scope the method needs."""
    tokens, scope = guard
    refusal = tokens.refusal(context.invocation_metadata(), method, scope)
    if refusal is not None:
        await context.abort(refusal.code, refusal.message)


class _Observed:
    """One call's telemetry around its behaviour: in flight, its span current, timed, counted.

    A class, not ``contextlib.contextmanager``: it is entered on every call, unary and stream.
    """

    __slots__ = ("_context", "_method", "_span", "_started", "_telemetry", "_use")

    def __init__(
        self, telemetry: RpcTelemetry, method: str, context: grpc.aio.ServicerContext
    ) -> None:
        self._telemetry = telemetry
        self._method = method
        self._context = context

    def __enter__(self) -> None:
        telemetry = self._telemetry
        self._started = time.perf_counter()
        self._span = (
            None
            if telemetry.tracer is None
            else telemetry.start_span(self._method, self._context.invocation_metadata())
        )
        telemetry.counters.in_flight += 1
        self._use: AbstractContextManager[object] | None = None
        if self._span is not None:
            self._use = trace.use_span(
                self._span, record_exception=False, set_status_on_exception=False
            )
            self._use.__enter__()

    def __exit__(self, *exc_info: Any) -> None:
        exc: BaseException | None = exc_info[1]
        try:
            if self._use is not None:
                self._use.__exit__(*exc_info)
        finally:
            code = _OK if exc is None else _code_of(self._context, exc)
            self._telemetry.counters.in_flight -= 1
            self._telemetry.finish(self._method, code, self._started, self._span)


class MethodWrapper:
    """Builds the wrapped handler of one method: telemetry outermost, then auth, then errors."""

    def __init__(self, telemetry: RpcTelemetry, tokens: TokenCheck | None = None) -> None:
        """Report to ``telemetry``; check bearer tokens with ``tokens`` (None: no check)."""
        self._telemetry = telemetry
        self._tokens = tokens
        self.stopping = False
        """Set when the server begins to stop (:meth:`drain`): calls cancelled since are its."""

    def drain(self) -> None:
        """The server begins to stop: streams cancelled from now on were not left by clients."""
        self.stopping = True

    def wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """The same handler with its behaviour wrapped and its requests decoded in the wrapper.

        Raises:
            ConfigurationError: Tokens are configured and ``method`` has no scope.
        """
        self._telemetry.prepare(method)
        tokens: _Guard | None = None
        if self._tokens is not None and (scope := scope_of(method)) is not None:
            tokens = (self._tokens, scope)
        decode = _decoder(handler)
        streaming = (handler.request_streaming, handler.response_streaming)
        name, make_handler = _HANDLER_KINDS[streaming]
        behavior = getattr(handler, name)
        if handler.response_streaming:
            wrapped: Callable[..., Any] = self._stream(behavior, method, tokens, decode)
        else:
            wrapped = self._unary(behavior, method, tokens, decode)
        # The request stays bytes on gRPC's side: decoding fails inside the wrapper, with a status.
        return make_handler(
            wrapped, request_deserializer=None, response_serializer=handler.response_serializer
        )

    def _unary(
        self, behavior: UnaryBehavior, method: str, tokens: _Guard | None, decode: Decode
    ) -> UnaryBehavior:
        telemetry = self._telemetry

        async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if tokens is not None:
                await _refuse(tokens, context, method)
            try:
                return await behavior(decode(request), context)
            except Exception as exc:
                await _abort_for(exc, context, method)

        async def run(request: Any, context: grpc.aio.ServicerContext) -> Any:
            with _Observed(telemetry, method, context):
                return await guarded(request, context)

        return run

    def _stream(
        self, behavior: StreamBehavior, method: str, tokens: _Guard | None, decode: Decode
    ) -> StreamBehavior:
        telemetry = self._telemetry

        async def guarded(
            request: Any, context: grpc.aio.ServicerContext
        ) -> AsyncGenerator[Any, None]:
            if tokens is not None:
                await _refuse(tokens, context, method)
            try:
                responses = behavior(decode(request), context)
                if inspect.isawaitable(responses):
                    # A behaviour that writes its responses itself (``context.write``), as the
                    # health service's Watch does, instead of yielding them.
                    await responses
                    return
                async for response in responses:
                    yield response
            except Exception as exc:
                await _abort_for(exc, context, method)

        async def run(request: Any, context: grpc.aio.ServicerContext) -> None:
            with _Observed(telemetry, method, context):
                sent = 0
                try:
                    # Closed here, at once, however the call ends (with the behaviour's resources).
                    async with aclosing(guarded(request, context)) as responses:
                        async for response in responses:
                            try:
                                await context.write(response)
                            except ExecuteBatchError:
                                # The client is gone. Ended as gRPC ends a call its client
                                # cancelled: a return would send a status on the dead call.
                                raise asyncio.CancelledError from None
                            sent += 1
                except asyncio.CancelledError:
                    if not self.stopping:  # a stopping server cancels the calls it cut short
                        _abandoned(method, context, sent)
                    raise

        return run


_HANDLER_KINDS: dict[tuple[bool, bool], tuple[str, Callable[..., grpc.RpcMethodHandler]]] = {
    (False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
    (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
    (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
    (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler),
}
"""By (request streaming, response streaming): the handler's behaviour and how one is made."""


class _WrappedGeneric(grpc.GenericRpcHandler):  # type: ignore[misc]  # grpc has no stubs
    """A generic handler whose handlers come out wrapped (each once, then cached)."""

    def __init__(self, inner: grpc.GenericRpcHandler, wrapper: MethodWrapper) -> None:
        self._inner = inner
        self._wrapper = wrapper
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}
        """The wrapped handler of each method this handler serves (its names are the code's)."""

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method = details.method
        wrapped = self._wrapped.get(method)
        if wrapped is None:
            handler = self._inner.service(details)
            if handler is None:
                # Not cached: any caller, before its token is checked, could fill the cache with
                # made-up method names.
                return None
            wrapped = self._wrapped[method] = self._wrapper.wrap(method, handler)
        return wrapped


class WrappingRegistrar:
    """Stands in for the server where services register: every handler is wrapped on the way.

    The generated ``add_*Servicer_to_server`` functions register each service twice (a generic
    handler and registered methods, which gRPC prefers); both are wrapped.
    """

    def __init__(self, server: grpc.aio.Server, wrapper: MethodWrapper) -> None:
        """Register on ``server``, wrapping with ``wrapper``."""
        self.server = server
        self._wrapper = wrapper

    def add_generic_rpc_handlers(self, handlers: Iterable[grpc.GenericRpcHandler]) -> None:
        """Register ``handlers``, each method wrapped."""
        self.server.add_generic_rpc_handlers(
            tuple(_WrappedGeneric(handler, self._wrapper) for handler in handlers)
        )

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, grpc.RpcMethodHandler]
    ) -> None:
        """Register ``service``'s ``handlers``, each wrapped."""
        self.server.add_registered_method_handlers(
            service,
            {name: self._wrapper.wrap(f"/{service}/{name}", h) for name, h in handlers.items()},
        )

    def add_service(self, service: str, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        """Register hand-written method handlers the way the generated code does."""
        self.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
        self.add_registered_method_handlers(service, handlers)

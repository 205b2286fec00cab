"""Server interceptors: errors to statuses (the one place), bearer-token authentication.

grpc.aio interceptors see a method handler, not the call; :func:`wrap_handler` rebuilds a handler
around its behaviour so that each interceptor is a plain ``async`` wrapper.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import grpc
from pydantic import SecretStr

from featurestore.errors import FeatureStoreError, ValidationError

__all__ = ["AuthInterceptor", "ErrorInterceptor", "UnaryBehavior", "wrap_handler"]

logger = logging.getLogger(__name__)

UnaryBehavior = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
StreamBehavior = Callable[[Any, grpc.aio.ServicerContext], AsyncIterator[Any]]
UnaryWrapper = Callable[[UnaryBehavior, str], UnaryBehavior]
StreamWrapper = Callable[[StreamBehavior, str], StreamBehavior]


def wrap_handler(
    handler: grpc.RpcMethodHandler | None,
    method: str,
    unary: UnaryWrapper,
    stream: StreamWrapper,
) -> grpc.RpcMethodHandler | None:
    """The same handler with its unary-unary or unary-stream behaviour wrapped."""
    if handler is None or handler.request_streaming:
        return handler
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(
            stream(handler.unary_stream, method),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    return grpc.unary_unary_rpc_method_handler(
        unary(handler.unary_unary, method),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def _status(exc: FeatureStoreError) -> tuple[grpc.StatusCode, str]:
    code = getattr(grpc.StatusCode, exc.grpc_code_name, grpc.StatusCode.INTERNAL)
    message = str(exc) or code.name.lower()
    if isinstance(exc, ValidationError) and exc.field and exc.field not in message:
        message = f"{exc.field}: {message}"
    return code, message


async def _abort_for(exc: BaseException, context: grpc.aio.ServicerContext, method: str) -> None:
    if isinstance(exc, FeatureStoreError):
        code, message = _status(exc)
        if code is grpc.StatusCode.INTERNAL:
            logger.error("%s failed", method, exc_info=exc)
    elif isinstance(exc, TimeoutError):
        code, message = grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded"
    else:
        logger.error("%s failed unexpectedly", method, exc_info=exc)
        code, message = grpc.StatusCode.INTERNAL, "internal error"
    await context.abort(code, message)


class ErrorInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc has no stubs
    """Turns :class:`FeatureStoreError` into its gRPC status; anything else into INTERNAL.

    Never sends a traceback or a class name: the status carries the error's own message.
    """

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        return wrap_handler(handler, handler_call_details.method, _unary_errors, _stream_errors)


def _unary_errors(behavior: UnaryBehavior, method: str) -> UnaryBehavior:
    async def run(request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await behavior(request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort_for(exc, context, method)

    return run


def _stream_errors(behavior: StreamBehavior, method: str) -> StreamBehavior:
    async def run(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        try:
            async for response in behavior(request, context):
                yield response
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort_for(exc, context, method)

    return run


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc has no stubs
    """Requires ``authorization: Bearer <token>`` with one of the configured tokens.

    Health checks stay open, so that load balancers need no token.
    """

    _OPEN_PREFIXES = ("/grpc.health.v1.Health/",)

    def __init__(self, tokens: Iterable[SecretStr]) -> None:
        self._tokens = [f"Bearer {t.get_secret_value()}".encode() for t in tokens]

    def _allowed(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> bool:
        for key, value in metadata or ():
            if key == "authorization":
                given = value if isinstance(value, bytes) else value.encode()
                return any(hmac.compare_digest(given, token) for token in self._tokens)
        return False

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method
        handler = await continuation(handler_call_details)
        if method.startswith(self._OPEN_PREFIXES) or self._allowed(
            handler_call_details.invocation_metadata
        ):
            return handler
        return wrap_handler(handler, method, _deny_unary, _deny_stream)


def _deny_unary(behavior: UnaryBehavior, method: str) -> UnaryBehavior:
    async def run(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, "a valid bearer token is required")

    return run


def _deny_stream(behavior: StreamBehavior, method: str) -> StreamBehavior:
    async def run(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, "a valid bearer token is required")
        yield  # pragma: no cover  (makes this an async generator)

    return run

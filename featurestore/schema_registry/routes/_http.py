"""What every route shares: the registry's content type, error bodies and request parsing.

Registry errors become Confluent's ``{"error_code": N, "message": "..."}`` bodies in
:func:`handle`, the one place that catches them. Booleans in query strings are read
case-insensitively, since the official Python client sends both ``true`` and ``True``.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any
from typing import TypeVar

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.responses import Response
from starlette.routing import Route

from featurestore.schema_registry.avro_schema import AVRO
from featurestore.schema_registry.errors import MalformedRequestError
from featurestore.schema_registry.errors import RegistryError
from featurestore.schema_registry.records import SchemaEntry

__all__ = [
    "CONTENT_TYPE",
    "Endpoint",
    "RegistryResponse",
    "body",
    "deleted_only",
    "entry_json",
    "error",
    "error_code",
    "flag",
    "handle",
    "http_error",
    "page",
    "route",
]

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
logger = logging.getLogger("featurestore.schema_registry.app")

Endpoint = Callable[[Request], Awaitable[Response]]
T = TypeVar("T")


class RegistryResponse(JSONResponse):
    """JSON with the registry's content type."""

    media_type = CONTENT_TYPE


def error(status: int, code: int, message: str) -> Response:
    """A Confluent error body."""
    return RegistryResponse({"error_code": code, "message": message}, status_code=status)


def handle(endpoint: Endpoint) -> Endpoint:
    """Turn what an endpoint raises into a Confluent error body."""

    @functools.wraps(endpoint)
    async def wrapper(request: Request) -> Response:
        try:
            return await endpoint(request)
        except RegistryError as exc:
            response = error(exc.http_status, exc.error_code, str(exc))
            if exc.http_status == 503:
                response.headers["Retry-After"] = "1"
            return response
        except Exception:
            logger.exception("%s %s failed", request.method, request.url.path)
            return error(500, 50001, "Error in the backend data store")

    return wrapper


def route(path: str, endpoint: Endpoint, *methods: str) -> Route:
    """A route whose errors become Confluent error bodies."""
    return Route(path, handle(endpoint), methods=list(methods))


async def http_error(_request: Request, exc: Exception) -> Response:
    """Starlette's own errors (no such route, method not allowed) as Confluent error bodies."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "Internal Server Error"
    return error(status, status, f"HTTP {status} {detail}")


def error_code(response: Response) -> int | None:
    """The ``error_code`` of a Confluent error body, if ``response`` is one."""
    try:
        decoded = json.loads(bytes(response.body))
    except ValueError:
        return None
    code = decoded.get("error_code") if isinstance(decoded, dict) else None
    return code if isinstance(code, int) else None


def flag(request: Request, name: str) -> bool:
    """A boolean query parameter (``true`` in any case)."""
    return request.query_params.get(name, "").lower() == "true"


def deleted_only(request: Request) -> bool:
    """The ``deletedOnly`` flag: Confluent's spelling, or ``deleted_only`` (its Python client's)."""
    return flag(request, "deletedOnly") or flag(request, "deleted_only")


def _int(request: Request, name: str, default: int) -> int:
    try:
        return int(request.query_params.get(name, default))
    except ValueError:
        return default


def page(request: Request, items: Sequence[T]) -> list[T]:
    """The ``offset``/``limit`` page of ``items`` the request asks for."""
    offset = max(_int(request, "offset", 0), 0)
    limit = _int(request, "limit", -1)
    return list(items[offset:] if limit < 0 else items[offset : offset + limit])


async def body(request: Request) -> dict[str, Any]:
    """The request's JSON object (empty without a body); MalformedRequestError otherwise."""
    raw = await request.body()
    if not raw:
        return {}
    try:
        decoded = json.loads(raw)
    except ValueError as exc:
        raise MalformedRequestError(f"Malformed JSON body: {exc}") from exc
    if not isinstance(decoded, dict):
        raise MalformedRequestError("The body must be a JSON object")
    return decoded


def entry_json(entry: SchemaEntry) -> dict[str, Any]:
    """A subject's version as the API shows it."""
    shown: dict[str, Any] = {
        "subject": entry.subject,
        "version": entry.version,
        "id": entry.schema_id,
        "schema": entry.schema,
    }
    if entry.schema_type != AVRO:
        shown["schemaType"] = entry.schema_type
    return shown

"""The Confluent Schema Registry REST API over a :class:`SchemaRegistry`.

Routes only translate: query strings and JSON bodies in, the registry's answers out. Registry
errors become Confluent's ``{"error_code": N, "message": "..."}`` bodies in :func:`_handle`, the
one place that catches them. Booleans in query strings are read case-insensitively, since the
official Python client sends both ``true`` and ``True``.

Among several instances (:mod:`~featurestore.schema_registry.cluster`) a read first passes the
instance's read barrier, and a write is forwarded to the leader unless this instance leads.
``GET /health`` says whether the instance serves and, if not, why (503 then).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, TypeVar

from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from featurestore.schema_registry.auth import BasicAuth
from featurestore.schema_registry.avro_schema import AVRO
from featurestore.schema_registry.cluster import Health, StandaloneNode
from featurestore.schema_registry.compatibility import CompatibilityLevel
from featurestore.schema_registry.errors import (
    InvalidModeError,
    InvalidSchemaError,
    MalformedRequestError,
    NotLeaderError,
    RegistryError,
    SubjectConfigNotFoundError,
)
from featurestore.schema_registry.forwarding import (
    FORWARDED,
    POSITION,
    Forwarder,
    LeaderUnreachableError,
)
from featurestore.schema_registry.records import SchemaEntry
from featurestore.schema_registry.registry import SchemaRegistry, parse_request_schema
from featurestore.schema_registry.state import parse_version

__all__ = ["CONTENT_TYPE", "build_app"]

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
_READWRITE = "READWRITE"
_WRITE_WAIT_S = 10.0
"""How long a write waits for a leader (an election takes the group's session timeout, 6 s)."""
_log = logging.getLogger(__name__)

Endpoint = Callable[[Request], Awaitable[Response]]
T = TypeVar("T")


class Node(Protocol):
    """This instance's place among the registry's instances (see ``cluster``)."""

    @property
    def position(self) -> int: ...

    def leader_url(self) -> str | None: ...

    async def before_read(self) -> None: ...

    def health(self) -> Health: ...


class RegistryResponse(JSONResponse):
    """JSON with the registry's content type."""

    media_type = CONTENT_TYPE


def _error(status: int, code: int, message: str) -> Response:
    return RegistryResponse({"error_code": code, "message": message}, status_code=status)


def _handle(endpoint: Endpoint) -> Endpoint:
    """Turn what an endpoint raises into a Confluent error body."""

    @functools.wraps(endpoint)
    async def wrapper(request: Request) -> Response:
        try:
            return await endpoint(request)
        except RegistryError as exc:
            response = _error(exc.http_status, exc.error_code, str(exc))
            if exc.http_status == 503:
                response.headers["Retry-After"] = "1"
            return response
        except Exception:
            _log.exception("%s %s failed", request.method, request.url.path)
            return _error(500, 50001, "Error in the backend data store")

    return wrapper


async def _http_error(_request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "Internal Server Error"
    return _error(status, status, f"HTTP {status} {detail}")


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() == "true"


def _int(request: Request, name: str, default: int) -> int:
    try:
        return int(request.query_params.get(name, default))
    except ValueError:
        return default


def _page(request: Request, items: Sequence[T]) -> list[T]:
    offset = max(_int(request, "offset", 0), 0)
    limit = _int(request, "limit", -1)
    return list(items[offset:] if limit < 0 else items[offset : offset + limit])


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise MalformedRequestError(f"Malformed JSON body: {exc}") from exc
    if not isinstance(body, dict):
        raise MalformedRequestError("The body must be a JSON object")
    return body


def _entry_json(entry: SchemaEntry) -> dict[str, Any]:
    body: dict[str, Any] = {
        "subject": entry.subject,
        "version": entry.version,
        "id": entry.schema_id,
        "schema": entry.schema,
    }
    if entry.schema_type != AVRO:
        body["schemaType"] = entry.schema_type
    return body


def build_app(
    registry: SchemaRegistry,
    lifespan: Callable[[Starlette], AbstractAsyncContextManager[None]] | None = None,
    node: Node | None = None,
    users: Mapping[str, SecretStr] | None = None,
) -> Starlette:
    """The Starlette application serving ``registry``.

    Args:
        registry: What is served.
        lifespan: Start-up and shut-down of the application.
        node: This instance among several (None: it is alone, and leads).
        users: Passwords by user name of HTTP basic auth (:mod:`.auth`); None or empty: open.
    """
    # Routes are built before any request: ``registry`` may be a stand-in until then.
    member: Node = node if node is not None else StandaloneNode(registry)
    forwarder = Forwarder()

    def read(endpoint: Endpoint) -> Endpoint:
        async def reading(request: Request) -> Response:
            await member.before_read()
            response = await endpoint(request)
            response.headers[POSITION] = str(member.position)
            return response

        return reading

    def write(endpoint: Endpoint) -> Endpoint:
        """Made here when this instance leads, else forwarded to the leader.

        While a leader is being elected, or the last one does not answer, the write waits (up to
        ``_WRITE_WAIT_S``) and is tried again: it was not made, so trying again is safe.
        """

        async def writing(request: Request) -> Response:
            deadline = time.monotonic() + _WRITE_WAIT_S
            while True:
                try:
                    return await write_once(request)
                except (NotLeaderError, LeaderUnreachableError):
                    if request.headers.get(FORWARDED) or time.monotonic() > deadline:
                        raise
                await asyncio.sleep(0.1)

        async def write_once(request: Request) -> Response:
            leader = member.leader_url()
            if leader is None:
                response = await endpoint(request)
                response.headers[POSITION] = str(member.position)
                return response
            response, position = await forwarder.forward(leader, request)
            if response.status_code == 503 and _error_code(response) == NotLeaderError.error_code:
                # The instance the log names no longer leads (the lead is changing hands).
                raise NotLeaderError(f"{leader} no longer leads; retry")
            await registry.wait_applied(position, _WRITE_WAIT_S)
            return response

        return writing

    # -- subjects and versions ---------------------------------------------------------------

    async def list_subjects(request: Request) -> Response:
        names = registry.state.subjects(
            deleted=_flag(request, "deleted"), deleted_only=_flag(request, "deleted_only")
        )
        prefix = request.query_params.get("subjectPrefix", "")
        return RegistryResponse(_page(request, [n for n in names if n.startswith(prefix)]))

    async def list_versions(request: Request) -> Response:
        subject = request.path_params["subject"]
        deleted_only = _flag(request, "deleted_only")
        entries = registry.state.entries(subject, deleted=_flag(request, "deleted") or deleted_only)
        versions = [e.version for e in entries if e.deleted or not deleted_only]
        return RegistryResponse(_page(request, versions))

    async def get_version(request: Request) -> Response:
        entry = registry.state.entry(
            request.path_params["subject"],
            parse_version(request.path_params["version"]),
            deleted=_flag(request, "deleted"),
        )
        return RegistryResponse(_entry_json(entry))

    async def get_version_schema(request: Request) -> Response:
        entry = registry.state.entry(
            request.path_params["subject"],
            parse_version(request.path_params["version"]),
            deleted=_flag(request, "deleted"),
        )
        return Response(entry.schema, media_type=CONTENT_TYPE)

    async def referenced_by(request: Request) -> Response:
        registry.state.entry(
            request.path_params["subject"], parse_version(request.path_params["version"])
        )
        return RegistryResponse([])

    async def register(request: Request) -> Response:
        body = await _body(request)
        for unsupported in ("metadata", "ruleSet"):
            if body.get(unsupported):
                raise _unsupported(unsupported)
        schema = parse_request_schema(
            body.get("schema"), body.get("schemaType"), body.get("references")
        )
        schema_id = await registry.register(request.path_params["subject"], schema)
        return RegistryResponse({"id": schema_id})

    async def lookup(request: Request) -> Response:
        body = await _body(request)
        schema = parse_request_schema(
            body.get("schema"), body.get("schemaType"), body.get("references")
        )
        entry = registry.state.find(
            request.path_params["subject"], schema, deleted=_flag(request, "deleted")
        )
        return RegistryResponse(_entry_json(entry))

    async def delete_subject(request: Request) -> Response:
        versions = await registry.delete_subject(
            request.path_params["subject"], permanent=_flag(request, "permanent")
        )
        return RegistryResponse(versions)

    async def delete_version(request: Request) -> Response:
        version = await registry.delete_version(
            request.path_params["subject"],
            parse_version(request.path_params["version"]),
            permanent=_flag(request, "permanent"),
        )
        return RegistryResponse(version)

    # -- schemas by id -----------------------------------------------------------------------

    async def get_schema(request: Request) -> Response:
        schema_id: int = request.path_params["schema_id"]
        body: dict[str, Any] = {"schema": registry.state.schema(schema_id).text}
        if _flag(request, "fetchMaxId"):
            body["maxId"] = registry.state.max_id
        return RegistryResponse(body)

    async def get_schema_text(request: Request) -> Response:
        schema = registry.state.schema(request.path_params["schema_id"])
        return Response(schema.text, media_type=CONTENT_TYPE)

    def usages(request: Request) -> list[SchemaEntry]:
        found = registry.state.usages(
            request.path_params["schema_id"], deleted=_flag(request, "deleted")
        )
        subject = request.query_params.get("subject")
        return [e for e in found if subject is None or e.subject == subject]

    async def schema_subjects(request: Request) -> Response:
        subjects = sorted({e.subject for e in usages(request)})
        return RegistryResponse(_page(request, subjects))

    async def schema_versions(request: Request) -> Response:
        pairs = [{"subject": e.subject, "version": e.version} for e in usages(request)]
        return RegistryResponse(_page(request, pairs))

    async def list_schemas(request: Request) -> Response:
        state = registry.state
        prefix = request.query_params.get("subjectPrefix", "")
        deleted = _flag(request, "deleted")
        found: list[dict[str, Any]] = []
        for subject in state.subjects(deleted=deleted):
            if subject.startswith(prefix):
                entries = state.entries(subject, deleted=deleted)
                if _flag(request, "latestOnly"):
                    entries = entries[-1:]
                found += [_entry_json(e) for e in entries]
        return RegistryResponse(_page(request, found))

    async def schema_types(_request: Request) -> Response:
        return RegistryResponse([AVRO])

    # -- compatibility -----------------------------------------------------------------------

    async def test_compatibility(request: Request) -> Response:
        body = await _body(request)
        schema = parse_request_schema(
            body.get("schema"), body.get("schemaType"), body.get("references")
        )
        raw_version = request.path_params.get("version")
        version = None if raw_version is None else parse_version(raw_version)
        problems = registry.test_compatibility(request.path_params["subject"], schema, version)
        answer: dict[str, Any] = {"is_compatible": not problems}
        if _flag(request, "verbose"):
            answer["messages"] = problems
        return RegistryResponse(answer)

    async def get_config(request: Request) -> Response:
        subject = request.path_params.get("subject")
        level = registry.state.own_level(subject)
        if level is None:
            if subject is not None and not _flag(request, "defaultToGlobal"):
                raise SubjectConfigNotFoundError(subject)
            level = registry.state.level(subject)
        return RegistryResponse({"compatibilityLevel": level.value})

    async def put_config(request: Request) -> Response:
        body = await _body(request)
        level = CompatibilityLevel.parse(body.get("compatibility", body.get("compatibilityLevel")))
        await registry.set_level(request.path_params.get("subject"), level)
        return RegistryResponse({"compatibility": level.value})

    async def delete_config(request: Request) -> Response:
        previous = await registry.delete_level(request.path_params.get("subject"))
        return RegistryResponse({"compatibilityLevel": previous.value})

    # -- the rest of the surface clients touch -----------------------------------------------

    async def get_mode(_request: Request) -> Response:
        return RegistryResponse({"mode": _READWRITE})

    async def put_mode(request: Request) -> Response:
        mode = (await _body(request)).get("mode")
        if mode != _READWRITE:
            raise InvalidModeError(f"Invalid mode {mode!r}: this registry only runs READWRITE")
        return RegistryResponse({"mode": _READWRITE})

    async def root(_request: Request) -> Response:
        return RegistryResponse({})

    async def health(_request: Request) -> Response:
        state = member.health()
        body = {
            "status": "SERVING" if state.serving else "NOT_SERVING",
            "reason": state.reason,
            "leader": state.leader,
            "leader_url": state.leader_url,
            "log_position": state.position,
        }
        return RegistryResponse(body, status_code=200 if state.serving else 503)

    async def contexts(request: Request) -> Response:
        return RegistryResponse(_page(request, ["."]))

    async def associations(_request: Request) -> Response:
        # No associations exist here: the official serializers then fall back to the
        # topic name strategy.
        return RegistryResponse([])

    routes = [
        _route("/", root, "GET"),
        _route("/health", health, "GET"),
        _route("/subjects", read(list_subjects), "GET"),
        _route("/subjects/{subject}", read(lookup), "POST"),
        _route("/subjects/{subject}", write(delete_subject), "DELETE"),
        _route("/subjects/{subject}/versions", read(list_versions), "GET"),
        _route("/subjects/{subject}/versions", write(register), "POST"),
        _route("/subjects/{subject}/versions/{version}", read(get_version), "GET"),
        _route("/subjects/{subject}/versions/{version}", write(delete_version), "DELETE"),
        _route("/subjects/{subject}/versions/{version}/schema", read(get_version_schema), "GET"),
        _route("/subjects/{subject}/versions/{version}/referencedby", read(referenced_by), "GET"),
        _route("/schemas", read(list_schemas), "GET"),
        _route("/schemas/types", read(schema_types), "GET"),
        _route("/schemas/ids/{schema_id:int}", read(get_schema), "GET"),
        _route("/schemas/ids/{schema_id:int}/schema", read(get_schema_text), "GET"),
        _route("/schemas/ids/{schema_id:int}/subjects", read(schema_subjects), "GET"),
        _route("/schemas/ids/{schema_id:int}/versions", read(schema_versions), "GET"),
        _route("/config", read(get_config), "GET"),
        _route("/config", write(put_config), "PUT"),
        _route("/config", write(delete_config), "DELETE"),
        _route("/config/{subject}", read(get_config), "GET"),
        _route("/config/{subject}", write(put_config), "PUT"),
        _route("/config/{subject}", write(delete_config), "DELETE"),
        _route("/compatibility/subjects/{subject}/versions", read(test_compatibility), "POST"),
        _route(
            "/compatibility/subjects/{subject}/versions/{version}",
            read(test_compatibility),
            "POST",
        ),
        _route("/mode", read(get_mode), "GET"),
        _route("/mode", write(put_mode), "PUT"),
        _route("/mode/{subject}", read(get_mode), "GET", "DELETE"),
        _route("/mode/{subject}", write(put_mode), "PUT"),
        _route("/contexts", read(contexts), "GET"),
        _route("/associations/resources/{namespace}/{name}", read(associations), "GET"),
    ]
    return Starlette(
        routes=routes,
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
        middleware=[Middleware(BasicAuth, users=users)] if users else None,
    )


def _error_code(response: Response) -> int | None:
    try:
        body = json.loads(bytes(response.body))
    except ValueError:
        return None
    code = body.get("error_code") if isinstance(body, dict) else None
    return code if isinstance(code, int) else None


def _route(path: str, endpoint: Endpoint, *methods: str) -> Route:
    return Route(path, _handle(endpoint), methods=list(methods))


def _unsupported(what: str) -> RegistryError:
    return InvalidSchemaError(f"{what} (data contracts) are not supported by this registry")

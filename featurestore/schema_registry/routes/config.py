"""``/config`` and ``/compatibility``: compatibility levels, and testing a schema against them."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from featurestore.schema_registry.compatibility import CompatibilityLevel
from featurestore.schema_registry.errors import InvalidSchemaError
from featurestore.schema_registry.errors import MissingBodyError
from featurestore.schema_registry.errors import SubjectConfigNotFoundError
from featurestore.schema_registry.registry import SchemaRegistry
from featurestore.schema_registry.registry import check_subject
from featurestore.schema_registry.registry import parse_request_schema
from featurestore.schema_registry.routes._http import RegistryResponse
from featurestore.schema_registry.routes._http import body
from featurestore.schema_registry.routes._http import flag
from featurestore.schema_registry.routes._http import route
from featurestore.schema_registry.routes.placement import Placement
from featurestore.schema_registry.state import parse_version

__all__ = ["ConfigRoutes"]


class ConfigRoutes:
    """The compatibility endpoints over one registry."""

    def __init__(self, registry: SchemaRegistry) -> None:
        """Serve ``registry``'s compatibility levels."""
        self.registry = registry

    def routes(self, place: Placement) -> list[Route]:
        """The routes, reads and writes placed by ``place``."""
        read, write = place.read, place.write
        test = "/compatibility/subjects/{subject}/versions"
        return [
            route("/config", read(self.get_config), "GET"),
            route("/config", write(self.put_config), "PUT"),
            route("/config", write(self.delete_config), "DELETE"),
            route("/config/{subject}", read(self.get_config), "GET"),
            route("/config/{subject}", write(self.put_config), "PUT"),
            route("/config/{subject}", write(self.delete_config), "DELETE"),
            route(test, read(self.test_compatibility), "POST"),
            route(f"{test}/{{version}}", read(self.test_compatibility), "POST"),
        ]

    async def test_compatibility(self, request: Request) -> Response:
        """``POST /compatibility/...``: whether a schema may follow the subject's versions.

        As Confluent's: the version is looked up first (``latest`` of a subject without a live
        version is no version, so anything is compatible; a missing numbered one is 40402), and
        with ``verbose`` an invalid schema is an incompatible one, its error the message.
        """
        sent = await body(request)
        subject = request.path_params["subject"]
        raw_version = request.path_params.get("version")
        version = None if raw_version is None else parse_version(raw_version)
        targets = self.registry.compatibility_targets(subject, version)
        verbose = flag(request, "verbose")
        try:
            schema = parse_request_schema(
                sent.get("schema"), sent.get("schemaType"), sent.get("references")
            )
        except InvalidSchemaError as exc:
            if not verbose:
                raise
            problems = [str(exc)]
        else:
            problems = self.registry.test_compatibility(subject, schema, targets)
        answer: dict[str, Any] = {"is_compatible": not problems}
        if verbose:
            answer["messages"] = problems
        return RegistryResponse(answer)

    async def get_config(self, request: Request) -> Response:
        """``GET /config[/{subject}]``: the level (a subject's own, or the global one)."""
        subject = request.path_params.get("subject")
        level = self.registry.state.own_level(subject)
        if level is None:
            if subject is not None and not flag(request, "defaultToGlobal"):
                raise SubjectConfigNotFoundError(subject)
            level = self.registry.state.level(subject)
        return RegistryResponse({"compatibilityLevel": level.value})

    async def put_config(self, request: Request) -> Response:
        """``PUT /config[/{subject}]``: set the level, when the body names one.

        Confluent's config holds more than the level (``normalize``, ``compatibilityGroup``,
        ``alias``, ``validateFields``, default and override metadata and rule sets), and its
        clients may send any of them, with or without a level. They are accepted and ignored:
        this registry neither stores nor applies them (it always compares schemas in normal
        form and serves no data contracts), so it does not echo them back either. A level, when
        present, must be valid. The answer is the scope's level after the update, absent for a
        subject without a level of its own.
        """
        subject = request.path_params.get("subject")
        if subject is not None:
            check_subject(subject)
        if not await request.body():
            raise MissingBodyError("The request body may not be empty")
        sent = await body(request)
        raw_level = sent.get("compatibility")
        if raw_level is None:
            raw_level = sent.get("compatibilityLevel")
        if raw_level is not None:
            await self.registry.set_level(subject, CompatibilityLevel.parse(raw_level))
        state = self.registry.state
        level = state.level(None) if subject is None else state.own_level(subject)
        return RegistryResponse({} if level is None else {"compatibility": level.value})

    async def delete_config(self, request: Request) -> Response:
        """``DELETE /config[/{subject}]``: drop the level, answer the one it had."""
        previous = await self.registry.delete_level(request.path_params.get("subject"))
        return RegistryResponse({"compatibilityLevel": previous.value})

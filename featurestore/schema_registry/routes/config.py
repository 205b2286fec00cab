"""``/config`` and ``/compatibility``: compatibility levels, and testing a schema against them."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from featurestore.schema_registry.compatibility import CompatibilityLevel
from featurestore.schema_registry.errors import SubjectConfigNotFoundError
from featurestore.schema_registry.registry import SchemaRegistry, parse_request_schema
from featurestore.schema_registry.routes._http import RegistryResponse, body, flag, route
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
        """``POST /compatibility/...``: whether a schema may follow the subject's versions."""
        sent = await body(request)
        schema = parse_request_schema(
            sent.get("schema"), sent.get("schemaType"), sent.get("references")
        )
        raw_version = request.path_params.get("version")
        version = None if raw_version is None else parse_version(raw_version)
        problems = self.registry.test_compatibility(request.path_params["subject"], schema, version)
        answer: dict[str, Any] = {"is_compatible": not problems}
        if flag(request, "verbose"):
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
        """``PUT /config[/{subject}]``: set the level."""
        sent = await body(request)
        level = CompatibilityLevel.parse(sent.get("compatibility", sent.get("compatibilityLevel")))
        await self.registry.set_level(request.path_params.get("subject"), level)
        return RegistryResponse({"compatibility": level.value})

    async def delete_config(self, request: Request) -> Response:
        """``DELETE /config[/{subject}]``: drop the level, answer the one it had."""
        previous = await self.registry.delete_level(request.path_params.get("subject"))
        return RegistryResponse({"compatibilityLevel": previous.value})

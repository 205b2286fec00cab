"""``/schemas``: schemas by id, where each is used, and the list of every schema."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from featurestore.schema_registry.avro_schema import AVRO
from featurestore.schema_registry.records import SchemaEntry
from featurestore.schema_registry.registry import SchemaRegistry
from featurestore.schema_registry.routes._http import CONTENT_TYPE
from featurestore.schema_registry.routes._http import RegistryResponse
from featurestore.schema_registry.routes._http import entry_json
from featurestore.schema_registry.routes._http import flag
from featurestore.schema_registry.routes._http import page
from featurestore.schema_registry.routes._http import route
from featurestore.schema_registry.routes.placement import Placement

__all__ = ["SchemaRoutes"]


class SchemaRoutes:
    """The schemas' endpoints over one registry (all reads)."""

    def __init__(self, registry: SchemaRegistry) -> None:
        """Serve ``registry``'s schemas."""
        self.registry = registry

    def routes(self, place: Placement) -> list[Route]:
        """The routes, behind ``place``'s read barrier."""
        read = place.read
        by_id = "/schemas/ids/{schema_id:int}"
        return [
            route("/schemas", read(self.list_schemas), "GET"),
            route("/schemas/types", read(self.schema_types), "GET"),
            route(by_id, read(self.get_schema), "GET"),
            route(f"{by_id}/schema", read(self.get_schema_text), "GET"),
            route(f"{by_id}/subjects", read(self.schema_subjects), "GET"),
            route(f"{by_id}/versions", read(self.schema_versions), "GET"),
        ]

    async def get_schema(self, request: Request) -> Response:
        """``GET /schemas/ids/{id}`` (with the largest id on ``fetchMaxId``)."""
        schema_id: int = request.path_params["schema_id"]
        shown: dict[str, Any] = {"schema": self.registry.state.schema(schema_id).text}
        if flag(request, "fetchMaxId"):
            shown["maxId"] = self.registry.state.max_id
        return RegistryResponse(shown)

    async def get_schema_text(self, request: Request) -> Response:
        """``GET /schemas/ids/{id}/schema``: the schema's text alone."""
        schema = self.registry.state.schema(request.path_params["schema_id"])
        return Response(schema.text, media_type=CONTENT_TYPE)

    def _usages(self, request: Request) -> list[SchemaEntry]:
        found = self.registry.state.usages(
            request.path_params["schema_id"], deleted=flag(request, "deleted")
        )
        subject = request.query_params.get("subject")
        return [e for e in found if subject is None or e.subject == subject]

    async def schema_subjects(self, request: Request) -> Response:
        """``GET /schemas/ids/{id}/subjects``."""
        subjects = sorted({e.subject for e in self._usages(request)})
        return RegistryResponse(page(request, subjects))

    async def schema_versions(self, request: Request) -> Response:
        """``GET /schemas/ids/{id}/versions``: subject and version pairs."""
        pairs = [{"subject": e.subject, "version": e.version} for e in self._usages(request)]
        return RegistryResponse(page(request, pairs))

    async def list_schemas(self, request: Request) -> Response:
        """``GET /schemas``: every version of every subject (by prefix, latest only)."""
        state = self.registry.state
        prefix = request.query_params.get("subjectPrefix", "")
        deleted = flag(request, "deleted")
        found: list[dict[str, Any]] = []
        for subject in state.subjects(deleted=deleted):
            if subject.startswith(prefix):
                entries = state.entries(subject, deleted=deleted)
                if flag(request, "latestOnly"):
                    entries = entries[-1:]
                found += [entry_json(e) for e in entries]
        return RegistryResponse(page(request, found))

    async def schema_types(self, _request: Request) -> Response:
        """``GET /schemas/types``: Avro only."""
        return RegistryResponse([AVRO])

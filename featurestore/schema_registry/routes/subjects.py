"""``/subjects``: subjects and their versions, registering, looking up and deleting schemas."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from featurestore.schema_registry.errors import InvalidSchemaError
from featurestore.schema_registry.errors import MalformedRequestError
from featurestore.schema_registry.registry import SchemaRegistry
from featurestore.schema_registry.registry import check_subject
from featurestore.schema_registry.registry import parse_request_schema
from featurestore.schema_registry.routes._http import CONTENT_TYPE
from featurestore.schema_registry.routes._http import RegistryResponse
from featurestore.schema_registry.routes._http import body
from featurestore.schema_registry.routes._http import deleted_only
from featurestore.schema_registry.routes._http import entry_json
from featurestore.schema_registry.routes._http import flag
from featurestore.schema_registry.routes._http import page
from featurestore.schema_registry.routes._http import route
from featurestore.schema_registry.routes.placement import Placement
from featurestore.schema_registry.state import parse_version

__all__ = ["SubjectRoutes"]


class SubjectRoutes:
    """The subjects' endpoints over one registry."""

    def __init__(self, registry: SchemaRegistry) -> None:
        """Serve ``registry``'s subjects."""
        self.registry = registry

    def routes(self, place: Placement) -> list[Route]:
        """The routes, reads and writes placed by ``place``."""
        read, write = place.read, place.write
        version = "/subjects/{subject}/versions/{version}"
        return [
            route("/subjects", read(self.list_subjects), "GET"),
            route("/subjects/{subject}", read(self.lookup), "POST"),
            route("/subjects/{subject}", write(self.delete_subject), "DELETE"),
            route("/subjects/{subject}/versions", read(self.list_versions), "GET"),
            route("/subjects/{subject}/versions", write(self.register), "POST"),
            route(version, read(self.get_version), "GET"),
            route(version, write(self.delete_version), "DELETE"),
            route(f"{version}/schema", read(self.get_version_schema), "GET"),
            route(f"{version}/referencedby", read(self.referenced_by), "GET"),
        ]

    async def list_subjects(self, request: Request) -> Response:
        """``GET /subjects``: the names, by prefix, deleted ones on request."""
        names = self.registry.state.subjects(
            deleted=flag(request, "deleted"), deleted_only=deleted_only(request)
        )
        prefix = request.query_params.get("subjectPrefix", "")
        return RegistryResponse(page(request, [n for n in names if n.startswith(prefix)]))

    async def list_versions(self, request: Request) -> Response:
        """``GET /subjects/{subject}/versions``."""
        subject = request.path_params["subject"]
        only_deleted = deleted_only(request)
        entries = self.registry.state.entries(
            subject, deleted=flag(request, "deleted") or only_deleted
        )
        versions = [e.version for e in entries if e.deleted or not only_deleted]
        return RegistryResponse(page(request, versions))

    async def get_version(self, request: Request) -> Response:
        """``GET /subjects/{subject}/versions/{version}``."""
        entry = self.registry.state.entry(
            request.path_params["subject"],
            parse_version(request.path_params["version"]),
            deleted=flag(request, "deleted"),
        )
        return RegistryResponse(entry_json(entry))

    async def get_version_schema(self, request: Request) -> Response:
        """``GET /subjects/{subject}/versions/{version}/schema``: the schema's text alone."""
        entry = self.registry.state.entry(
            request.path_params["subject"],
            parse_version(request.path_params["version"]),
            deleted=flag(request, "deleted"),
        )
        return Response(entry.schema, media_type=CONTENT_TYPE)

    async def referenced_by(self, request: Request) -> Response:
        """``GET .../referencedby``: always empty (references are not supported).

        The version may be soft-deleted (Confluent looks it up with ``deleted=true``).
        """
        self.registry.state.entry(
            request.path_params["subject"],
            parse_version(request.path_params["version"]),
            deleted=True,
        )
        return RegistryResponse([])

    async def register(self, request: Request) -> Response:
        """``POST /subjects/{subject}/versions``: register a schema, answer its id.

        ``id`` and ``version`` in the body are checked as Confluent's registry checks them
        outside IMPORT mode (see :meth:`SchemaRegistry.register`); a negative ``id`` or a
        ``version`` below 1 is the same as leaving it out, as there.
        """
        sent = await body(request)
        subject = check_subject(request.path_params["subject"])
        for unsupported in ("metadata", "ruleSet"):
            if sent.get(unsupported):
                raise InvalidSchemaError(
                    f"{unsupported} (data contracts) are not supported by this registry"
                )
        schema = parse_request_schema(
            sent.get("schema"), sent.get("schemaType"), sent.get("references")
        )
        schema_id = await self.registry.register(
            subject,
            schema,
            version=_optional_number(sent, "version", none_below=1),
            schema_id=_optional_number(sent, "id", none_below=0),
        )
        return RegistryResponse({"id": schema_id})

    async def lookup(self, request: Request) -> Response:
        """``POST /subjects/{subject}``: the version under which a schema is registered."""
        sent = await body(request)
        schema = parse_request_schema(
            sent.get("schema"), sent.get("schemaType"), sent.get("references")
        )
        entry = self.registry.state.find(
            request.path_params["subject"], schema, deleted=flag(request, "deleted")
        )
        return RegistryResponse(entry_json(entry))

    async def delete_subject(self, request: Request) -> Response:
        """``DELETE /subjects/{subject}`` (soft, or ``permanent`` after a soft delete)."""
        versions = await self.registry.delete_subject(
            request.path_params["subject"], permanent=flag(request, "permanent")
        )
        return RegistryResponse(versions)

    async def delete_version(self, request: Request) -> Response:
        """``DELETE /subjects/{subject}/versions/{version}``."""
        version = await self.registry.delete_version(
            request.path_params["subject"],
            parse_version(request.path_params["version"]),
            permanent=flag(request, "permanent"),
        )
        return RegistryResponse(version)


def _optional_number(sent: dict[str, Any], name: str, *, none_below: int) -> int | None:
    """The integer field ``name`` of a body; None when absent, null or below ``none_below``."""
    value = sent.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedRequestError(f"{name} must be an integer, not {value!r}")
    return value if value >= none_below else None

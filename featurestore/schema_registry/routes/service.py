"""The rest of the surface clients touch: ``/``, ``/health``, ``/mode``, contexts, associations."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from featurestore.schema_registry.errors import InvalidModeError
from featurestore.schema_registry.routes._http import RegistryResponse
from featurestore.schema_registry.routes._http import body
from featurestore.schema_registry.routes._http import page
from featurestore.schema_registry.routes._http import route
from featurestore.schema_registry.routes.placement import Node
from featurestore.schema_registry.routes.placement import Placement

__all__ = ["ServiceRoutes"]

_READWRITE = "READWRITE"


class ServiceRoutes:
    """The instance's own endpoints: its health, its (only) mode, and empty listings."""

    def __init__(self, node: Node) -> None:
        """Report ``node``'s health."""
        self.node = node

    def routes(self, place: Placement) -> list[Route]:
        """The routes; ``/`` and ``/health`` answer without the read barrier."""
        read, write = place.read, place.write
        return [
            route("/", self.root, "GET"),
            route("/health", self.health, "GET"),
            route("/mode", read(self.get_mode), "GET"),
            route("/mode", write(self.put_mode), "PUT"),
            route("/mode/{subject}", read(self.get_mode), "GET", "DELETE"),
            route("/mode/{subject}", write(self.put_mode), "PUT"),
            route("/contexts", read(self.contexts), "GET"),
            route("/associations/resources/{namespace}/{name}", read(self.associations), "GET"),
        ]

    async def root(self, _request: Request) -> Response:
        """``GET /``: an empty object, as Confluent's registry answers."""
        return RegistryResponse({})

    async def health(self, _request: Request) -> Response:
        """``GET /health``: whether the instance serves and, if not, why (503 then)."""
        state = self.node.health()
        shown = {
            "status": "SERVING" if state.serving else "NOT_SERVING",
            "reason": state.reason,
            "leader": state.leader,
            "leader_url": state.leader_url,
            "log_position": state.position,
        }
        return RegistryResponse(shown, status_code=200 if state.serving else 503)

    async def get_mode(self, _request: Request) -> Response:
        """``GET /mode``: always READWRITE."""
        return RegistryResponse({"mode": _READWRITE})

    async def put_mode(self, request: Request) -> Response:
        """``PUT /mode``: READWRITE is accepted, any other mode refused."""
        mode = (await body(request)).get("mode")
        if mode != _READWRITE:
            raise InvalidModeError(f"Invalid mode {mode!r}: this registry only runs READWRITE")
        return RegistryResponse({"mode": _READWRITE})

    async def contexts(self, request: Request) -> Response:
        """``GET /contexts``: the default context only."""
        return RegistryResponse(page(request, ["."]))

    async def associations(self, _request: Request) -> Response:
        """No associations exist: the official serializers fall back to topic names."""
        return RegistryResponse([])

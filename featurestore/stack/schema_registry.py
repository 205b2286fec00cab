"""The project's own schema registry (``featurestore.schema_registry``) as a stack server."""

from __future__ import annotations

import requests
from typing_extensions import override

from featurestore.stack.base import OwnProcess

__all__ = ["SchemaRegistryServer"]


class SchemaRegistryServer(OwnProcess):
    """Serves the Confluent REST API; its state is the compacted ``_schemas`` topic."""

    name = "schema-registry"
    module = "featurestore.schema_registry"

    @override
    def address(self) -> str:
        """The registry's URL, as clients are configured with it."""
        return self.settings.schema_registry.url

    @override
    def healthy(self) -> bool:
        """Its ``GET /health`` says SERVING: the log is read and Kafka answers."""
        try:
            reply = requests.get(f"{self._own_url()}/health", timeout=2)
            if reply.status_code == 404:  # an instance started before /health existed
                reply = requests.get(f"{self._own_url()}/subjects", timeout=2)
        except requests.RequestException:
            return False
        return reply.status_code == 200

    @override
    def not_serving(self) -> dict[str, str] | None:
        """Why its health says NOT_SERVING (``featurestore stack status`` prints it)."""
        try:
            body = requests.get(f"{self._own_url()}/health", timeout=2).json()
        except (requests.RequestException, ValueError):
            return None
        reason = body.get("reason") if isinstance(body, dict) else None
        return {"kafka": str(reason)} if reason else None

    def _own_url(self) -> str:
        registry = self.settings.schema_registry
        return f"http://{registry.host}:{registry.port}"

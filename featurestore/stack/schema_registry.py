"""The project's own schema registry (``featurestore.schema_registry``) as a stack server."""

from __future__ import annotations

import sys

import requests

from featurestore.stack.base import Component

__all__ = ["SchemaRegistryServer"]


class SchemaRegistryServer(Component):
    """Serves the Confluent REST API; its state is the compacted ``_schemas`` topic."""

    name = "schema-registry"

    def marker(self) -> str:
        return "featurestore.schema_registry"

    def address(self) -> str:
        return self.settings.schema_registry.url

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def launch(self) -> int:
        return self.process.start(
            [sys.executable, "-m", "featurestore.schema_registry"],
            env=self.child_env(),
        )

    def healthy(self) -> bool:
        try:
            return requests.get(f"{self.address()}/subjects", timeout=2).status_code == 200
        except requests.RequestException:
            return False

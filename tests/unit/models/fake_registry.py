"""A model registry over a dict, for the alias followers' unit tests (no MLflow there)."""

from __future__ import annotations

from dataclasses import dataclass

from models.registry import ModelRef


@dataclass
class DictRegistry:
    """The alias lookups a follower makes (:meth:`models.registry.ModelRegistry.alias`)."""

    versions: dict[str, str]
    """The version under each alias; change it to promote."""
    tracking_uri: str = "http://mlflow.invalid"

    def alias(self, name: str, alias: str = "champion") -> ModelRef | None:
        """The version ``alias`` points at, or None."""
        version = self.versions.get(alias)
        return None if version is None else ModelRef(name, version)

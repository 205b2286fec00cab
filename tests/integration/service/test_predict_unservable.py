"""A model version that cannot be served is loaded once; one that failed for another cause again.

Against the stack's MLflow (the versions exist); the loader stands in for MLflow's download so
that each version fails as the test needs.
"""

from __future__ import annotations

import asyncio

import pytest

from featurestore.config import Settings
from featurestore.errors import ConfigurationError
from featurestore.errors import FeatureStoreError
from featurestore.service.models import LoadedModel
from featurestore.service.models import ServedModels
from tests.integration.service.mlflow_models import RegisteredModels

pytestmark = pytest.mark.integration


def test_a_version_that_cannot_be_served_is_not_loaded_again(
    stack: Settings, models: RegisteredModels
) -> None:
    loads: list[str] = []

    def loader(uri: str, name: str, version: str) -> LoadedModel:
        loads.append(version)
        if version == "1":  # its files never change: no load can succeed
            raise ConfigurationError(f"model {name} version {version} has no input signature")
        raise FeatureStoreError(f"model {name} version {version} cannot be loaded: timed out")

    async def main() -> None:
        served = ServedModels(stack.mlflow.tracking_uri, loader=loader)
        try:
            for version in ("1", "1", "1", "2", "2"):
                with pytest.raises(FeatureStoreError):
                    await served.get(models.name, version=version)
        finally:
            await served.close()

    asyncio.run(main())
    assert loads == ["1", "2", "2"]  # a load that may succeed later is tried again

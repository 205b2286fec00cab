"""A model version that cannot be served is loaded once; one that failed for another cause again.
A starting server loads each champion ahead of the first Predict.

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
from featurestore.service.models import load_pyfunc
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


def test_champions_are_loaded_ahead_of_the_first_predict(
    stack: Settings, models: RegisteredModels
) -> None:
    """What ``featurestore serve`` runs once it serves: each registered model's champion loaded,
    so that Predict finds it (champion -> version 1 here), and no other version."""
    loads: list[tuple[str, str]] = []

    def loader(uri: str, name: str, version: str) -> LoadedModel:
        loads.append((name, version))
        if name != models.name:  # the stack's other models: not this test's to load
            raise FeatureStoreError(f"model {name} version {version}: not loaded by this test")
        return load_pyfunc(uri, name, version)

    async def main() -> None:
        served = ServedModels(stack.mlflow.tracking_uri, loader=loader)
        try:
            preloaded = await served.preload_champions()
            assert models.name in preloaded
            assert (models.name, "1") in loads
            assert (models.name, "2") not in loads
            before = len(loads)
            model = await served.get(models.name)  # alias champion, as Predict asks by default
            assert model.version == "1" and len(loads) == before  # no load on the call's path
        finally:
            await served.close()

    asyncio.run(main())

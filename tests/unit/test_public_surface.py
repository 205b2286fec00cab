"""The public surface of the store's packages and of the SDK is what ``__all__`` says.

As httpx and temporalio do: each package re-exports from its modules, and a test pins what it
means to export, so that a name appearing or vanishing is a decision, not an accident.
"""

from __future__ import annotations

import importlib
import types

import featurestore_client
import pytest

EXPECTED = {
    "featurestore.online": [
        "EntityKey",
        "EntityValue",
        "FeatureCatalog",
        "FeatureRef",
        "FeatureRow",
        "FeatureScalar",
        "FeatureSpec",
        "FeatureStatus",
        "FeatureValue",
        "FeatureViewSpec",
        "OnlineFeatures",
        "OnlineStore",
        "RedisOnlineStore",
        "RedisOnlineWriter",
        "StaticCatalog",
        "ValueType",
        "WriteResult",
        "catalog_from_feast",
        "catalog_from_feast_repo",
    ],
    "featurestore.offline": [
        "EntitySource",
        "ExportStats",
        "LabelSpec",
        "NaiveTimestampWarning",
        "OfflineStore",
        "PostgresOfflineStore",
        "TrainingRequest",
        "add_forward_labels",
        "create_offline_tables",
        "ensure_partitions",
        "export_parquet",
        "write_feature_rows",
    ],
    "featurestore.service": [
        "SERVICE_NAMES",
        "ServiceServer",
        "ServiceSettings",
        "Telemetry",
        "create_server",
        "new_event_loop",
        "run_server",
        "serve",
    ],
}


def _public_names(package: types.ModuleType) -> set[str]:
    """Names bound in the package that are neither private nor its submodules."""
    return {
        name
        for name, value in vars(package).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"  # from __future__ import annotations
    }


def _check_all(package: types.ModuleType) -> None:
    exported = list(package.__all__)
    assert exported == sorted(exported), f"{package.__name__}.__all__ is not sorted"
    assert len(set(exported)) == len(exported), f"{package.__name__}.__all__ repeats a name"
    for name in exported:
        assert hasattr(package, name), f"{package.__name__}.__all__ names missing {name}"
    unlisted = _public_names(package) - set(exported)
    assert not unlisted, f"{package.__name__} binds {sorted(unlisted)} outside __all__"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_store_packages_export_what_they_mean_to(name: str) -> None:
    package = importlib.import_module(name)
    assert sorted(package.__all__) == EXPECTED[name]
    _check_all(package)


def test_sdk_exports_its_own_types_only() -> None:
    """The SDK's ``__all__`` is checked by rule (its list changes with the SDK's features)."""
    _check_all(featurestore_client)
    for name in featurestore_client.__all__:
        value = getattr(featurestore_client, name)
        module = getattr(value, "__module__", "featurestore_client")
        assert module.startswith("featurestore_client"), f"{name} comes from {module}"
    assert "FeatureStoreClient" in featurestore_client.__all__
    assert "RetryPolicy" in featurestore_client.__all__

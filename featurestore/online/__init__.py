"""The online store: the latest feature row of every entity, in Feast's Redis layout."""

from featurestore.online.base import (
    EntityKey,
    EntityValue,
    FeatureCatalog,
    FeatureRef,
    FeatureRow,
    FeatureScalar,
    FeatureSpec,
    FeatureStatus,
    FeatureValue,
    FeatureViewSpec,
    OnlineFeatures,
    OnlineStore,
    ValueType,
    WriteResult,
)
from featurestore.online.catalog import StaticCatalog, catalog_from_feast, catalog_from_feast_repo
from featurestore.online.redis import RedisOnlineStore, RedisOnlineWriter

__all__ = [
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
]

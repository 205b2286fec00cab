"""What the store defines (entities, feature views, feature services), read from Feast's registry.

Domain dataclasses at this boundary, never Feast objects; Feast is imported only by the
functions that talk to the registry (:func:`load_definitions`, :func:`apply_definitions`).
"""

from __future__ import annotations

from featurestore.definitions.catalog import PROJECT, market_definitions
from featurestore.definitions.model import (
    Definitions,
    Entity,
    Feature,
    FeatureRef,
    FeatureService,
    FeatureView,
    SourceTable,
    ValueType,
)
from featurestore.definitions.registry import ApplyResult, apply_definitions, load_definitions

__all__ = [
    "PROJECT",
    "ApplyResult",
    "Definitions",
    "Entity",
    "Feature",
    "FeatureRef",
    "FeatureService",
    "FeatureView",
    "SourceTable",
    "ValueType",
    "apply_definitions",
    "load_definitions",
    "market_definitions",
]

"""Which feature views the processors materialize, read from the definitions (Feast registry).

The job never hard-codes a view: it takes the views whose ``source_topic`` tag is its topic and
whose ``kind`` tag says what they hold (``ohlcv`` bars or ``rolling`` features), checks that it
computes every feature they declare, and writes to their tables and online keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from featurestore.definitions import Definitions, FeatureView
from featurestore.errors import ConfigurationError
from featurestore.online import StaticCatalog
from featurestore.online.base import FeatureSpec, FeatureViewSpec
from featurestore.online.base import ValueType as OnlineType
from processors.core.output import BAR_FEATURES
from processors.core.rolling import ROLLING_FEATURES

__all__ = ["MaterializedViews"]

_PRODUCED = {"ohlcv": BAR_FEATURES, "rolling": ROLLING_FEATURES}


def _pick(definitions: Definitions, topic: str, kind: str) -> FeatureView:
    found = [
        v
        for v in definitions.views
        if v.tags.get("kind") == kind and (v.source_topic or topic) == topic
    ]
    if len(found) != 1:
        names = ", ".join(v.name for v in found) or "none"
        raise ConfigurationError(
            f"project {definitions.project!r}: expected one feature view of kind {kind!r} for "
            f"topic {topic!r}, found {names}; run `featurestore registry apply`"
        )
    view = found[0]
    unknown = [f for f in view.feature_names if f not in _PRODUCED[kind]]
    if unknown:
        raise ConfigurationError(
            f"feature view {view.name!r} declares {unknown}, which the processors do not compute"
            f" (they compute {', '.join(_PRODUCED[kind])})"
        )
    return view


@dataclass(frozen=True)
class MaterializedViews:
    """The bars and rolling views of one topic, as the registry defines them."""

    definitions: Definitions
    topic: str
    bars: FeatureView
    rolling: FeatureView

    @classmethod
    def resolve(cls, definitions: Definitions, topic: str) -> MaterializedViews:
        """Find the views of ``topic``; ConfigurationError when they are missing or unknown."""
        bars = _pick(definitions, topic, "ohlcv")
        rolling = _pick(definitions, topic, "rolling")
        keys = {v.entities for v in (bars, rolling)}
        if len(keys) != 1 or len(bars.entities) != 1:
            raise ConfigurationError("the processors need both views keyed by one entity")
        return cls(definitions, topic, bars, rolling)

    @property
    def join_key(self) -> str:
        """The entity's join key column (``symbol``)."""
        return self.definitions.entity(self.bars.entities[0]).join_key

    def online_catalog(self) -> StaticCatalog:
        """The online store's view of the same definitions (TTL 0 means never expires)."""
        specs = []
        for view in (self.bars, self.rolling):
            features = tuple(
                FeatureSpec(f.name, OnlineType[f.value_type.name]) for f in view.features
            )
            ttl = view.ttl if view.ttl > timedelta(0) else None
            specs.append(FeatureViewSpec(view.name, (self.join_key,), features, ttl))
        return StaticCatalog.of(self.definitions.project, specs)

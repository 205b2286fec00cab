"""Which feature views the processors materialize: the applied stream views of one topic.

Nothing here names a view: the job takes every view whose stream source reads its topic,
compiles them (:func:`processors.features.compile_topic`, which refuses what it cannot
compute, naming the view and field) and writes to their tables and online keys.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from featurestore.definitions import Definitions, FeatureView
from featurestore.errors import ConfigurationError
from featurestore.online import StaticCatalog
from featurestore.online.base import FeatureSpec, FeatureViewSpec
from featurestore.online.base import ValueType as OnlineType
from processors.features import TopicPlan, compile_topic

__all__ = ["MaterializedViews"]


@dataclass(frozen=True)
class MaterializedViews:
    """The stream views of one topic, as the registry defines them, and their plan."""

    definitions: Definitions
    topic: str
    views: tuple[FeatureView, ...]
    plan: TopicPlan
    """All the views together: the fields every record is decoded into."""
    plans: dict[str, TopicPlan]
    """Each view alone: each has its own state and next offset (a new view starts at 0)."""

    @classmethod
    def resolve(cls, definitions: Definitions, topic: str) -> MaterializedViews:
        """The views computed from ``topic``; ConfigurationError when there are none or bad."""
        views = tuple(
            v for v in definitions.views if v.stream is not None and v.stream.source.topic == topic
        )
        if not views:
            raise ConfigurationError(
                f"project {definitions.project!r}: no stream feature view reads topic {topic!r};"
                " run `featurestore registry apply`"
            )
        entities = {v.entities for v in views}
        if len(entities) != 1 or len(views[0].entities) != 1:
            names = ", ".join(v.name for v in views)
            raise ConfigurationError(
                f"the views of topic {topic!r} ({names}) must be keyed by the same one entity"
            )
        join_key = definitions.entity(views[0].entities[0]).join_key
        plans = {v.name: compile_topic([v], join_key) for v in views}
        return cls(definitions, topic, views, compile_topic(views, join_key), plans)

    @property
    def join_key(self) -> str:
        """The entity's join key column."""
        return self.plan.join_key

    def view(self, name: str) -> FeatureView:
        """The view called ``name``."""
        for view in self.views:
            if view.name == name:
                return view
        raise ConfigurationError(f"topic {self.topic!r} has no stream view {name!r}")

    def fingerprint(self, name: str) -> str:
        """What a view's stored rows mean: its computation and features, hashed.

        A view whose fingerprint changed under the same name would mix rows of two meanings
        in one table; the processor refuses to continue its state (apply a new view instead).
        """
        view = self.view(name)
        assert view.stream is not None
        stream = view.stream
        text = repr(
            (
                sorted((f.name, f.value_type.value) for f in view.features),
                stream.source.topic, stream.source.entity_field, stream.source.timestamp_field,
                stream.source.id_field, stream.source.watermark_delay,
                sorted(stream.source.columns.items()), stream.aggregations,
                sorted(stream.derived.items()), stream.tile, stream.running,
            )
        )  # fmt: skip
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def online_catalog(self) -> StaticCatalog:
        """The online store's view of the same definitions (TTL 0 means never expires)."""
        specs = []
        for view in self.views:
            features = tuple(
                FeatureSpec(f.name, OnlineType[f.value_type.name]) for f in view.features
            )
            ttl = view.ttl if view.ttl > timedelta(0) else None
            specs.append(FeatureViewSpec(view.name, (self.join_key,), features, ttl))
        return StaticCatalog.of(self.definitions.project, specs)

"""Domain types for what the Feast registry defines: entities, feature views, feature services.

These are what the service, the processors and the offline export use; Feast's own objects are
converted at one edge (:mod:`featurestore.definitions.feast_codec`) and nowhere else, so callers
never pay ``import feast`` nor depend on its classes.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from featurestore.errors import NotFoundError, ValidationError

__all__ = [
    "Definitions",
    "Entity",
    "Feature",
    "FeatureRef",
    "FeatureService",
    "FeatureView",
    "SourceTable",
    "ValueType",
]


class ValueType(enum.Enum):
    """The value types a feature may have (a subset of Feast's, the ones this store uses)."""

    FLOAT64 = "Float64"
    INT64 = "Int64"
    STRING = "String"
    BOOL = "Bool"

    @property
    def postgres_type(self) -> str:
        """The column type of the offline table."""
        return _PG_TYPES[self]


_PG_TYPES = {
    ValueType.FLOAT64: "double precision",
    ValueType.INT64: "bigint",
    ValueType.STRING: "text",
    ValueType.BOOL: "boolean",
}


@dataclass(frozen=True)
class Entity:
    """An entity: what feature rows are about (here a traded symbol)."""

    name: str
    join_key: str
    value_type: ValueType = ValueType.STRING
    description: str = ""


@dataclass(frozen=True)
class Feature:
    """One feature (column) of a feature view."""

    name: str
    value_type: ValueType = ValueType.FLOAT64
    description: str = ""


@dataclass(frozen=True)
class SourceTable:
    """The PostgreSQL table a feature view reads from (the offline table contract)."""

    table: str
    """Table name, optionally schema-qualified (``schema.table``)."""
    timestamp_field: str = "event_timestamp"
    created_timestamp_column: str = "created_timestamp"
    partition_interval: str = "month"
    """Native range partitions per ``day`` or ``month`` of ``event_timestamp``."""

    @property
    def schema(self) -> str:
        """The schema part of :attr:`table` (``public`` when unqualified)."""
        return self.table.split(".", 1)[0] if "." in self.table else "public"

    @property
    def name(self) -> str:
        """The table part of :attr:`table`."""
        return self.table.split(".", 1)[-1]


@dataclass(frozen=True)
class FeatureRef:
    """A reference ``view:feature``."""

    view: str
    feature: str

    @classmethod
    def parse(cls, text: str) -> FeatureRef:
        """Parse ``view:feature``; raise :class:`ValidationError` on anything else."""
        view, sep, feature = text.strip().partition(":")
        if not sep or not view or not feature or ":" in feature:
            raise ValidationError(
                f"feature reference {text!r} is not of the form view:feature", field="features"
            )
        return cls(view, feature)

    def __str__(self) -> str:
        return f"{self.view}:{self.feature}"


@dataclass(frozen=True)
class FeatureView:
    """A feature view: features of one entity, valid for ``ttl`` after their event time."""

    name: str
    entities: tuple[str, ...]
    """Names of the entities (their join keys key the source table)."""
    features: tuple[Feature, ...]
    ttl: timedelta
    """How long a feature row stays valid after its ``event_timestamp`` (0: forever)."""
    source: SourceTable
    tags: Mapping[str, str] = field(default_factory=dict)
    """Metadata for processors: ``source_topic``, ``window`` and so on."""
    description: str = ""

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Names of the features, in definition order."""
        return tuple(f.name for f in self.features)

    def feature(self, name: str) -> Feature:
        """The feature called ``name``; :class:`NotFoundError` when there is none."""
        for feature in self.features:
            if feature.name == name:
                return feature
        raise NotFoundError(
            f"feature view {self.name!r} has no feature {name!r} "
            f"(it has: {', '.join(self.feature_names)})"
        )

    @property
    def source_topic(self) -> str | None:
        """The Kafka topic this view is computed from, when recorded."""
        return self.tags.get("source_topic")


@dataclass(frozen=True)
class FeatureService:
    """A named set of features that one model consumes."""

    name: str
    features: tuple[FeatureRef, ...]
    tags: Mapping[str, str] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True)
class Definitions:
    """Everything one Feast project defines, with lookups that raise :class:`NotFoundError`."""

    project: str
    entities: tuple[Entity, ...]
    views: tuple[FeatureView, ...]
    services: tuple[FeatureService, ...]

    def entity(self, name: str) -> Entity:
        """The entity called ``name``."""
        for entity in self.entities:
            if entity.name == name:
                return entity
        raise NotFoundError(f"unknown entity {name!r} in project {self.project!r}")

    def view(self, name: str) -> FeatureView:
        """The feature view called ``name``."""
        for view in self.views:
            if view.name == name:
                return view
        known = ", ".join(v.name for v in self.views) or "none"
        raise NotFoundError(
            f"unknown feature view {name!r} in project {self.project!r} (known: {known})"
        )

    def service(self, name: str) -> FeatureService:
        """The feature service called ``name``."""
        for service in self.services:
            if service.name == name:
                return service
        known = ", ".join(s.name for s in self.services) or "none"
        raise NotFoundError(
            f"unknown feature service {name!r} in project {self.project!r} (known: {known})"
        )

    def resolve(
        self,
        features: Sequence[str | FeatureRef] | None = None,
        service: str | None = None,
    ) -> tuple[FeatureRef, ...]:
        """Check a list of references or a service name and return the references.

        Exactly one of ``features`` and ``service`` must be given. Every view and feature must
        exist; duplicates are dropped, the first occurrence keeps its place.
        """
        if (features is None) == (service is None):
            raise ValidationError(
                "give either feature references or a feature service, not both or neither",
                field="features",
            )
        if service is not None:
            refs: Iterable[FeatureRef] = self.service(service).features
        else:
            assert features is not None
            refs = [f if isinstance(f, FeatureRef) else FeatureRef.parse(f) for f in features]
        resolved = tuple(dict.fromkeys(refs))
        if not resolved:
            raise ValidationError("no features requested", field="features")
        for ref in resolved:
            self.view(ref.view).feature(ref.feature)
        return resolved

    def group_by_view(self, refs: Iterable[FeatureRef]) -> list[tuple[FeatureView, list[Feature]]]:
        """Group references by view, views in order of first reference."""
        grouped: dict[str, list[Feature]] = {}
        for ref in refs:
            grouped.setdefault(ref.view, []).append(self.view(ref.view).feature(ref.feature))
        return [(self.view(name), feats) for name, feats in grouped.items()]

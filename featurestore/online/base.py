"""The online store's interface and its domain types.

The online store keeps the latest row of every (entity, feature view) and serves it with a status
that says whether it is present, missing, null or older than the view's TTL. What a view holds
(its features, their types, its TTL) comes from a :class:`FeatureCatalog`, so that the store never
hard-codes a definition: the Feast registry provides one in production, tests build their own.
:class:`FeatureRef` and :class:`ValueType` are the store's one reference and type
(:mod:`featurestore.definitions.model`), re-exported here.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta
from typing import Protocol
from typing import runtime_checkable

from featurestore.definitions.model import FeatureRef
from featurestore.definitions.model import ValueType
from featurestore.errors import ConfigurationError
from featurestore.errors import NotFoundError
from featurestore.errors import ValidationError

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
    "ValueType",
    "WriteResult",
]

EntityValue = str | int
"""The type of one join key's value."""
FeatureScalar = float | int | str | bool | bytes | None
"""The type of one feature value; ``None`` is null."""


class FeatureStatus(enum.Enum):
    """Whether a served value was found and is fresh."""

    PRESENT = "present"
    NULL_VALUE = "null_value"
    """The entity has a row, but this feature is null (or absent) in it."""
    NOT_FOUND = "not_found"
    """The entity has no row for the feature's view."""
    OUTSIDE_MAX_AGE = "outside_max_age"
    """The row is older than the view's TTL; its value is still returned."""


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """One feature of a view."""

    name: str
    dtype: ValueType


@dataclass(frozen=True, slots=True)
class FeatureViewSpec:
    """What the online store needs to know about a feature view."""

    name: str
    join_keys: tuple[str, ...]
    features: tuple[FeatureSpec, ...]
    ttl: timedelta | None
    """Rows older than this are served as OUTSIDE_MAX_AGE, until they expire from the store
    (``RedisSettings.kept_past_ttl_s`` later); None: never."""
    join_key_types: tuple[ValueType, ...] = ()
    """The declared type of each join key, in the order of :attr:`join_keys` (String or Int64;
    the catalogs fill it). A request value of another kind is refused rather than looked up
    under a key no row has (:func:`featurestore.service.convert.entities_from_proto`). Empty:
    undeclared (a catalog built by hand), and a request value is keyed by its own type."""

    def __post_init__(self) -> None:
        """Refuse join key types that are not one per join key."""
        if self.join_key_types and len(self.join_key_types) != len(self.join_keys):
            raise ConfigurationError(
                f"feature view {self.name}: {len(self.join_key_types)} join key types for"
                f" {len(self.join_keys)} join keys"
            )

    def feature(self, name: str) -> FeatureSpec:
        """The feature called ``name``; raises :class:`NotFoundError` naming it."""
        for spec in self.features:
            if spec.name == name:
                return spec
        raise NotFoundError(f"feature {self.name}:{name} does not exist")

    def key_of(self, entity: EntityKey) -> EntityKey:
        """The part of ``entity`` this view is keyed by; ValidationError if a join key lacks."""
        if entity.join_keys == self.join_keys:
            return entity
        values = dict(zip(entity.join_keys, entity.values, strict=True))
        missing = [k for k in self.join_keys if k not in values]
        if missing:
            raise ValidationError(
                f"entities: view {self.name} needs join key(s) {', '.join(missing)}",
                field="entities",
            )
        return EntityKey(self.join_keys, tuple(values[k] for k in self.join_keys))


@runtime_checkable
class FeatureCatalog(Protocol):
    """Where feature views and feature services are defined (the Feast registry)."""

    @property
    def project(self) -> str:
        """The Feast project, part of every online store key."""
        ...

    def view(self, name: str) -> FeatureViewSpec:
        """The view called ``name``; raises :class:`NotFoundError` naming it."""
        ...

    def feature_service(self, name: str) -> tuple[FeatureRef, ...]:
        """The features of a feature service; raises :class:`NotFoundError` naming it."""
        ...


@dataclass(frozen=True, slots=True)
class EntityKey:
    """The join key values of one entity, for example ``symbol=AAPL``."""

    join_keys: tuple[str, ...]
    values: tuple[EntityValue, ...]

    @classmethod
    def of(cls, **keys: EntityValue) -> EntityKey:
        """``EntityKey.of(symbol="AAPL")``."""
        return cls(tuple(keys), tuple(keys.values()))

    def __post_init__(self) -> None:
        """Refuse a key without one value per join key."""
        if len(self.join_keys) != len(self.values) or not self.join_keys:
            raise ValidationError("an entity key needs one value per join key", field="entities")


@dataclass(frozen=True, slots=True)
class FeatureRow:
    """The values of one view for one entity at one event time."""

    view: str
    entity: EntityKey
    event_time: datetime
    """Timezone-aware event time of the row."""
    values: Mapping[str, FeatureScalar]


@dataclass(frozen=True, slots=True)
class FeatureValue:
    """A served value with its status and the event time of its row."""

    value: FeatureScalar
    status: FeatureStatus
    event_time: datetime | None


@dataclass(frozen=True, slots=True)
class WriteResult:
    """How many rows a write stored, and how many it skipped as older than what was stored."""

    written: int = 0
    stale: int = 0


@dataclass(frozen=True)
class OnlineFeatures:
    """Features in columns: ``columns[i][j]`` is feature ``refs[i]`` of entity ``entities[j]``."""

    entities: tuple[EntityKey, ...]
    refs: tuple[FeatureRef, ...]
    columns: tuple[tuple[FeatureValue, ...], ...] = field(repr=False)

    def column(self, ref: FeatureRef | str) -> tuple[FeatureValue, ...]:
        """The values of one feature for every entity."""
        wanted = FeatureRef.parse(ref) if isinstance(ref, str) else ref
        return self.columns[self.refs.index(wanted)]

    def to_dicts(self) -> list[dict[str, FeatureScalar]]:
        """One ``{"view:feature": value}`` dict per entity (values only)."""
        names = [str(ref) for ref in self.refs]
        return [
            {name: col[row].value for name, col in zip(names, self.columns, strict=True)}
            for row in range(len(self.entities))
        ]


class OnlineStore(Protocol):
    """Reads and writes the latest feature rows of entities."""

    async def write(self, rows: Iterable[FeatureRow]) -> WriteResult:
        """Store rows that are at least as new as what is stored for their (entity, view)."""
        ...

    async def read(
        self,
        entities: Sequence[EntityKey],
        refs: Sequence[FeatureRef],
        *,
        now: datetime | None = None,
    ) -> OnlineFeatures:
        """Read features of many entities in one round trip; ``now`` decides freshness."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...

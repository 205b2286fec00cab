"""Plan a multi-entity read into one HMGET per entity key, and decode the replies.

Independent of the client library, so that the asyncio store and any other reader share it.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from featurestore.online.base import EntityKey
from featurestore.online.base import FeatureCatalog
from featurestore.online.base import FeatureRef
from featurestore.online.base import FeatureStatus
from featurestore.online.base import FeatureValue
from featurestore.online.base import FeatureViewSpec
from featurestore.online.base import OnlineFeatures
from featurestore.online.layout import decode_timestamp
from featurestore.online.layout import decode_value
from featurestore.online.layout import feature_field
from featurestore.online.layout import timestamp_field

__all__ = ["ReadPlan"]

KeyFunction = Callable[[FeatureViewSpec, EntityKey, str], bytes]
_NOT_FOUND = FeatureValue(None, FeatureStatus.NOT_FOUND, None)


@dataclass(frozen=True, slots=True)
class _Slot:
    """Where one view's fields of one entity sit in the replies."""

    command: int
    ts_index: int
    first_feature: int


@dataclass(frozen=True)
class ReadPlan:
    """The HMGET commands of a read and how to turn their replies into columns."""

    entities: tuple[EntityKey, ...]
    refs: tuple[FeatureRef, ...]
    views: tuple[FeatureViewSpec, ...]
    view_of_ref: tuple[tuple[int, int], ...]
    """For each ref: (index in ``views``, index of the feature among the view's requested ones)."""
    widths: tuple[int, ...]
    """How many features of each view are read."""
    commands: tuple[tuple[bytes, list[bytes]], ...]
    slots: tuple[tuple[_Slot, ...], ...]
    """``slots[v][e]``: where view ``v`` of entity ``e`` sits."""

    @classmethod
    def build(
        cls,
        catalog: FeatureCatalog,
        entities: Sequence[EntityKey],
        refs: Sequence[FeatureRef],
        key_of: KeyFunction,
    ) -> ReadPlan:
        """Resolve refs against the catalog (NotFoundError naming the first unknown one)."""
        view_index: dict[str, int] = {}
        views: list[FeatureViewSpec] = []
        wanted: list[list[str]] = []
        view_of_ref: list[tuple[int, int]] = []
        for ref in refs:
            if ref.view not in view_index:
                view_index[ref.view] = len(views)
                views.append(catalog.view(ref.view))
                wanted.append([])
            v = view_index[ref.view]
            views[v].feature(ref.feature)
            names = wanted[v]
            if ref.feature not in names:
                names.append(ref.feature)
            view_of_ref.append((v, names.index(ref.feature)))

        command_of_key: dict[bytes, int] = {}
        slot_of: dict[tuple[int, int], _Slot] = {}
        commands: list[tuple[bytes, list[bytes]]] = []
        slots: list[list[_Slot]] = [[] for _ in views]
        for entity in entities:
            for v, view in enumerate(views):
                key = key_of(view, entity, catalog.project)
                c = command_of_key.get(key)
                if c is None:
                    c = command_of_key[key] = len(commands)
                    commands.append((key, []))
                slot = slot_of.get((c, v))
                if slot is None:
                    fields = commands[c][1]
                    slot = slot_of[(c, v)] = _Slot(c, len(fields), len(fields) + 1)
                    fields.append(timestamp_field(view.name))
                    fields += [feature_field(view.name, name) for name in wanted[v]]
                slots[v].append(slot)
        return cls(
            entities=tuple(entities),
            refs=tuple(refs),
            views=tuple(views),
            view_of_ref=tuple(view_of_ref),
            widths=tuple(len(names) for names in wanted),
            commands=tuple(commands),
            slots=tuple(tuple(s) for s in slots),
        )

    def decode(self, replies: Sequence[Sequence[bytes | None]], now: datetime) -> OnlineFeatures:
        """Turn the HMGET replies into columns with a status per value, freshness as of ``now``."""
        # per_view[v][e] = the values of view v's requested features for entity e
        per_view: list[list[tuple[FeatureValue, ...] | None]] = []
        for v, view in enumerate(self.views):
            decoded: list[tuple[FeatureValue, ...] | None] = []
            for slot in self.slots[v]:
                reply = replies[slot.command]
                raw_ts = reply[slot.ts_index]
                if raw_ts is None:
                    decoded.append(None)
                    continue
                event_time = decode_timestamp(raw_ts)
                stale = view.ttl is not None and now - event_time > view.ttl
                fresh = FeatureStatus.OUTSIDE_MAX_AGE if stale else FeatureStatus.PRESENT
                end = slot.first_feature + self.widths[v]
                decoded.append(
                    tuple(_value(raw, fresh, event_time) for raw in reply[slot.first_feature : end])
                )
            per_view.append(decoded)
        columns = tuple(
            tuple(
                _NOT_FOUND if (row := per_view[v][e]) is None else row[f]
                for e in range(len(self.entities))
            )
            for v, f in self.view_of_ref
        )
        return OnlineFeatures(entities=self.entities, refs=self.refs, columns=columns)


def _value(raw: bytes | None, fresh: FeatureStatus, event_time: datetime) -> FeatureValue:
    value = None if raw is None else decode_value(raw)
    if value is None:
        return FeatureValue(None, FeatureStatus.NULL_VALUE, event_time)
    return FeatureValue(value, fresh, event_time)

"""What applying definitions changes: the differences between two :class:`Definitions`.

``featurestore registry plan`` prints them without applying anything, and ``registry apply``
prints the same after applying; both compute them here, from what is registered now and what
the repo defines, with no server involved. A change that ``apply`` refuses
(:func:`~featurestore.definitions.validate.check_changes`: a stream view whose computation or
feature types change under the same name; :func:`~featurestore.definitions.validate.check_tables`:
a view, batch or stream, whose offline table exists with other columns, as after a feature added,
removed or retyped, a join key changed, or a removed view added again over its old table) is
marked refused with ``apply``'s own message, found by calling those checks on the view alone.

Objects are compared field by field; each field is rendered as text (``ttl 1:00:00 ->
2:00:00``), ``None`` where an object has no such field. Changes come ordered by kind
(entities, feature views, feature services, offline tables), then by name.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Collection
from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import replace
from typing import Any

from featurestore.definitions.model import Definitions
from featurestore.definitions.model import Entity
from featurestore.definitions.model import FeatureService
from featurestore.definitions.model import FeatureView
from featurestore.definitions.model import StreamComputation
from featurestore.definitions.validate import check_changes
from featurestore.definitions.validate import check_tables
from featurestore.errors import ConfigurationError

__all__ = [
    "Action",
    "Change",
    "DefinitionChanges",
    "FieldChange",
    "changed_topics",
    "diff_definitions",
]

_HEADINGS = {
    "entity": "entities",
    "feature view": "feature views",
    "feature service": "feature services",
    "offline table": "offline tables",
    "event schema": "event schemas",
}
"""Kinds of object, in the order changes are listed, and the heading of each."""
_NOT_READ = "(not read by this view)"
"""Marks a column of a view's source that the view's aggregations do not read."""


class Action(enum.Enum):
    """What happens to an object."""

    ADD = "add"
    CHANGE = "change"
    REMOVE = "remove"

    @property
    def sign(self) -> str:
        """``+``, ``~`` or ``-``, as a plan line starts."""
        return {"add": "+", "change": "~", "remove": "-"}[self.value]


@dataclass(frozen=True)
class FieldChange:
    """One field of a changed object: its text before and after (None: absent)."""

    field: str
    old: str | None
    new: str | None

    def describe(self) -> str:
        """``ttl 1:00:00 -> 2:00:00``; an absent side reads ``(none)``."""
        return f"{self.field} {_shown(self.old)} -> {_shown(self.new)}"


@dataclass(frozen=True)
class Change:
    """An object that is added, removed or changed."""

    kind: str
    """``entity``, ``feature view``, ``feature service`` or ``offline table``."""
    name: str
    action: Action
    fields: tuple[FieldChange, ...] = ()
    """For a changed object, each field that changes, in a fixed order."""
    note: str = ""
    """What else happens (an offline table created, rows kept)."""
    refused: str | None = None
    """``apply``'s message when it refuses this change."""

    def lines(self, shown: Collection[str] = ()) -> list[str]:
        """The plan's lines for this change, unindented.

        ``shown``: field changes (:meth:`FieldChange.describe`) listed once for several objects
        (:meth:`DefinitionChanges.lines`), left out here.
        """
        head = f"{self.action.sign} {self.kind} {self.name}"
        if self.action is Action.CHANGE:
            found = [f"{head}: {f.describe()}" for f in self.fields if f.describe() not in shown]
            if self.note:
                found.append(f"{head}: {self.note}")
        else:
            found = [f"{head} ({self.note})" if self.note else head]
        if self.refused is not None:
            found.append(f"! {self.kind} {self.name}: refused: {self.refused}")
        return found

    def to_json(self) -> dict[str, Any]:
        """The change as JSON-able data (the ``--json`` shape of one change)."""
        return {
            "kind": self.kind,
            "name": self.name,
            "action": self.action.value,
            "fields": [{"field": f.field, "old": f.old, "new": f.new} for f in self.fields],
            "note": self.note,
            "refused": self.refused,
        }


@dataclass(frozen=True)
class DefinitionChanges:
    """Everything applying ``after`` over ``before`` changes, in list order."""

    project: str
    changes: tuple[Change, ...]

    @property
    def refused(self) -> tuple[Change, ...]:
        """The changes ``apply`` refuses (with them, it applies nothing)."""
        return tuple(c for c in self.changes if c.refused is not None)

    def count(self, action: Action) -> int:
        """How many objects the changes ``action``."""
        return sum(c.action is action for c in self.changes)

    def summary(self, *, applied: bool = False) -> str:
        """``Feast project 'p': 2 to add, 1 to change, 0 to remove`` (or ``no changes ...``).

        ``applied``: as done (``2 added, 1 changed, 0 removed``).
        """
        if not self.changes:
            return f"no changes to Feast project {self.project!r}"
        done = {Action.ADD: "added", Action.CHANGE: "changed", Action.REMOVE: "removed"}
        counts = ", ".join(
            f"{self.count(a)} {done[a]}" if applied else f"{self.count(a)} to {a.value}"
            for a in Action
        )
        refused = f"; {len(self.refused)} refused" if self.refused else ""
        return f"Feast project {self.project!r}: {counts}{refused}"

    def lines(self, *, applied: bool = False) -> list[str]:
        """The summary, then each kind that changes with its changes indented.

        A field change several objects of a kind share (a field added to the Avro schema of a
        topic's source changes every view of the topic) is one line naming them all, where
        the first of them is listed.
        """
        found = [self.summary(applied=applied)]
        for kind, heading in _HEADINGS.items():
            mine = [c for c in self.changes if c.kind == kind]
            if not mine:
                continue
            found.append(f"{heading}:")
            sharing: dict[str, list[str]] = {}
            for change in mine:
                if change.action is Action.CHANGE:
                    for field in change.fields:
                        sharing.setdefault(field.describe(), []).append(change.name)
            shared = {text: names for text, names in sharing.items() if len(names) > 1}
            listed: set[str] = set()
            for change in mine:
                for text, names in shared.items():
                    if change.name in names and text not in listed:
                        listed.add(text)
                        together = text.replace(_NOT_READ, "(not read by these views)")
                        found.append(f"  ~ {heading} {', '.join(names)}: {together}")
                found += [f"  {line}" for line in change.lines(shown=shared)]
        return found

    def to_json(self) -> dict[str, Any]:
        """One JSON-able object: project, counts, refused messages and every change."""
        return {
            "project": self.project,
            "changed": bool(self.changes),
            "counts": {a.value: self.count(a) for a in Action},
            "refused": [c.refused for c in self.refused],
            "changes": [c.to_json() for c in self.changes],
        }

    def to_json_text(self) -> str:
        """:meth:`to_json` as one line of JSON."""
        return json.dumps(self.to_json(), sort_keys=False)


def _shown(text: str | None) -> str:
    return "(none)" if text is None else text


def _quoted(text: str) -> str:
    return repr(text)


def _entity_fields(entity: Entity) -> dict[str, str]:
    return {
        "join key": entity.join_key,
        "type": entity.value_type.value,
        "description": _quoted(entity.description),
    }


def _tags(tags: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(tags.items())) or "none"


def _stream_fields(stream: StreamComputation) -> Iterator[tuple[str, str | None]]:
    source = stream.source
    yield "source", source.name
    yield "source topic", source.topic
    yield "entity field", source.entity_field
    yield "timestamp field", source.timestamp_field
    yield "id field", source.id_field
    yield "lateness", str(source.watermark_delay)
    kinds = source.field_types
    yield "avro fields", ", ".join(f"{n}:{'/'.join(sorted(kinds[n]))}" for n in kinds)
    yield "avro schema", source.avro_schema
    yield "tile", str(stream.tile)
    yield "rows", "running" if stream.running else "window_end"
    yield "upstream view", stream.upstream
    read = stream.read_columns()
    for name, text in source.columns.items():
        # A column only other views of the topic read: shown, but this view's rows keep their
        # meaning (check_changes does not refuse it).
        unread = "" if name in read else f" {_NOT_READ}"
        yield f"column {name}{unread}", _quoted(text)
    for agg in stream.aggregations:
        yield f"aggregation {agg.name}", agg.describe()
    for name, text in stream.derived.items():
        yield f"derived feature {name}", _quoted(text)


def _view_fields(view: FeatureView) -> dict[str, str | None]:
    src = view.source
    fields: dict[str, str | None] = {
        "kind": "stream" if view.stream is not None else "batch",
        "entities": ", ".join(view.entities),
        "ttl": str(view.ttl),
        "online": "yes" if view.online else "no (offline only)",
        "description": _quoted(view.description),
        "tags": _tags(view.tags),
        "offline table": src.table,
        "offline timestamp column": src.timestamp_field,
        "offline created column": src.created_timestamp_column,
        "partition interval": src.partition_interval,
        "retention": str(src.retention) if src.retention is not None else "forever",
        "feature order": ", ".join(view.feature_names),
    }
    for feature in view.features:
        described = f" {_quoted(feature.description)}" if feature.description else ""
        fields[f"feature {feature.name}"] = feature.value_type.value + described
    if view.stream is not None:
        fields.update(_stream_fields(view.stream))
    return fields


def _service_fields(service: FeatureService) -> dict[str, str | None]:
    return {
        "features": ", ".join(map(str, service.features)),
        "tags": _tags(service.tags),
        "description": _quoted(service.description),
    }


def _field_changes(
    old: Mapping[str, str | None], new: Mapping[str, str | None]
) -> tuple[FieldChange, ...]:
    """Each field whose text differs: those of ``old`` in its order, then those only in ``new``.

    The avro schema's text is shown only when the fields it declares are the same (otherwise
    ``avro fields`` says what changed), and ``feature order`` only when the same features are
    reordered (adding or removing one shows as that feature).
    """
    changed = []
    for name in [*old, *(n for n in new if n not in old)]:
        before, after = old.get(name), new.get(name)
        if before == after:
            continue
        if name == "avro schema" and old.get("avro fields") != new.get("avro fields"):
            continue
        if name == "feature order" and sorted((before or "").split(", ")) != sorted(
            (after or "").split(", ")
        ):
            continue
        changed.append(FieldChange(name, before, after))
    return tuple(changed)


def _refusal(
    before: Definitions,
    after: Definitions,
    old: FeatureView | None,
    new: FeatureView,
    existing: Collection[str] | None,
) -> str:
    """``apply``'s refusal of changing ``old`` (None: added) into ``new`` ("" when it applies it).

    The table check is made only where ``existing`` holds the columns of the tables.
    """
    alone = replace(after, views=(new,))
    try:
        if old is not None:
            check_changes(replace(before, views=(old,)), alone)
        if isinstance(existing, Mapping):
            check_tables(alone, existing)
    except ConfigurationError as exc:
        return str(exc)
    return ""


def _table_note(view: FeatureView, existing: Collection[str] | None) -> str:
    table = view.source.table
    kept = existing is not None and table in existing
    how = "exists, kept as it is" if kept else "to be created"
    if view.stream is not None:
        return f"offline table {table}: {how}, backfilled from the log by the processors"
    return f"offline table {table}: {how}, written by something else (not a stream view)"


def _view_changes(
    before: Definitions, after: Definitions, existing: Collection[str] | None
) -> Iterator[Change]:
    old = {v.name: v for v in before.views}
    new = {v.name: v for v in after.views}
    for name in sorted(old.keys() | new.keys()):
        was, now = old.get(name), new.get(name)
        if now is None:
            assert was is not None
            written = "no longer written; " if was.stream is not None else ""
            yield Change(
                "feature view",
                name,
                Action.REMOVE,
                note=f"{written}its table and online rows are kept",
            )
        elif was is None:
            refused = _refusal(before, after, None, now, existing) or None
            yield Change(
                "feature view", name, Action.ADD, note=_table_note(now, existing), refused=refused
            )
        else:
            fields = _field_changes(_view_fields(was), _view_fields(now))
            refused = _refusal(before, after, was, now, existing) or None
            if not fields and refused is None:
                continue
            moved = was.source.table != now.source.table
            note = _table_note(now, existing) if moved else ""
            if not fields:
                # Unchanged itself, but its table no longer fits it: an entity's join key
                # changed (listed with the entities), or the table was altered by hand.
                note = f"offline table {now.source.table}: its columns differ from the view's"
            yield Change("feature view", name, Action.CHANGE, fields, note, refused)


def _named_changes(
    kind: str,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    fields_of: Any,
    describe: Any,
) -> Iterator[Change]:
    for name in sorted(old.keys() | new.keys()):
        if name not in new:
            yield Change(kind, name, Action.REMOVE)
        elif name not in old:
            yield Change(kind, name, Action.ADD, note=describe(new[name]))
        else:
            fields = _field_changes(fields_of(old[name]), fields_of(new[name]))
            if fields:
                yield Change(kind, name, Action.CHANGE, fields)


def diff_definitions(
    before: Definitions | None,
    after: Definitions,
    existing_tables: Collection[str] | Mapping[str, Mapping[str, str]] | None = None,
) -> DefinitionChanges:
    """What applying ``after`` changes where ``before`` is registered (None: nothing is).

    Args:
        before: What is registered now.
        after: What would be applied.
        existing_tables: The offline tables that exist now, as a view's ``source.table`` names
            them; when given, a view kept whose table is missing is listed (``apply`` creates
            it) and an added view's table that exists is said to be kept. None: not known,
            every added view's table is to be created. A mapping gives each table's columns
            (name -> type, as :func:`~featurestore.offline.tables.table_columns` reads them):
            a view whose table differs is then marked refused, as ``apply`` refuses it.

    Returns:
        The changes, ordered by kind then name; each refused one carries ``apply``'s message.
    """
    empty = Definitions(after.project, (), (), ())
    was = before if before is not None else empty
    changes = [
        *_named_changes(
            "entity",
            {e.name: e for e in was.entities},
            {e.name: e for e in after.entities},
            _entity_fields,
            lambda e: f"join key {e.join_key}, {e.value_type.value}",
        ),
        *_view_changes(was, after, existing_tables),
        *_named_changes(
            "feature service",
            {s.name: s for s in was.services},
            {s.name: s for s in after.services},
            _service_fields,
            lambda s: ", ".join(map(str, s.features)),
        ),
    ]
    if existing_tables is not None:
        listed = {c.name for c in changes if c.kind == "feature view" and c.note}
        for view in sorted(after.views, key=lambda v: v.name):
            if view.name not in listed and view.source.table not in existing_tables:
                changes.append(
                    Change(
                        "offline table",
                        view.source.table,
                        Action.ADD,
                        note=f"missing; created for feature view {view.name}",
                    )
                )
    return DefinitionChanges(after.project, tuple(changes))


def changed_topics(
    before: Definitions | None, after: Definitions, changes: DefinitionChanges
) -> frozenset[str] | None:
    """The topics of the stream views ``changes`` adds, changes or removes.

    Their processors compute something else after the apply; the other topics' do not. None:
    every topic's (an entity changed or removed, which the views of any topic may key by; an
    added one comes with the views that use it).
    """
    if any(c.kind == "entity" and c.action is not Action.ADD for c in changes.changes):
        return None
    views = {view.name: view for view in (before.views if before is not None else ())}
    views.update((view.name, view) for view in after.views)
    return frozenset(
        stream.source.topic
        for change in changes.changes
        if change.kind == "feature view" and (stream := views[change.name].stream) is not None
    )

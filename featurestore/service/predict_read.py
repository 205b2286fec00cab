"""Predict's feature read: the online store's row path, decoded straight into a NumPy matrix.

GetOnlineFeatures' fast path (:mod:`.raw_features`) and this one share the store's
:class:`~featurestore.online.rows.RowReader` (prebuilt HMGET batches, one pipelined round trip,
the client-side row cache in front). What differs is the output: a model needs a float64 matrix
(entities x its features, NaN where a value is not PRESENT), a status per value, and for the
response the stored ``Value`` bytes of the present values and each entity's newest row time,
which are copied into the response unparsed (:mod:`.predict_response`).

Per model version a :class:`ModelPlan` (the hash fields to read, where each feature sits) is
built once; per distinct entity list a prepared :class:`~featurestore.online.rows.RowBatch` is
kept (bounded). Numbers are decoded column-wise: a column of stored doubles (the common case:
``feast.types.Value.double_val``, 9 bytes each) becomes an array in one ``frombuffer``; anything
else goes value by value. Freshness is judged per view and distinct event time as in the fast
path of GetOnlineFeatures, and a cached row found past its TTL is read again from Redis.

Unchanged rows are not decoded again: the row cache hands out the same reply objects until Redis
invalidates a key (``CLIENT TRACKING``), so a read given the call's previous :class:`ModelRows`
returns that same object when every reply is the one it was decoded from and no PRESENT value
has outlived its view's TTL since (:attr:`ModelRows.fresh_until`). Predict keeps what it derives
from the rows (the scores, the response's bytes) on that object's identity
(:mod:`.scored_rows`). Features of market data change once per bar, and a model is called on
every tick in between.

The plan serves models whose features' views are all keyed by the request's join keys (one hash
per entity in Feast's layout); :meth:`ModelPlan.build` returns None otherwise and Predict takes
the general path through :meth:`OnlineStore.read`, with the same results (tested side by side).
"""

from __future__ import annotations

import math
import operator
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from featurestore._proto.v1 import types_pb2
from featurestore.online import EntityKey
from featurestore.online import FeatureCatalog
from featurestore.online import FeatureRef
from featurestore.online.layout import decode_value
from featurestore.online.layout import feature_field
from featurestore.online.layout import redis_key
from featurestore.online.layout import timestamp_field
from featurestore.online.rows import RowBatch
from featurestore.online.rows import RowReader
from featurestore.service.raw_features import _columns
from featurestore.service.raw_features import _seconds

__all__ = ["ModelPlan", "ModelRows", "PredictReader"]

PRESENT: int = types_pb2.FEATURE_STATUS_PRESENT
NULL: int = types_pb2.FEATURE_STATUS_NULL_VALUE
NOT_FOUND: int = types_pb2.FEATURE_STATUS_NOT_FOUND
STALE: int = types_pb2.FEATURE_STATUS_OUTSIDE_MAX_AGE
_DOUBLE_TAG = 0x29
"""``feast.types.Value.double_val`` (field 5, 64-bit): a stored double is this byte + 8 bytes."""
_MAX_BATCHES = 4096


@dataclass(frozen=True)
class ModelPlan:
    """What a model's features read: the fields of one hash, where each feature sits."""

    join_keys: tuple[str, ...]
    fields: tuple[bytes, ...]
    value_field: tuple[int, ...]
    """Per feature, the index of its value field."""
    view_of: tuple[int, ...]
    """Per feature, the index of its view."""
    ts_field: tuple[int, ...]
    """Per view, the index of its timestamp field."""
    ttl_s: tuple[float | None, ...]
    """Per view, its TTL in seconds."""
    view_names: tuple[str, ...]

    @classmethod
    def build(cls, catalog: FeatureCatalog, refs: Sequence[FeatureRef]) -> ModelPlan | None:
        """The plan of ``refs`` (NotFoundError names an unknown one); None: views keyed apart."""
        views = [catalog.view(ref.view) for ref in refs]
        if not views:
            return None
        join_keys = views[0].join_keys
        if any(view.join_keys != join_keys for view in views):
            return None
        fields: dict[bytes, int] = {}
        view_index: dict[str, int] = {}
        ts_field: list[int] = []
        ttl_s: list[float | None] = []
        value_field: list[int] = []
        view_of: list[int] = []
        for ref, view in zip(refs, views, strict=True):
            view.feature(ref.feature)
            if view.name not in view_index:
                view_index[view.name] = len(ts_field)
                ts_field.append(fields.setdefault(timestamp_field(view.name), len(fields)))
                ttl_s.append(view.ttl.total_seconds() if view.ttl is not None else None)
            value_field.append(
                fields.setdefault(feature_field(view.name, ref.feature), len(fields))
            )
            view_of.append(view_index[view.name])
        return cls(
            join_keys,
            tuple(fields),
            tuple(value_field),
            tuple(view_of),
            tuple(ts_field),
            tuple(ttl_s),
            tuple(view_index),
        )

    def view(self, name: str) -> int | None:
        """The index of view ``name`` among the plan's, if it reads it."""
        return self.view_names.index(name) if name in self.view_names else None


@dataclass(frozen=True)
class ModelRows:
    """A model's features of some entities, as read."""

    matrix: np.ndarray
    """Entities x features, float64; NaN where a value is not PRESENT (or not a number)."""
    statuses: np.ndarray
    """Entities x features, the ``FeatureStatus`` numbers of the wire (uint8)."""
    values: list[tuple[bytes | None, ...]]
    """Per feature, per entity, the stored ``Value`` bytes (None: no value stored)."""
    stamps: list[tuple[bytes | None, ...]]
    """Per view, per entity, the stored ``Timestamp`` bytes of its row (None: no row)."""
    seconds: np.ndarray
    """Views x entities: each row's event time in epoch seconds (NaN: no row)."""
    replies: Sequence[Any] = ()
    """The HMGET replies these rows were decoded from (the row cache's objects)."""
    fresh_until: float = -math.inf
    """Epoch seconds until which every status holds: when the first PRESENT value outlives its
    view's TTL (inf: none can; -inf: some value is already OUTSIDE_MAX_AGE, read it again)."""

    def newest(self) -> list[bytes | None]:
        """Per entity, the stored time of its newest row among the views (None: no row)."""
        if len(self.stamps) == 1:
            return list(self.stamps[0])
        with np.errstate(invalid="ignore"):
            where = np.nanargmax(np.where(np.isnan(self.seconds), -np.inf, self.seconds), axis=0)
        return [self.stamps[v][e] for e, v in enumerate(where.tolist())]


class PredictReader:
    """Reads models' features through the online store's row path (see the module docstring)."""

    def __init__(self, rows: RowReader, catalog: FeatureCatalog) -> None:
        """Read through ``rows`` (:attr:`RedisOnlineStore.rows`) the views of ``catalog``."""
        self._rows = rows
        self._catalog = catalog
        self._plans: dict[tuple[FeatureRef, ...], ModelPlan | None] = {}
        self._batches: dict[tuple[ModelPlan, tuple[EntityKey, ...]], RowBatch] = {}

    def forget_plans(self) -> None:
        """Drop the plans and batches built from the catalog's views: it changed."""
        self._plans.clear()
        self._batches.clear()

    def plan(self, refs: tuple[FeatureRef, ...]) -> ModelPlan | None:
        """The plan of a model's features (built once per feature list)."""
        if refs not in self._plans:
            self._plans[refs] = ModelPlan.build(self._catalog, refs)
        return self._plans[refs]

    def batch(self, plan: ModelPlan, entities: tuple[EntityKey, ...]) -> RowBatch:
        """The prepared HMGETs of ``plan``'s fields for ``entities`` (kept, bounded)."""
        key = (plan, entities)
        batch = self._batches.get(key)
        if batch is None:
            project = self._catalog.project
            keys = [redis_key(entity, project) for entity in entities]
            batch = RowBatch.of(plan.fields, keys)
            if len(self._batches) >= _MAX_BATCHES:
                del self._batches[next(iter(self._batches))]
            self._batches[key] = batch
        return batch

    async def read(
        self, plan: ModelPlan, batch: RowBatch, last: ModelRows | None = None
    ) -> ModelRows:
        """The features of the entities of ``batch`` (:meth:`batch`).

        ``last``: what this read gave before; returned itself while nothing in it changed.
        """
        rows = self._rows
        replies = rows.cached(batch)
        hits: Sequence[int]
        now = time.time()
        if replies is None:
            replies, hits = await rows.read(batch)
        elif (
            last is not None
            and now < last.fresh_until
            and all(map(operator.is_, replies, last.replies))
        ):
            return last
        else:
            hits = range(len(replies))
        read = decode(plan, _columns(replies), now, replies)
        if hits and (read.statuses == STALE).any():
            # A cached row past its TTL may be of a key that Redis has expired since.
            stale = np.flatnonzero((read.statuses == STALE).any(axis=1)).tolist()
            again = sorted(set(stale).intersection(hits))
            if again:
                await rows.reread(batch, replies, again)
                read = decode(plan, _columns(replies), time.time(), replies)
        return read


def _numbers(raw: Sequence[bytes | None]) -> tuple[np.ndarray, np.ndarray | None]:
    """The numbers of stored ``Value`` bytes (NaN for None, null, text), and which were null.

    Null: no bytes, or a ``Value`` without a value (``None`` when every one has one).
    """
    n = len(raw)
    if None not in raw:
        joined = b"".join(raw)  # type: ignore[arg-type]
        if len(joined) == 9 * n:
            table = np.frombuffer(joined, dtype=np.uint8).reshape(n, 9)
            if (table[:, 0] == _DOUBLE_TAG).all():
                return table[:, 1:].copy().view("<f8").reshape(n), None
    out = np.full(n, np.nan)
    nulls = np.zeros(n, dtype=bool)
    for i, value in enumerate(raw):
        number = None if value is None else decode_value(value)
        if number is None:
            nulls[i] = True
        elif isinstance(number, int | float):
            out[i] = number
    return out, nulls


def decode(
    plan: ModelPlan, columns: list[tuple[Any, ...]], now: float, replies: Sequence[Any] = ()
) -> ModelRows:
    """The replies' columns (one per field of ``plan``) as a :class:`ModelRows`."""
    n = len(columns[0]) if columns else 0
    views = len(plan.ts_field)
    seconds = np.full((views, n), np.nan)
    row_status = np.empty((views, n), dtype=np.uint8)
    stamps: list[tuple[bytes | None, ...]] = []
    fresh_until = math.inf
    for v in range(views):
        stamp_column = columns[plan.ts_field[v]]
        stamps.append(stamp_column)
        status = row_status[v]
        distinct = set(stamp_column)
        if distinct == {None}:
            status[:] = NOT_FOUND
            continue
        ttl = plan.ttl_s[v]
        judged: dict[bytes | None, tuple[float, int]] = {None: (np.nan, NOT_FOUND)}
        for raw in distinct:
            if raw is not None:
                at = _seconds(raw)
                stale = ttl is not None and now - at > ttl
                judged[raw] = (at, STALE if stale else PRESENT)
                if ttl is not None:
                    fresh_until = min(fresh_until, -math.inf if stale else at + ttl)
        pairs = [judged[raw] for raw in stamp_column]
        seconds[v] = [p[0] for p in pairs]
        status[:] = [p[1] for p in pairs]
    matrix = np.full((n, len(plan.value_field)), np.nan)
    statuses = np.empty((n, len(plan.value_field)), dtype=np.uint8)
    values = []
    for j, (field, v) in enumerate(zip(plan.value_field, plan.view_of, strict=True)):
        raw = columns[field]
        values.append(raw)
        status = row_status[v].copy()
        has_row = status != NOT_FOUND
        numbers, nulls = _numbers(raw)
        if nulls is not None:
            status[nulls & has_row] = NULL
        statuses[:, j] = status
        present = status == PRESENT
        matrix[:, j] = numbers if present.all() else np.where(present, numbers, np.nan)
    return ModelRows(matrix, statuses, values, stamps, seconds, replies, fresh_until)

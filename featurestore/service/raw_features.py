"""GetOnlineFeatures from request bytes to response bytes, without decoding the values.

The online store keeps each value as serialized ``feast.types.Value`` and each row's event time
as a serialized ``google.protobuf.Timestamp``. The scalar field numbers of ``featurestore.v1.Value``
are Feast's (see ``types.proto``), so the stored bytes ARE the response's ``Value`` messages and
``Timestamp`` messages: this encoder copies them into the response as they come from Redis and
writes the protobuf framing around them itself (a repeated field is a concatenation of
tag + length + bytes).

Everything about Redis (keys, RESP, connections, the cluster's slots, the client-side cache) is
the online store's: this module asks the store's :class:`~featurestore.online.rows.RowReader` for
the raw HMGET replies of a :class:`~featurestore.online.rows.RowBatch` and only frames them.

Per request: one lookup of the request's bytes in a cache of prepared requests (the plan and the
store's prepared batch), one read of the rows (from the row cache, or one pipelined round trip
per Redis node), one timestamp lookup per distinct (view, event time) for the TTL check (parsed
once per distinct bytes), and per column a few C-level passes (``map``/``join``) where every value
is present; the per-value loop runs only for columns with missing, null or stale values. A
request seen for the first time is parsed and validated (the cache keeps only valid, fast-path
requests, up to ``max_cached``).

A cached row past its view's TTL is read again (its key may have expired in Redis without an
invalidation yet), so the answers stay those of the general path. On top of the row cache a
:class:`~featurestore.service.response_memo.ResponseMemo` keeps each request's encoded response
while every row it was built from is the row cache's same object and none can have passed its
TTL: a repeated request over unchanged rows costs a dict lookup and an identity pass.

It serves the common shape: every requested view keyed by exactly the request's join keys (the
views of one entity share one hash in Feast's layout). Anything else returns ``None`` and the
servicer takes the general path through :class:`~featurestore.online.OnlineStore`; the results
are the same (tested side by side).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from operator import add
from operator import itemgetter
from typing import Any
from typing import NamedTuple
from typing import cast

import hiredis
from featurestore_client.wire import FieldPrefixes
from featurestore_client.wire import field
from google.protobuf.timestamp_pb2 import Timestamp

from featurestore._proto.v1 import feature_service_pb2
from featurestore._proto.v1 import types_pb2
from featurestore.online import EntityKey
from featurestore.online import FeatureCatalog
from featurestore.online import ValueType
from featurestore.online.layout import feature_field
from featurestore.online.layout import redis_key
from featurestore.online.layout import timestamp_field
from featurestore.online.rows import RowBatch
from featurestore.online.rows import RowReader
from featurestore.online.rows import read_failure
from featurestore.service.convert import entities_from_proto
from featurestore.service.convert import features_from_proto
from featurestore.service.convert import join_key_types
from featurestore.service.convert import parse_request
from featurestore.service.response_memo import ResponseMemo
from featurestore.service.telemetry import ServerCounters

__all__ = ["RawFeatureReader"]

_PRESENT: int = types_pb2.FEATURE_STATUS_PRESENT
_NULL: int = types_pb2.FEATURE_STATUS_NULL_VALUE
_NOT_FOUND: int = types_pb2.FEATURE_STATUS_NOT_FOUND
_STALE: int = types_pb2.FEATURE_STATUS_OUTSIDE_MAX_AGE
_MAX_KEYS = 100_000
_first = itemgetter(0)


_VALUE = FieldPrefixes(0x0A)  # FeatureColumn.values (1)
_FIELD_2 = FieldPrefixes(0x12)  # FeatureColumn.statuses (packed), GetOnlineFeaturesResponse.columns
_STAMP = FieldPrefixes(0x1A)  # FeatureColumn.event_timestamps (3)
_EMPTY_VALUE = b"\x0a\x00"
_EMPTY_STAMP = b"\x1a\x00"
_PRESENT_BYTE = bytes((_PRESENT,))
_FEW_STAMPS = 8
"""Up to this many distinct event times in a view's rows, they are judged one by one."""


@dataclass(frozen=True)
class _Plan:
    """What a feature list reads: the fields of one hash, and where each column finds its bytes."""

    join_keys: tuple[str, ...]
    fields: tuple[bytes, ...]
    names: bytes
    """The encoded ``feature_names`` fields of the response."""
    columns: tuple[tuple[int, int, int], ...]
    """Per column: index of its value field, of its view's timestamp field, its view's index."""
    ttl_s: tuple[float | None, ...]
    """Per view, the TTL in seconds."""
    view_ts: tuple[int, ...]
    """Per view, the index of its timestamp field."""
    key_types: Mapping[str, ValueType] = dataclasses.field(compare=False)
    """The declared type of each join key (:func:`.convert.join_key_types`)."""
    by_text: bool
    """Whether string values are keyed as they come, without a check: one join key, declared a
    String or undeclared (any other kind, or an Int64 key, goes through entities_from_proto)."""


@dataclass(frozen=True)
class _Prepared:
    """A request ready to read: its plan and the store's batch of HMGETs."""

    plan: _Plan
    batch: RowBatch


class RawFeatureReader:
    """Answers GetOnlineFeatures with serialized response bytes (or None: take the general path)."""

    def __init__(
        self,
        rows: RowReader,
        catalog: FeatureCatalog,
        *,
        max_entities: int,
        max_cached: int = 4096,
        memo_bytes: int = 64 * 2**20,
        counters: ServerCounters | None = None,
    ) -> None:
        """``rows``: the online store's row reader (:attr:`RedisOnlineStore.rows`)."""
        self._rows = rows
        self._catalog = catalog
        self._max_entities = max_entities
        self._max_cached = max_cached
        self._plans: dict[tuple[str, ...] | str, _Plan] = {}
        self._keys: dict[tuple[object, ...], bytes] = {}
        self._prepared: dict[bytes, _Prepared] = {}
        self._memo = ResponseMemo(memo_bytes) if rows.has_cache and memo_bytes else None
        self._generation = 0
        self.counters = counters or ServerCounters()
        """Response memo hits, for the server's metrics."""

    def forget_plans(self) -> None:
        """Drop what was derived from the catalog's views: it changed (``registry apply``).

        A call under way when this runs answers by its old plan and keeps no response.
        """
        self._plans.clear()
        self._prepared.clear()
        self._generation += 1
        if self._memo is not None:
            self._memo.clear()

    def _plan(self, request: feature_service_pb2.GetOnlineFeaturesRequest) -> _Plan | None:
        selector: tuple[str, ...] | str = (
            request.feature_service
            if request.WhichOneof("feature_selector") == "feature_service"
            else tuple(request.features.features)
        )
        plan = self._plans.get(selector)
        if plan is not None:
            return plan
        refs = features_from_proto(request, self._catalog)  # validates; NotFound names the ref
        views = [self._catalog.view(ref.view) for ref in refs]
        join_keys = views[0].join_keys
        if any(view.join_keys != join_keys for view in views):
            return None
        fields: dict[bytes, int] = {}
        view_index: dict[str, int] = {}
        ttl_s: list[float | None] = []
        view_ts: list[int] = []
        columns = []
        for ref, view in zip(refs, views, strict=True):
            view.feature(ref.feature)
            ts = fields.setdefault(timestamp_field(view.name), len(fields))
            if view.name not in view_index:
                view_index[view.name] = len(ttl_s)
                ttl_s.append(view.ttl.total_seconds() if view.ttl is not None else None)
                view_ts.append(ts)
            value = fields.setdefault(feature_field(view.name, ref.feature), len(fields))
            columns.append((value, ts, view_index[view.name]))
        names = b"".join(field(0x0A, str(ref).encode()) for ref in refs)
        key_types = join_key_types(views)
        by_text = len(join_keys) == 1 and key_types.get(join_keys[0]) in (ValueType.STRING, None)
        plan = _Plan(
            join_keys,
            tuple(fields),
            names,
            tuple(columns),
            tuple(ttl_s),
            tuple(view_ts),
            key_types,
            by_text,
        )
        if len(self._plans) < 1024:
            self._plans[selector] = plan
        return plan

    def _entity_keys(
        self, request: feature_service_pb2.GetOnlineFeaturesRequest, plan: _Plan
    ) -> list[bytes] | None:
        """The entities' hash keys (None: not this reader's shape).

        Values of a kind their join key does not take are refused by
        :func:`~featurestore.service.convert.entities_from_proto`, as on the general path: the
        loop over string values breaks on any other kind and leaves the row to it.
        """
        entities = request.entities
        join_keys = plan.join_keys
        if tuple(sorted(entities)) != tuple(sorted(join_keys)):
            return None
        project = self._catalog.project
        cache = self._keys
        if plan.by_text:
            column = entities[join_keys[0]].values
            if 0 < len(column) <= self._max_entities:
                keys = []
                for value in column:
                    symbol = (
                        value.string_value if value.WhichOneof("kind") == "string_value" else None
                    )
                    if symbol is None:
                        break  # not a string: entities_from_proto validates and names it
                    key = cache.get((symbol,))
                    if key is None:
                        key = redis_key(EntityKey(join_keys, (symbol,)), project)
                        if len(cache) < _MAX_KEYS:
                            cache[(symbol,)] = key
                    keys.append(key)
                else:
                    return keys
        rows = entities_from_proto(entities, max_rows=self._max_entities, key_types=plan.key_types)
        return [redis_key(EntityKey(join_keys, row.values), project) for row in rows]

    def prepare(self, data: bytes) -> _Prepared | None:
        """The prepared form of a serialized request (cached), or None for the general path.

        Raises the same validation errors as the general path for a malformed request.
        """
        prepared = self._prepared.get(data)
        if prepared is not None:
            return prepared
        request = parse_request(data)
        plan = self._plan(request)
        if plan is None:
            return None
        keys = self._entity_keys(request, plan)
        if keys is None:
            return None
        prepared = _Prepared(plan, RowBatch.of(plan.fields, keys))
        cache = self._prepared
        if self._max_cached > 0:
            if len(cache) >= self._max_cached:
                del cache[next(iter(cache))]  # the oldest entry
            cache[data] = prepared
        return prepared

    async def respond(self, data: bytes) -> bytes | None:
        """The serialized GetOnlineFeaturesResponse, or None when the general path must answer."""
        memo = self._memo
        rows = self._rows
        if memo is not None and rows.caching:
            answer = memo.get(data, time.time())
            if answer is not None:
                self.counters.response_memo["hit"] += 1
                return answer
            self.counters.response_memo["miss"] += 1
        generation = self._generation
        prepared = self.prepare(data)
        if prepared is None:
            return None
        plan, batch = prepared.plan, prepared.batch
        replies = rows.cached(batch)
        hits: Sequence[int]
        if replies is None:
            replies, hits = await rows.read(batch)
        else:
            hits = range(len(replies))
        columns = _columns(replies)
        now = time.time()
        views = _views(plan, columns, now)
        if hits and any(_STALE in view.states for view in views):
            # A cached row past its TTL may be of a key that Redis has expired since.
            stale = {i for view in views for i, s in enumerate(view.states) if s == _STALE}
            again = sorted(stale.intersection(hits))
            if again:
                await rows.reread(batch, replies, again)
                columns = _columns(replies)
                now = time.time()
                views = _views(plan, columns, now)
        response = _encode(plan, columns, views)
        if memo is not None and rows.caching and generation == self._generation:
            valid_until = min(view.fresh_until for view in views)
            if valid_until > now:  # a stale row: its re-read rule must run
                memo.put(data, rows.table(batch), batch.keys, replies, response, valid_until)
        return response


def _columns(replies: list[Any]) -> list[tuple[bytes | None, ...]]:
    """The HMGET replies (a row per entity) as columns of fields; error replies raise.

    Raises:
        BackendUnavailableError: Redis is loading its data, busy or failing over (UNAVAILABLE).
        FeatureStoreError: any other error reply (INTERNAL).
    """
    if set(map(type, replies)) != {list}:
        errors = [str(r) for r in replies if isinstance(r, hiredis.ReplyError)]
        raise read_failure(errors[0] if errors else "a reply that is not a row")
    return list(zip(*replies, strict=True))


class _ViewRows(NamedTuple):
    """One view's rows of a response."""

    states: bytes
    """Per entity, the row's status (present, stale, not found)."""
    stamps: bytes
    """The encoded ``event_timestamps`` fields."""
    fresh_until: float
    """When the oldest present row passes the view's TTL (in the past if one has; inf: none)."""


_SECONDS: dict[bytes | None, float] = {}
_MAX_SECONDS = 65_536


def _seconds(raw: bytes) -> float:
    """A serialized Timestamp as epoch seconds, parsed once per distinct bytes (bounded)."""
    seconds = _SECONDS.get(raw)
    if seconds is None:
        stamp = Timestamp.FromString(raw)
        seconds = stamp.seconds + stamp.nanos * 1e-9
        if len(_SECONDS) >= _MAX_SECONDS:
            _SECONDS.clear()
        _SECONDS[raw] = seconds
    return seconds


def _view_rows(stamps: Sequence[bytes | None], ttl: float | None, now: float) -> _ViewRows:
    """Per entity, the row's status and encoded time; when the first present row goes stale.

    Rows of few distinct times (of one minute, say), absent rows or stale ones: per distinct
    time (:func:`_view_rows_by_stamp`). Rows of many distinct times, every one present and fresh
    (real data: each entity has its own last event): in C-level passes.
    """
    distinct = set(stamps)
    if len(distinct) <= _FEW_STAMPS or None in distinct:
        return _view_rows_by_stamp(stamps, distinct, ttl, now)
    present = cast(Sequence[bytes], stamps)  # None is not among them
    fresh_until = math.inf
    if ttl is not None:
        times = cast(set[bytes], distinct)
        try:
            oldest = min(map(_SECONDS.__getitem__, times))
        except KeyError:  # a time not parsed yet
            oldest = min(map(_seconds, times))
        if now - oldest > ttl:
            return _view_rows_by_stamp(stamps, distinct, ttl, now)
        fresh_until = oldest + ttl
    lengths = set(map(len, present))
    if len(lengths) == 1:
        prefix = _STAMP[lengths.pop()]
        encoded = prefix + prefix.join(present)
    else:
        encoded = b"".join(map(add, map(_STAMP.__getitem__, map(len, present)), present))
    return _ViewRows(_PRESENT_BYTE * len(stamps), encoded, fresh_until)


def _view_rows_by_stamp(
    stamps: Sequence[bytes | None],
    distinct: set[bytes | None],
    ttl: float | None,
    now: float,
) -> _ViewRows:
    """:func:`_view_rows` for any rows, absent or stale ones too: per distinct time."""
    state_of: dict[bytes | None, int] = {None: _NOT_FOUND}
    encoded_of: dict[bytes | None, bytes] = {None: _EMPTY_STAMP}
    fresh_until = math.inf
    for raw in distinct:
        if raw is None:
            continue
        state = _PRESENT
        if ttl is not None:
            seconds = _seconds(raw)
            if now - seconds > ttl:
                state = _STALE
            fresh_until = min(fresh_until, seconds + ttl)
        state_of[raw] = state
        encoded_of[raw] = _STAMP[len(raw)] + raw
    if len(distinct) == 1:
        (raw,) = distinct
        return _ViewRows(
            bytes((state_of[raw],)) * len(stamps), encoded_of[raw] * len(stamps), fresh_until
        )
    states = bytes(map(state_of.__getitem__, stamps))
    return _ViewRows(states, b"".join(map(encoded_of.__getitem__, stamps)), fresh_until)


def _present_values(raws: Sequence[bytes | None]) -> bytes | None:
    """The framed values of a column where none is absent or null (else None), in C-level passes.

    A value is null when absent, empty, or ``feast.types.Null`` (field 19, first byte 0x98).
    Values of one length (every float64) are framed with one ``join`` on their common prefix.
    """
    present: Sequence[bytes] = raws  # type: ignore[assignment]
    try:
        lengths = set(map(len, present))
    except TypeError:  # len(None): an absent value (cheaper than a ``None in`` pass first)
        return None
    if len(lengths) == 1:
        (size,) = lengths
        if size == 0:
            return None
        prefix = _VALUE[size]
        framed = prefix + prefix.join(present)
        if 0x98 in framed[len(prefix) :: len(prefix) + size]:  # every value's first byte
            return None
        return framed
    if 0 in lengths or 0x98 in bytes(map(_first, present)):
        return None
    return b"".join(map(add, map(_VALUE.__getitem__, map(len, present)), present))


def _views(plan: _Plan, columns: Sequence[Sequence[bytes | None]], now: float) -> list[_ViewRows]:
    """Per view, :func:`_view_rows`."""
    return [
        _view_rows(columns[ts], ttl, now) for ts, ttl in zip(plan.view_ts, plan.ttl_s, strict=True)
    ]


def _encode(
    plan: _Plan, columns: Sequence[Sequence[bytes | None]], views: Sequence[_ViewRows]
) -> bytes:
    all_present = bytes((_PRESENT,)) * len(columns[0])
    out = [plan.names]
    for value_index, _, v in plan.columns:
        states, stamps, _ = views[v]
        raws = columns[value_index]
        values = _present_values(raws) if states == all_present else None
        if values is None:
            values, statuses = _mixed_column(raws, states)
        else:
            statuses = states
        status_field = _FIELD_2[len(statuses)]
        size = len(values) + len(status_field) + len(statuses) + len(stamps)
        out += (_FIELD_2[size], values, status_field, statuses, stamps)
    return b"".join(out)


def _mixed_column(raws: Sequence[bytes | None], states: bytes) -> tuple[bytes, bytes]:
    """Values and statuses of a column with missing, null or stale values, value by value."""
    null = [not raw or raw[0] == 0x98 for raw in raws]
    values = b"".join(
        [
            _EMPTY_VALUE if n or s == _NOT_FOUND else _VALUE[len(r)] + r  # type: ignore[arg-type,operator]
            for r, n, s in zip(raws, null, states, strict=True)
        ]
    )
    statuses = bytes(
        [s if s == _NOT_FOUND or not n else _NULL for n, s in zip(null, states, strict=True)]
    )
    return values, statuses

"""GetOnlineFeatures from Redis bytes to response bytes, without decoding the values.

The online store keeps each value as serialized ``feast.types.Value`` and each row's event time
as a serialized ``google.protobuf.Timestamp``. The scalar field numbers of ``featurestore.v1.Value``
are Feast's (see ``types.proto``), so the stored bytes ARE the response's ``Value`` messages and
``Timestamp`` messages: this reader copies them into the response as they come from Redis and
writes the protobuf framing around them itself. Per request it does one Redis round trip (one
EVALSHA that runs HMGET on every entity's hash), parses one timestamp per (entity, view) for the
TTL check, and caches the per-feature-list plan and the per-entity key bytes across requests.

It serves the common shape: every requested view keyed by exactly the request's join keys (the
views of one entity share one hash in Feast's layout). Anything else returns ``None`` and the
servicer takes the general path through :class:`~featurestore.online.OnlineStore`; the results
are the same (tested side by side).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import redis
import redis.asyncio
from google.protobuf.timestamp_pb2 import Timestamp

from featurestore._proto.v1 import feature_service_pb2, types_pb2
from featurestore.errors import BackendUnavailableError, FeatureStoreError
from featurestore.online import EntityKey, FeatureCatalog
from featurestore.online.layout import feature_field, redis_key, timestamp_field
from featurestore.service.convert import entities_from_proto, features_from_proto

__all__ = ["RawFeatureReader"]

_HMGET_ALL_LUA = """\
local out, n = {}, #ARGV
for i, key in ipairs(KEYS) do
  local values = redis.call('HMGET', key, unpack(ARGV))
  local base = (i - 1) * n
  for j = 1, n do out[base + j] = values[j] end
end
return out
"""
_PRESENT: int = types_pb2.FEATURE_STATUS_PRESENT
_NULL: int = types_pb2.FEATURE_STATUS_NULL_VALUE
_NOT_FOUND: int = types_pb2.FEATURE_STATUS_NOT_FOUND
_STALE: int = types_pb2.FEATURE_STATUS_OUTSIDE_MAX_AGE
_FEAST_NULL = b"\x98\x01"  # field 19 (feast.types.Null), varint: an explicit null
_MAX_CACHED = 100_000


def _varint(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """One length-delimited field: tag, length, payload."""
    return tag + _varint(len(payload)) + payload


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


class RawFeatureReader:
    """Answers GetOnlineFeatures with serialized response bytes (or None: take the general path)."""

    def __init__(self, client: redis.asyncio.Redis, catalog: FeatureCatalog, *, max_entities: int):
        self._client = client
        self._catalog = catalog
        self._max_entities = max_entities
        self._script = client.register_script(_HMGET_ALL_LUA)
        self._plans: dict[tuple[str, ...] | str, _Plan] = {}
        self._keys: dict[tuple[object, ...], bytes] = {}

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
        columns = []
        for ref, view in zip(refs, views, strict=True):
            view.feature(ref.feature)
            if view.name not in view_index:
                view_index[view.name] = len(ttl_s)
                ttl_s.append(view.ttl.total_seconds() if view.ttl is not None else None)
            ts = fields.setdefault(timestamp_field(view.name), len(fields))
            value = fields.setdefault(feature_field(view.name, ref.feature), len(fields))
            columns.append((value, ts, view_index[view.name]))
        names = b"".join(_field(b"\x0a", str(ref).encode()) for ref in refs)
        plan = _Plan(join_keys, tuple(fields), names, tuple(columns), tuple(ttl_s))
        if len(self._plans) < 1024:
            self._plans[selector] = plan
        return plan

    def _entity_keys(
        self, request: feature_service_pb2.GetOnlineFeaturesRequest, join_keys: tuple[str, ...]
    ) -> list[bytes] | None:
        entities = request.entities
        if tuple(sorted(entities)) != tuple(sorted(join_keys)):
            return None
        project = self._catalog.project
        cache = self._keys
        if len(join_keys) == 1:
            column = entities[join_keys[0]].values
            if 0 < len(column) <= self._max_entities:
                keys = []
                for value in column:
                    symbol = (
                        value.string_value if value.WhichOneof("kind") == "string_value" else None
                    )
                    if symbol is None:
                        break  # not a string key: the general path validates and names it
                    key = cache.get((symbol,))
                    if key is None:
                        key = redis_key(EntityKey(join_keys, (symbol,)), project)
                        if len(cache) < _MAX_CACHED:
                            cache[(symbol,)] = key
                    keys.append(key)
                else:
                    return keys
        rows = entities_from_proto(entities, max_rows=self._max_entities)
        return [redis_key(EntityKey(join_keys, row.values), project) for row in rows]

    async def respond(self, request: feature_service_pb2.GetOnlineFeaturesRequest) -> bytes | None:
        """The serialized GetOnlineFeaturesResponse, or None when the general path must answer."""
        plan = self._plan(request)
        if plan is None:
            return None
        keys = self._entity_keys(request, plan.join_keys)
        if keys is None:
            return None
        try:
            flat = await self._script(keys=keys, args=list(plan.fields))
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise BackendUnavailableError("online store (Redis) unavailable while reading") from exc
        except redis.RedisError as exc:
            raise FeatureStoreError(f"online store (Redis) failed while reading: {exc}") from exc
        return _encode(plan, flat, len(keys), time.time())


_LENGTHS = tuple(bytes((n,)) for n in range(0x80))
_EMPTY_VALUE = b"\x0a\x00"
_EMPTY_STAMP = b"\x1a\x00"


def _length(n: int) -> bytes:
    return _LENGTHS[n] if n < 0x80 else _varint(n)


def _view_rows(
    stamps: Sequence[bytes | None], ttl: float | None, now: float
) -> tuple[list[int], bytes]:
    """Per entity, the row's status (present, stale, not found), and the encoded event times."""
    states = []
    stale_of: dict[bytes, int] = {}  # rows of one minute share their timestamp bytes
    for raw in stamps:
        if raw is None:
            states.append(_NOT_FOUND)
            continue
        state = stale_of.get(raw)
        if state is None:
            state = _PRESENT
            if ttl is not None:
                stamp = Timestamp.FromString(raw)
                if now - (stamp.seconds + stamp.nanos * 1e-9) > ttl:
                    state = _STALE
            stale_of[raw] = state
        states.append(state)
    encoded = b"".join(
        [_EMPTY_STAMP if raw is None else b"\x1a" + _length(len(raw)) + raw for raw in stamps]
    )
    return states, encoded


def _encode(plan: _Plan, flat: Sequence[bytes | None], rows: int, now: float) -> bytes:
    width = len(plan.fields)
    views: dict[int, tuple[list[int], bytes]] = {}
    out = [plan.names]
    for value_index, ts_index, v in plan.columns:
        if v not in views:
            views[v] = _view_rows(flat[ts_index::width], plan.ttl_s[v], now)
        states, stamps = views[v]
        raws = flat[value_index::width]
        # A value is null when absent, empty, or feast.types.Null (field 19, first byte 0x98).
        null = [not raw or raw[0] == 0x98 for raw in raws]
        values = b"".join(
            [
                _EMPTY_VALUE if n or s == _NOT_FOUND else b"\x0a" + _length(len(r)) + r  # type: ignore[arg-type,operator]
                for r, n, s in zip(raws, null, states, strict=True)
            ]
        )
        statuses = bytes(
            [s if s == _NOT_FOUND or not n else _NULL for n, s in zip(null, states, strict=True)]
        )
        column = values + b"\x12" + _length(len(statuses)) + statuses + stamps
        out.append(b"\x12" + _length(len(column)) + column)
    return b"".join(out)

"""Edges of the online store that need no Redis: keys, partial rows, ``now``, passing states.

The read path is given a fake :class:`~featurestore.online.rows.RowClient` (the store's own
interface) that answers every HMGET with one reply, as a Redis that is loading its data does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import hiredis
import pyarrow as pa
import pytest
import redis.asyncio
from feast.infra.online_stores.helpers import _redis_key
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto

from featurestore.errors import BackendUnavailableError
from featurestore.errors import FeatureStoreError
from featurestore.errors import ValidationError
from featurestore.online import EntityKey
from featurestore.online import FeatureRef
from featurestore.online import FeatureRow
from featurestore.online import FeatureStatus
from featurestore.online import RedisOnlineStore
from featurestore.online import ValueType
from featurestore.online.layout import encode_timestamp
from featurestore.online.layout import encode_value
from featurestore.online.layout import feature_field
from featurestore.online.layout import redis_key
from featurestore.online.redis import table_write_args
from featurestore.online.redis import write_args
from featurestore.online.rows import RowReader
from featurestore.online.testing import BARS_1M
from featurestore.online.testing import market_catalog
from tests.unit.online.row_clients import FakeRowClient

CLOSE = FeatureRef("bars_1m", "close")
NOW = datetime(2026, 3, 2, 15, 30, tzinfo=UTC)


@pytest.mark.parametrize("value", [2**63 - 1, -(2**63), 0, -1])
def test_int64_extremes_are_feasts_keys(value: int) -> None:
    feast_key = EntityKeyProto(join_keys=["id"], entity_values=[ValueProto(int64_val=value)])
    assert redis_key(EntityKey.of(id=value), "p") == _redis_key(
        "p", feast_key, entity_key_serialization_version=3
    )


@pytest.mark.parametrize(
    ("value", "named"),
    [
        (2**63, "9223372036854775808 is outside the 64-bit integer range"),
        (-(2**63) - 1, "-9223372036854775809 is outside the 64-bit integer range"),
        (1.5, "1.5: entity values are strings or integers"),
        (None, "None: entity values are strings or integers"),
        (True, "True: entity values are strings or integers"),
        ("\ud800", "is not valid Unicode text"),
    ],
)
def test_a_bad_entity_value_is_refused_naming_it(value: Any, named: str) -> None:
    with pytest.raises(ValidationError, match=named.replace(".", r"\.")):
        redis_key(EntityKey(("symbol",), (value,)), "p")


def test_unusual_string_keys_never_collide() -> None:
    values: list[str | int] = ["", " ", "1", 1, "é", "e\u0301", "a\x00b", "🚀", "x" * 100_000]
    keys = {redis_key(EntityKey.of(symbol=v), "p") for v in values}
    assert len(keys) == len(values)


def _fields(args: Sequence[bytes | str]) -> dict[bytes | str, bytes | str]:
    """The feature field -> value pairs of a write's script arguments."""
    return dict(zip(args[5::2], args[6::2], strict=True))


def test_a_row_writes_every_feature_of_its_view_absent_ones_null() -> None:
    """A newer row lacking a feature must not leave an older row's value beside it."""
    catalog = market_catalog("p")
    row = FeatureRow("bars_1m", EntityKey.of(symbol="A"), NOW, {"close": 1.0})
    _, args = write_args(row, catalog)
    fields = _fields(args)
    assert set(fields) == {feature_field("bars_1m", f.name) for f in BARS_1M.features}
    assert fields[feature_field("bars_1m", "volume")] == b""
    assert fields[feature_field("bars_1m", "close")] != b""


def test_table_rows_write_absent_features_null_as_row_by_row() -> None:
    catalog = market_catalog("p")
    table = pa.table({
        "symbol": ["A", "B"],
        "event_timestamp": pa.array([NOW, NOW], pa.timestamp("us", tz="UTC")),
        "close": [1.0, None],
        "volume": [5.0, 6.0],
    })  # fmt: skip
    by_table = table_write_args(table, "bars_1m", ["close", "volume"], "symbol", catalog)
    by_row = [
        write_args(
            FeatureRow("bars_1m", EntityKey.of(symbol=r["symbol"]), r["event_timestamp"],
                       {"close": r["close"], "volume": r["volume"]}),
            catalog,
        )
        for r in table.to_pylist()
    ]  # fmt: skip
    assert by_table == by_row
    assert _fields(by_table[0][1])[feature_field("bars_1m", "vwap")] == b""


def _read(reply: Any, *, now: datetime | None = None) -> Any:
    async def main() -> Any:
        writes = redis.asyncio.Redis(port=1)  # never connected: the test only reads
        store = RedisOnlineStore(
            writes,
            market_catalog("p"),
            RowReader(FakeRowClient(lambda _key, _fields: reply)),
            kept_past_ttl=timedelta(0),
        )
        try:
            return await store.read([EntityKey.of(symbol="A")], [CLOSE], now=now)
        finally:
            await store.close()

    return asyncio.run(main())


@pytest.mark.parametrize(
    "state",
    [
        "LOADING Redis is loading the dataset in memory",
        "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSCRIPT.",
        "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
    ],
)
def test_a_redis_in_a_passing_state_is_unavailable(state: str) -> None:
    """A restarted Redis loading its data answers LOADING: retry, not a failed request."""
    with pytest.raises(BackendUnavailableError, match=state.split()[0]) as caught:
        _read(hiredis.ReplyError(state))
    assert caught.value.retryable


def test_another_error_reply_is_a_failure() -> None:
    with pytest.raises(FeatureStoreError, match="WRONGTYPE") as caught:
        _read(hiredis.ReplyError("WRONGTYPE Operation against a key holding the wrong kind"))
    assert not isinstance(caught.value, BackendUnavailableError)


def test_a_naive_now_is_refused_naming_it() -> None:
    with pytest.raises(ValidationError, match="now must be timezone-aware"):
        _read([None, None], now=datetime(2026, 3, 2, 15, 30))


def test_freshness_at_the_ttl_boundary() -> None:
    """A row exactly TTL old is still PRESENT; a microsecond more and it is OUTSIDE_MAX_AGE."""
    event = NOW - BARS_1M.ttl  # type: ignore[operator]
    reply = [encode_timestamp(event), encode_value(1.0, ValueType.FLOAT64)]
    at = _read(reply, now=NOW).columns[0][0]
    past = _read(reply, now=NOW + timedelta(microseconds=1)).columns[0][0]
    assert (at.status, at.value) == (FeatureStatus.PRESENT, 1.0)
    assert (past.status, past.value) == (FeatureStatus.OUTSIDE_MAX_AGE, 1.0)

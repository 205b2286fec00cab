"""Predict's fast path (stored bytes -> matrix -> response bytes) against its general path."""

from __future__ import annotations

import asyncio
import dataclasses
import math
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import numpy as np

from featurestore._proto.v1 import prediction_service_pb2
from featurestore.events import AvroSerializer
from featurestore.events import InMemorySchemaStore
from featurestore.events import PredictionLog
from featurestore.events import to_micros
from featurestore.online import EntityKey
from featurestore.online import FeatureRef
from featurestore.online import FeatureRow
from featurestore.online.layout import redis_key
from featurestore.online.redis import write_args
from featurestore.online.testing import InMemoryOnlineStore
from featurestore.online.testing import market_catalog
from featurestore.prediction_log import writer
from featurestore.prediction_log.encoding import PredictionLogEncoder
from featurestore.prediction_log.encoding import PredictionRows
from featurestore.service.models import LoadedModel
from featurestore.service.predict_read import ModelPlan
from featurestore.service.predict_read import decode
from featurestore.service.predict_response import encode_names
from featurestore.service.predict_response import encode_predict_response
from featurestore.service.prediction_log_process import entities_definition
from featurestore.service.prediction_log_process import scored_definition
from featurestore.service.predictions import _log_events
from featurestore.service.predictions import _matrix
from featurestore.service.predictions import _response
from featurestore.service.scored_rows import ScoredRows

NOW = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
REFS = (
    FeatureRef("bars_1m", "close"),
    FeatureRef("rolling_1m", "vwap_5m"),
    FeatureRef("bars_1m", "volume"),
    FeatureRef("bars_1m", "trade_count"),  # an INT64 feature
)
ENTITIES = tuple(EntityKey.of(symbol=s) for s in ("AAPL", "IBM", "GHOST", "OLD", "NULLS"))
ROWS = [
    FeatureRow("bars_1m", ENTITIES[0], NOW, {"close": 190.5, "volume": 7.0, "trade_count": 3}),
    FeatureRow("rolling_1m", ENTITIES[0], NOW - timedelta(seconds=30), {"vwap_5m": 189.0}),
    FeatureRow("bars_1m", ENTITIES[1], NOW, {"close": 150.0}),  # volume, trade_count absent
    FeatureRow("bars_1m", ENTITIES[3], NOW - timedelta(hours=2), {"close": 1.0, "volume": 2.0}),
    FeatureRow("rolling_1m", ENTITIES[3], NOW - timedelta(minutes=1), {"vwap_5m": 3.0}),
    FeatureRow("bars_1m", ENTITIES[4], NOW, {"close": None, "volume": 5.0, "trade_count": None}),
]


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def _replies(plan: ModelPlan) -> list[tuple[bytes | None, ...]]:
    """The columns of the HMGET replies Redis would give for what write_args stores."""
    catalog = market_catalog()
    hashes: dict[bytes, dict[bytes, bytes]] = {}
    for row in ROWS:
        key, args = write_args(row, catalog)
        fields = hashes.setdefault(key, {})
        fields[_bytes(args[0])] = _bytes(args[1])
        pairs = args[5:]
        for name, value in zip(pairs[::2], pairs[1::2], strict=True):
            fields[_bytes(name)] = _bytes(value)
    replies = [
        [hashes.get(redis_key(e, catalog.project), {}).get(f) for f in plan.fields]
        for e in ENTITIES
    ]
    return list(zip(*replies, strict=True))


def test_fast_path_response_and_log_equal_the_general_paths():
    catalog = market_catalog()
    columns = tuple(f"{r.view}__{r.feature}" for r in REFS)
    model = LoadedModel("m", "3", columns, REFS, None)
    plan = ModelPlan.build(catalog, REFS)
    assert plan is not None
    rows = decode(plan, _replies(plan), NOW.timestamp())

    store = InMemoryOnlineStore(catalog)
    asyncio.run(store.write(ROWS))
    general = asyncio.run(store.read(ENTITIES, REFS, now=NOW)).columns
    np.testing.assert_array_equal(rows.matrix, _matrix(general))

    scores = np.array([0.1, 0.2, float("nan"), 0.4, 0.5])
    ids = [f"{i:032x}" for i in range(len(ENTITIES))]
    scored = ScoredRows(rows, scores, encode_names([str(r) for r in REFS]))
    answer = encode_predict_response("m", "3", scored.tails, "".join(ids).encode())
    fast = prediction_service_pb2.PredictResponse.FromString(answer)
    slow = _response(model, ENTITIES, general, scores)
    assert (fast.model_name, fast.model_version) == ("m", "3")
    assert len(fast.predictions) == len(slow.predictions) == len(ENTITIES)
    for got, want, request_id in zip(fast.predictions, slow.predictions, ids, strict=True):
        assert got.request_id == request_id and len(want.request_id) == 32
        want.request_id = request_id
        if np.isnan(want.score):
            assert np.isnan(got.score)
            got.score = want.score = 0.0
        assert got == want
    statuses = [list(p.feature_statuses) for p in fast.predictions]
    assert len({tuple(s) for s in statuses}) == len(ENTITIES)  # every kind of status was met

    received = NOW
    parsed = prediction_service_pb2.PredictResponse.FromString(answer)  # its NaN score kept
    slow_log = _log_events(model, ENTITIES, general, parsed, received)
    answered = to_micros(slow_log[0].response_time)
    serializer = AvroSerializer.for_topic(InMemorySchemaStore(), "predictions", PredictionLog)
    encoder = PredictionLogEncoder(serializer.schema_id, "m", "3", tuple(map(str, REFS)))
    fast_log = encoder.encode(_logged_rows(ENTITIES, scored, ids, to_micros(received), answered))
    assert fast_log == [serializer.encode(event) for event in slow_log]
    # The same arrays again (unchanged rows): the kept bodies, the new ids joined in.
    other = [f"{i + 100:032x}" for i in range(len(ENTITIES))]
    again = encoder.encode(_logged_rows(ENTITIES, scored, other, to_micros(received), answered))
    renamed = [dataclasses.replace(e, request_id=i) for e, i in zip(slow_log, other, strict=True)]
    assert again == [serializer.encode(event) for event in renamed]
    assert {e.feature_time for e in slow_log} == {NOW, NOW - timedelta(minutes=1), None}
    assert [e.features["bars_1m:close"] for e in slow_log] == [190.5, 150.0, None, None, None]


def _logged_rows(
    entities: tuple[EntityKey, ...],
    scored: ScoredRows,
    ids: list[str],
    received: int,
    answered: int,
) -> PredictionRows:
    """The rows the log's writer process makes of a call, through the messages the server sends."""
    calls = writer.LoggedCalls()
    calls.define((writer.MODEL, 0, "m", "3", tuple(map(str, REFS))))
    calls.define((writer.ENTITIES, 1, *entities_definition(entities)))
    calls.define((writer.SCORED, 2, *scored_definition(scored)))
    model, rows = calls.call((writer.CALL, 0, 1, 2, "".join(ids), received, answered, None))
    assert model == ("m", "3", tuple(map(str, REFS)))
    return rows


def test_rows_hold_until_the_first_present_value_outlives_its_ttl():
    plan = ModelPlan.build(market_catalog(), REFS)
    assert plan is not None
    columns = _replies(plan)
    # OLD's bar is two hours old: already OUTSIDE_MAX_AGE, so these rows are read again.
    assert decode(plan, columns, NOW.timestamp()).fresh_until == -math.inf
    # AAPL alone: its rolling_1m row (30 s old, TTL 1 h) is the first to age out.
    aapl = decode(plan, [column[:1] for column in columns], NOW.timestamp())
    assert aapl.fresh_until == (NOW - timedelta(seconds=30)).timestamp() + 3600
    # GHOST alone has no row: nothing can age out.
    ghost = decode(plan, [column[2:3] for column in columns], NOW.timestamp())
    assert ghost.fresh_until == math.inf

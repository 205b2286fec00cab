"""Predict's idempotency key: a retried call gets (and logs) the same prediction ids.

Without the key a prediction id is random, so a client that retries a call whose answer was lost
logged the same predictions twice under new ids. With ``idempotency-key`` metadata the ids are
derived from the key and the row index, on both paths (the row path over a fake Redis, and the
general path over the in-memory store), and the prediction log gets the ids the answer carries.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from featurestore._proto.v1 import prediction_service_pb2
from featurestore.errors import ValidationError
from featurestore.online import EntityKey
from featurestore.online import FeatureRow
from featurestore.online import ValueType
from featurestore.online.rows import RowReader
from featurestore.online.testing import InMemoryOnlineStore
from featurestore.service.predict_read import PredictReader
from featurestore.service.predictions import IDEMPOTENCY_KEY
from featurestore.service.predictions import PredictionServicer
from featurestore.service.predictions import _id_seed
from featurestore.service.predictions import _id_text
from featurestore.service.predictions import _request_ids
from featurestore.service.predictions import idempotency_key
from tests.unit.online.row_clients import written_hashes
from tests.unit.service.test_join_key_kinds import NOW
from tests.unit.service.test_join_key_kinds import _catalog
from tests.unit.service.test_join_key_kinds import _Models

HEX32 = re.compile(r"[0-9a-f]{32}")
KEY = "6f1c2a9e0b7d4e3f8a5b6c7d8e9f0a1b"


def test_ids_of_a_key_are_32_hex_digits_the_same_every_time_and_differ_per_row_key_and_request():
    seed = _id_seed(KEY, b"request")
    ids = _request_ids(5, seed)
    assert all(HEX32.fullmatch(i) for i in ids)
    assert ids == _request_ids(5, _id_seed(KEY, b"request"))
    assert len(set(ids)) == 5
    assert _request_ids(2, seed) == ids[:2]  # row i's id depends on the seed and i only
    assert not set(ids) & set(_request_ids(5, _id_seed(KEY + "x", b"request")))
    assert not set(ids) & set(_request_ids(5, _id_seed(KEY, b"another request")))
    assert len(_id_text(3, seed)) == 96
    assert _id_seed(None, b"request") is None


def test_ids_without_a_key_are_random():
    ids = _request_ids(3)
    assert all(HEX32.fullmatch(i) for i in ids)
    assert not set(ids) & set(_request_ids(3))


def test_the_key_is_read_from_the_metadata():
    assert idempotency_key(()) is None
    assert idempotency_key(None) is None
    assert idempotency_key((("user-agent", "x"),)) is None
    assert idempotency_key((("user-agent", "x"), (IDEMPOTENCY_KEY, KEY))) == KEY
    assert idempotency_key(((IDEMPOTENCY_KEY, " a b~"),)) == " a b~"
    assert idempotency_key(((IDEMPOTENCY_KEY, "k" * 255),)) == "k" * 255


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("", "metadata idempotency-key: must not be empty"),
        ("k" * 256, "metadata idempotency-key: at most 255 characters, got 256"),
        ("abc\tdef", "metadata idempotency-key: printable ASCII only, got '\\t' at character 3"),
        ("clé", "metadata idempotency-key: printable ASCII only, got 'é' at character 2"),
        (b"\x00", "metadata idempotency-key: printable ASCII only, got '\\x00' at character 0"),
    ],
)
def test_a_malformed_key_is_invalid_argument_naming_it(value: Any, says: str):
    with pytest.raises(ValidationError) as raised:
        idempotency_key(((IDEMPOTENCY_KEY, value),))
    assert str(raised.value) == says
    assert raised.value.grpc_code.name == "INVALID_ARGUMENT"


class _Context:
    def __init__(self, key: str | None) -> None:
        self._metadata: tuple[tuple[str, str], ...] = (("user-agent", "test"),)
        if key is not None:
            self._metadata += ((IDEMPOTENCY_KEY, key),)

    def time_remaining(self) -> None:
        return None

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata


class _Log:
    """The prediction log's two entry points, recording the ids logged."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def log_call(self, *args: Any) -> None:
        self.ids += [args[5][i : i + 32] for i in range(0, len(args[5]), 32)]

    def log(self, events: Any) -> None:
        self.ids += [e.request_id for e in events]


def _servicer(fast: bool) -> tuple[PredictionServicer, _Log]:
    catalog = _catalog(ValueType.STRING)
    rows = [FeatureRow("bars", EntityKey.of(symbol=s), NOW, {"close": 1.5}) for s in "ABC"]
    store = InMemoryOnlineStore(catalog)
    asyncio.run(store.write(rows))
    log = _Log()
    reader = PredictReader(RowReader(written_hashes(rows, catalog)), catalog)
    servicer = PredictionServicer(
        store,
        _Models(),  # type: ignore[arg-type]
        log,  # type: ignore[arg-type]
        max_entities=10,
        reader=reader if fast else None,
        catalog=catalog,
    )
    return servicer, log


def _request(symbols: str = "ABC") -> bytes:
    request = prediction_service_pb2.PredictRequest(model_name="m")
    for symbol in symbols:
        request.entities["symbol"].values.add().string_value = symbol
    return request.SerializeToString()


def _ids(servicer: PredictionServicer, key: str | None, symbols: str = "ABC") -> list[str]:
    async def call() -> bytes:
        answer = await servicer.Predict(_request(symbols), _Context(key))
        await asyncio.sleep(0)  # the fast path logs in a callback after the answer
        return answer

    response = prediction_service_pb2.PredictResponse.FromString(asyncio.run(call()))
    assert [p.score for p in response.predictions] == [1.5] * 3
    return [p.request_id for p in response.predictions]


@pytest.mark.parametrize("fast", [False, True], ids=["general path", "row path"])
def test_a_call_repeated_with_its_key_answers_and_logs_the_same_ids(fast: bool):
    servicer, log = _servicer(fast)
    first = _ids(servicer, KEY)
    assert first == _request_ids(3, _id_seed(KEY, _request()))
    assert _ids(servicer, KEY) == first  # the retry: same request bytes, kept request reused
    assert log.ids == first + first  # the same ids logged: the offline table keeps one row each
    other = _ids(servicer, "another key")
    assert not set(other) & set(first)
    reused = _ids(servicer, KEY, "CBA")  # the key sent again with another request
    assert not set(reused) & set(first)
    unkeyed = _ids(servicer, None) + _ids(servicer, None)
    assert len(set(unkeyed) | set(first)) == 9


@pytest.mark.parametrize("fast", [False, True], ids=["general path", "row path"])
def test_a_call_with_a_malformed_key_is_refused_before_anything_is_logged(fast: bool):
    servicer, log = _servicer(fast)
    with pytest.raises(ValidationError, match="metadata idempotency-key: must not be empty"):
        _ids(servicer, "")
    assert log.ids == []

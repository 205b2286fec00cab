"""A request value of a kind its join key does not take is INVALID_ARGUMENT, on both paths.

The layout keys a value by its own kind (a text value as a String, a whole number as an Int64),
so ``int64_value 7`` for a String key ``symbol`` was looked up under a key no row has: every
feature NOT_FOUND, with no hint. The general path (:class:`FeatureServicer` over the store) and
the raw fast path (:class:`RawFeatureReader`, here over a fake Redis that serves the rows the
store's own ``write_args`` would write) refuse it with the same message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import grpc
import pytest
from featurestore_client import FeatureStoreClient
from featurestore_client import InvalidArgumentError
from featurestore_client import RetryPolicy

from featurestore._proto.v1 import feature_service_pb2
from featurestore._proto.v1 import prediction_service_pb2
from featurestore._proto.v1 import types_pb2
from featurestore.config import GrpcSettings
from featurestore.config import ServiceSettings
from featurestore.config import Settings
from featurestore.definitions import Definitions
from featurestore.definitions import Entity
from featurestore.definitions import Feature
from featurestore.definitions import FeatureView
from featurestore.definitions import SourceTable
from featurestore.errors import ValidationError
from featurestore.online import EntityKey
from featurestore.online import FeatureRef
from featurestore.online import FeatureRow
from featurestore.online import FeatureSpec
from featurestore.online import FeatureViewSpec
from featurestore.online import StaticCatalog
from featurestore.online import ValueType
from featurestore.online.catalog import catalog_from_definitions
from featurestore.online.rows import RowReader
from featurestore.online.testing import InMemoryOnlineStore
from featurestore.service.features import FeatureServicer
from featurestore.service.models import LoadedModel
from featurestore.service.predict_read import PredictReader
from featurestore.service.predictions import PredictionServicer
from featurestore.service.raw_features import RawFeatureReader
from featurestore.service.testing import ServerThread
from tests.unit.online.row_clients import written_hashes

NOW = datetime.now(UTC).replace(microsecond=0)
STORED: dict[ValueType, str | int] = {ValueType.STRING: "7", ValueType.INT64: 7}
"""The entity each catalog has a row for: ``symbol`` 7, of the join key's type."""
PRESENT = types_pb2.FEATURE_STATUS_PRESENT


def _catalog(key_type: ValueType) -> StaticCatalog:
    """As ``serve`` reads it from definitions: ``bars`` keyed by ``symbol`` of ``key_type``,
    ``venues`` by the String ``venue``; and ``news``, keyed by ``symbol`` in a catalog built by
    hand, which declares no join key type."""
    close = (Feature("close", ValueType.FLOAT64),)
    definitions = Definitions(
        "p",
        (Entity("symbol", "symbol", key_type), Entity("venue", "venue", ValueType.STRING)),
        (
            FeatureView("bars", ("symbol",), close, timedelta(0), SourceTable("t_bars")),
            FeatureView("venues", ("venue",), close, timedelta(0), SourceTable("t_venues")),
        ),
        (),
    )
    news = FeatureViewSpec("news", ("symbol",), (FeatureSpec("score", ValueType.FLOAT64),), None)
    declared = catalog_from_definitions(definitions)
    return StaticCatalog.of("p", [*declared.views.values(), news])


def _rows(key_type: ValueType) -> list[FeatureRow]:
    return [FeatureRow("bars", EntityKey.of(symbol=STORED[key_type]), NOW, {"close": 1.5})]


class _Context:
    def time_remaining(self) -> None:
        return None

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return ()


def _request(
    values: Sequence[types_pb2.Value],
    features: Sequence[str] = ("bars:close",),
    **other_keys: Sequence[types_pb2.Value],
) -> bytes:
    request = feature_service_pb2.GetOnlineFeaturesRequest()
    request.features.features.extend(features)
    request.entities["symbol"].values.extend(values)
    for name, column in other_keys.items():
        request.entities[name].values.extend(column)
    return request.SerializeToString()


def _general(key_type: ValueType, data: bytes) -> feature_service_pb2.GetOnlineFeaturesResponse:
    catalog = _catalog(key_type)
    store = InMemoryOnlineStore(catalog)
    servicer = FeatureServicer(store, catalog, max_entities=100)

    async def main() -> bytes:
        await store.write(_rows(key_type))
        return await servicer.GetOnlineFeatures(data, _Context())

    return feature_service_pb2.GetOnlineFeaturesResponse.FromString(asyncio.run(main()))


def _raw(key_type: ValueType, data: bytes) -> feature_service_pb2.GetOnlineFeaturesResponse:
    """The raw path's answer (None from it fails: the general path must not answer here)."""
    catalog = _catalog(key_type)
    reader = RawFeatureReader(
        RowReader(written_hashes(_rows(key_type), catalog)), catalog, max_entities=100
    )
    answer = asyncio.run(reader.respond(data))
    assert answer is not None, "the raw path left this request to the general path"
    return feature_service_pb2.GetOnlineFeaturesResponse.FromString(answer)


PATHS = [pytest.param(_general, id="general"), pytest.param(_raw, id="raw")]
S = types_pb2.Value(string_value="7")
I64 = types_pb2.Value(int64_value=7)
I32 = types_pb2.Value(int32_value=7)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    ("key_type", "values", "says"),
    [
        (ValueType.STRING, [I64], "entities[symbol].values[0]: join key symbol is a String, got"
         " int64_value 7"),
        (ValueType.STRING, [I32], "entities[symbol].values[0]: join key symbol is a String, got"
         " int32_value 7"),
        (ValueType.STRING, [S, S, types_pb2.Value(double_value=7.0)], "entities[symbol]"
         ".values[2]: join key symbol is a String, got double_value 7.0"),
        (ValueType.STRING, [S, types_pb2.Value()], "entities[symbol].values[1]: join key symbol"
         " is a String, got no value"),
        (ValueType.INT64, [S], "entities[symbol].values[0]: join key symbol is an Int64, got"
         " string_value '7'"),
        (ValueType.INT64, [I64, types_pb2.Value(bool_value=True)], "entities[symbol].values[1]:"
         " join key symbol is an Int64, got bool_value True"),
    ],
)  # fmt: skip
def test_a_value_of_another_kind_is_refused_naming_field_key_type_and_value(
    path: Any, key_type: ValueType, values: list[types_pb2.Value], says: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        path(key_type, _request(values))
    assert str(raised.value) == says
    assert raised.value.field == says.partition(":")[0]
    assert raised.value.grpc_code is grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("path", PATHS)
def test_a_long_text_is_shown_shortened(path: Any) -> None:
    text = "x" * 5000
    with pytest.raises(ValidationError) as raised:
        path(ValueType.INT64, _request([types_pb2.Value(string_value=text)]))
    assert str(raised.value) == (
        "entities[symbol].values[0]: join key symbol is an Int64, got string_value"
        f" '{'x' * 59}...{'x' * 9}'"
    )


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    ("key_type", "value"),
    [(ValueType.STRING, S), (ValueType.INT64, I64), (ValueType.INT64, I32)],
)
def test_a_value_of_a_kind_its_join_key_takes_finds_its_row(
    path: Any, key_type: ValueType, value: types_pb2.Value
) -> None:
    missing = (  # an entity without a row
        types_pb2.Value(string_value="8")
        if key_type is ValueType.STRING
        else types_pb2.Value(int64_value=8)
    )
    response = path(key_type, _request([value, missing, value]))
    (column,) = response.columns
    assert list(column.statuses) == [PRESENT, types_pb2.FEATURE_STATUS_NOT_FOUND, PRESENT]
    assert [v.double_value for v in column.values] == [1.5, 0.0, 1.5]


@pytest.mark.parametrize("path", PATHS)
def test_a_join_key_no_view_declares_takes_either_kind(path: Any) -> None:
    """``news`` declares no type (a catalog built by hand): values are keyed by their own."""
    for value in (S, I64):
        response = path(ValueType.STRING, _request([value], ["news:score"]))
        assert list(response.columns[0].statuses) == [types_pb2.FEATURE_STATUS_NOT_FOUND]


def test_a_join_key_no_requested_view_uses_is_not_checked() -> None:
    """``venue`` (declared String) sent as a number beside ``symbol``: ``bars`` does not use it."""
    response = _general(ValueType.STRING, _request([S], venue=[I64]))
    assert list(response.columns[0].statuses) == [PRESENT]


def test_a_join_key_some_requested_view_uses_is_checked() -> None:
    with pytest.raises(ValidationError, match=r"^entities\[venue\]\.values\[0\]: join key venue"):
        _general(ValueType.STRING, _request([S], ["bars:close", "venues:close"], venue=[I64]))


def test_a_refused_request_reads_nothing_and_a_repeat_is_refused_again() -> None:
    """The raw path keeps only valid requests: a refused one is checked on every call."""
    catalog = _catalog(ValueType.STRING)
    client = written_hashes(_rows(ValueType.STRING), catalog)
    reader = RawFeatureReader(RowReader(client), catalog, max_entities=100)
    data = _request([S, I64])
    for _ in range(2):
        with pytest.raises(ValidationError, match=r"values\[1\]: join key symbol is a String"):
            asyncio.run(reader.respond(data))
    assert client.read == []
    assert asyncio.run(reader.respond(_request([S]))) is not None  # the plan was kept, valid


def test_through_the_sdk_a_number_for_a_string_key_is_invalid_argument_naming_it() -> None:
    """What a Python caller meets: ``symbol=[7]`` (an int) for the String key."""
    catalog = _catalog(ValueType.STRING)
    store = InMemoryOnlineStore(catalog)
    settings = Settings(grpc=GrpcSettings(port=0), service=ServiceSettings())
    server = ServerThread(settings, catalog, store_factory=lambda: store, probes={})
    try:
        server.run(store.write(_rows(ValueType.STRING)))
        with FeatureStoreClient(server.target, retry=RetryPolicy(max_attempts=1)) as client:
            with pytest.raises(InvalidArgumentError) as raised:
                client.get_online_features(["bars:close"], entities={"symbol": [7]})
            found = client.get_online_features(["bars:close"], entities={"symbol": ["7"]})
    finally:
        server.stop(grace_s=0)
    assert raised.value.details == (
        "entities[symbol].values[0]: join key symbol is a String, got int64_value 7"
    )
    assert found.to_dicts() == [{"symbol": "7", "bars:close": 1.5}]


class _Models:
    """The model registry's ``get``: one model scoring ``bars:close``."""

    async def get(self, name: str, *, alias: str | None = None, version: str | None = None) -> Any:
        refs = (FeatureRef("bars", "close"),)
        return LoadedModel("m", "1", ("bars__close",), refs, None, scorer=lambda x: x[:, 0])


@pytest.mark.parametrize("fast", [False, True], ids=["general", "fast"])
def test_predict_refuses_a_value_of_another_kind_as_get_online_features_does(fast: bool) -> None:
    catalog = _catalog(ValueType.STRING)
    store = InMemoryOnlineStore(catalog)
    asyncio.run(store.write(_rows(ValueType.STRING)))
    reader = PredictReader(RowReader(written_hashes(_rows(ValueType.STRING), catalog)), catalog)
    servicer = PredictionServicer(
        store,
        _Models(),  # type: ignore[arg-type]
        None,
        max_entities=10,
        reader=reader if fast else None,
        catalog=catalog,
    )
    request = prediction_service_pb2.PredictRequest(model_name="m")
    request.entities["symbol"].values.append(I64)
    refused = None
    try:
        answer = asyncio.run(servicer.Predict(request.SerializeToString(), _Context()))
    except ValidationError as exc:
        refused = str(exc)
    else:  # before: the row of "7" was not found, silently
        (prediction,) = prediction_service_pb2.PredictResponse.FromString(answer).predictions
        assert list(prediction.feature_statuses) == [types_pb2.FEATURE_STATUS_NOT_FOUND]
    assert refused == "entities[symbol].values[0]: join key symbol is a String, got int64_value 7"
    # The same request with the key as text scores the row.
    request.entities["symbol"].values[0].CopyFrom(types_pb2.Value(string_value="7"))
    answer = asyncio.run(servicer.Predict(request.SerializeToString(), _Context()))
    (prediction,) = prediction_service_pb2.PredictResponse.FromString(answer).predictions
    assert (list(prediction.feature_statuses), prediction.score) == (
        [types_pb2.FEATURE_STATUS_PRESENT],
        1.5,
    )
